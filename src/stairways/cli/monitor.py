"""``stairways monitor serve``: the live dashboard, ``/metrics`` and the alert evaluator.

Reads the journal (``journal.path``/``journal.url`` or ``--journal``) while the trader writes.
The controls and the alert records need the journal's MAC key and the operator token from
the vault (``stairways secrets set operator_token --generate``); ``--read-only`` serves without
them (controls refused, alerts shown but neither sent nor journaled). Loopback only unless
``--allow-remote`` is given; then every request needs the operator token.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import typer

from stairways.cli.common import ConfigOption, build_config
from stairways.cli.journal import JournalOption, open_journal
from stairways.clock import ExchangeClock
from stairways.errors import InputError
from stairways.journal import Journal, JournalLocation, JournalReader
from stairways.live.ladder_config import load_ladder_config
from stairways.security.names import OPERATOR_TOKEN

app = typer.Typer(help="Watch the live side: dashboard, Prometheus metrics, alerts.")

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("serve")
def serve(
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on (loopback)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="Port."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Listen beyond loopback (every request needs the token)."
    ),
    read_only: bool = typer.Option(
        False, "--read-only", help="No vault: controls refused, alerts not sent or journaled."
    ),
    journal: str | None = JournalOption,
    registry: str | None = typer.Option(
        None, "--registry-journal", help="Journal holding the model registry (default: --journal)."
    ),
    ladder_config: Path | None = typer.Option(
        None, "--ladder-config", help="Ladder YAML for the gate figures (default: shipped)."
    ),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Training runs (research)."),
    stress_dir: Path = typer.Option(
        Path("reports/stress"), "--stress-dir", help="Nightly stress results (/stress)."
    ),
    webhook_url: str | None = typer.Option(
        None, "--webhook-url", help="Slack-compatible webhook for alerts."
    ),
    smtp_host: str | None = typer.Option(None, "--smtp-host", help="SMTP server for alerts."),
    smtp_port: int = typer.Option(25, "--smtp-port", min=1, max=65535, help="SMTP port."),
    smtp_from: str | None = typer.Option(None, "--smtp-from", help="Alert email sender."),
    smtp_to: list[str] = typer.Option([], "--smtp-to", help="Alert email recipient (repeat)."),
    repeat_seconds: float = typer.Option(
        3600.0, "--alert-repeat", min=1.0, help="Resend a still-firing alert after this long."
    ),
    poll: float = typer.Option(
        1.0, "--poll", min=0.05, max=60.0, help="Seconds between journal reads."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Serve the dashboard and /metrics for the journal; send alerts if configured."""
    import time

    import uvicorn

    from stairways.monitoring.alerts import AlertEvaluator, AlertSettings, sinks_from
    from stairways.monitoring.app import create_app
    from stairways.monitoring.service import Monitor

    remote = not is_loopback(host)
    if remote and not allow_remote:
        raise InputError(
            f"--host {host} is not loopback: the dashboard listens on 127.0.0.1 unless "
            "--allow-remote is given (then every request needs the operator token)"
        )
    if remote and read_only:
        raise InputError("--allow-remote needs the operator token from the vault: drop --read-only")
    cfg = build_config(config)
    location, key, found = open_journal(
        cfg,
        journal,
        need_key=not read_only,
        other_secrets=() if read_only else (OPERATOR_TOKEN,),
    )
    alert_settings = AlertSettings(
        webhook_url=webhook_url,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_from=smtp_from,
        smtp_to=tuple(smtp_to),
        repeat_seconds=repeat_seconds,
    )
    try:
        sinks = sinks_from(alert_settings)
    except ValueError as err:
        raise InputError(str(err)) from None
    reader = JournalReader.open(location)
    writer = None if key is None else Journal.open(location, key, create=False)
    registry_reader = (
        JournalReader.open(JournalLocation.sqlite(Path(registry))) if registry else None
    )
    evaluator = AlertEvaluator(
        sinks=sinks,
        journal_append=writer.append if writer is not None else None,
        monotonic=time.monotonic,
        settings=alert_settings,
    )
    monitor = Monitor(
        reader,
        ExchangeClock(),
        writer=writer,
        operator_token=found.get(OPERATOR_TOKEN),
        ladder_config=load_ladder_config(ladder_config),
        registry=registry_reader,
        evaluator=evaluator,
    )
    app_ = create_app(
        monitor, runs_dir=runs_dir, stress_dir=stress_dir, poll_seconds=poll, require_token=remote
    )
    typer.echo(f"Stairways monitor on http://{host}:{port}/ (journal {location})")
    if sinks:
        typer.echo("alerts go to: " + ", ".join(s.name for s in sinks))
    uvicorn.run(app_, host=host, port=port, log_level="warning")
