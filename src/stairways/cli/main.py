"""The ``stairways`` command. Subcommands only parse, build and call into the library.

Exit codes: 0 success; 2 bad input (flags, config, data files); 1 any other failure.
"""

from __future__ import annotations

import logging
import sys

import click
import typer

from stairways.cli import bench, data, demo
from stairways.errors import StairwaysError

app = typer.Typer(
    name="stairways",
    help="Reinforcement-learning intraday trading for NVDA and MSFT on 1-minute bars.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(bench.app, name="bench")
app.command("demo")(demo.demo)


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


def run() -> None:
    """Console entry point: map Stairways errors to exit codes with a one-paragraph message."""
    try:
        app(standalone_mode=False)
    except StairwaysError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
