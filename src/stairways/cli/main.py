"""The ``stairways`` command. Subcommands only parse, build and call into the library.

Exit codes: 0 success; 2 bad input (flags, config, data files); 1 any other failure;
3 success gates failed (``evaluate``, ``validate temporal``, ``seeds``: outputs were written;
``journal verify``: the journal was tampered with); 128 + N when stopped by signal N and wound
down cleanly (130 for Ctrl-C). Errors are one paragraph on stderr; ``--verbose`` adds the
traceback. A file-system refusal (permissions, read-only, full disk) names the path and exits 1;
an internal fault says it is not the user's input.
"""

from __future__ import annotations

import logging
import sys

import typer

from stairways.cli import audit as audit_cli
from stairways.cli import bench, data, demo
from stairways.cli import broker as broker_cli
from stairways.cli import configs as configs_cli
from stairways.cli import diagnose as diagnose_cli
from stairways.cli import evaluate as evaluate_cli
from stairways.cli import journal as journal_cli
from stairways.cli import ladder as ladder_cli
from stairways.cli import live as live_cli
from stairways.cli import monitor as monitor_cli
from stairways.cli import readme_figures as readme_figures_cli
from stairways.cli import report as report_cli
from stairways.cli import risk as risk_cli
from stairways.cli import runs as runs_cli
from stairways.cli import schedule as schedule_cli
from stairways.cli import secrets_cmd as secrets_cli
from stairways.cli import seeds as seeds_cli
from stairways.cli import stress as stress_cli
from stairways.cli import trace as trace_cli
from stairways.cli import train as train_cli
from stairways.cli import tune as tune_cli
from stairways.cli import validate as validate_cli
from stairways.errors import InternalError, StairwaysError
from stairways.security.secret import install_redaction, redact
from stairways.writable import FILE_ERRNOS, file_error_message

app = typer.Typer(
    name="stairways",
    help="Reinforcement-learning intraday trading for NVDA and MSFT on 1-minute bars.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(bench.app, name="bench")
app.add_typer(broker_cli.app, name="broker")
app.add_typer(configs_cli.app, name="config")
app.command("demo")(demo.demo)
app.command("diagnose")(diagnose_cli.diagnose)
app.command("evaluate")(evaluate_cli.evaluate)
# ``--seeds 0 1 2 3``: the words after the first seed arrive as extra arguments.
app.command("seeds", context_settings=seeds_cli.CONTEXT_SETTINGS)(seeds_cli.seeds)
app.add_typer(validate_cli.app, name="validate")
app.command("trace")(trace_cli.trace)
app.command("train")(train_cli.train_command)
app.command("readme-figures")(readme_figures_cli.readme_figures)
app.add_typer(runs_cli.app, name="runs")
app.command("tune")(tune_cli.tune)
app.add_typer(audit_cli.app, name="audit")
app.add_typer(schedule_cli.app, name="schedule")
app.add_typer(secrets_cli.app, name="secrets")
app.add_typer(journal_cli.app, name="journal")
app.add_typer(ladder_cli.models_app, name="models")
app.add_typer(ladder_cli.app, name="ladder")
app.add_typer(risk_cli.app, name="risk")
app.command("halt")(risk_cli.halt)
app.command("resume")(risk_cli.resume)
app.add_typer(monitor_cli.app, name="monitor")
app.add_typer(live_cli.app, name="live")
app.add_typer(report_cli.app, name="report")
app.add_typer(stress_cli.app, name="stress")
app.command("lineage")(live_cli.lineage)


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    """Stairways: prove RL trading agents out of sample, then deploy them through gates."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # Secret values never reach a log line or a traceback (stairways.security.secret).
    install_redaction()


INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


def _debug_traceback() -> None:
    """The traceback of the error being handled, shown only with --verbose (debug logging)."""
    logging.getLogger("stairways.cli").debug("traceback of the error above", exc_info=True)


def run() -> None:
    """Console entry point: map errors to exit codes with a one-paragraph message.

    Typer raises its own (vendored) click exceptions; they are reached through typer's public
    names: ``Exit`` and ``Abort``, and ``TyperException`` for usage errors such as an unknown
    flag, which show their message and exit 2.
    """
    try:
        # With standalone_mode=False the command's exit code is returned, not raised.
        code = app(standalone_mode=False)
    except InternalError as err:
        typer.echo(
            f"internal error: {redact(str(err))}. This is a fault in Stairways (or a file changed "
            "while the command ran), not in your input; please report it with the command line "
            "(run with --verbose for the traceback)",
            err=True,
        )
        _debug_traceback()
        sys.exit(err.exit_code)
    except StairwaysError as err:
        typer.echo(f"error: {redact(str(err))}", err=True)
        _debug_traceback()
        sys.exit(err.exit_code)
    except OSError as err:
        # A file-system refusal (permissions, read-only, full disk) is the operator's to fix:
        # a message naming the path, not a traceback. Other OSErrors are faults: re-raised.
        if err.errno not in FILE_ERRNOS:
            raise
        typer.echo(f"error: {redact(file_error_message(err))}", err=True)
        _debug_traceback()
        sys.exit(1)
    except typer.Exit as err:
        sys.exit(err.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.TyperException as err:
        show = getattr(err, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {err}", err=True)
        sys.exit(int(getattr(err, "exit_code", 2)))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    if code == INTERRUPTED_EXIT_CODE:
        # Typer turns Ctrl-C into a silent return of 130 (no command returns it); say so.
        typer.echo("interrupted", err=True)
    sys.exit(code if isinstance(code, int) else 0)
