"""``stairways risk show|state``, ``stairways halt`` and ``stairways resume``.

``risk show --stage S`` prints the limits in force for a ladder stage (``config/risk/S.yaml``).
``halt`` and ``resume`` are operator actions on the governor's state, written to the journal
(``journal.path`` or ``journal.url`` from the config, or ``--journal``) with the operator's name
and reason; they need the journal's MAC key from the vault. The running trader reads the new
state at its next check.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from stairways.cli.common import ConfigOption, build_config
from stairways.cli.journal import JournalOption, journal_location
from stairways.clock import ExchangeClock
from stairways.journal import Journal, JournalReader
from stairways.risk.limits import RISK_CONFIG_DIR, limits_table, load_stage
from stairways.risk.operator import OperatorResult
from stairways.risk.operator import halt as halt_action
from stairways.risk.operator import resume as resume_action
from stairways.risk.ports import KIND_OPERATOR, KIND_STATE
from stairways.risk.state import read_state
from stairways.risk.types import TradingState

app = typer.Typer(help="The risk governor: limits per stage and the trading state.")

StageOption = typer.Option(..., "--stage", "-s", help="Ladder stage: paper, micro_10, scale_50.")
ReasonOption = typer.Option(..., "--reason", "-r", help="Why, in words (journaled).")
OperatorOption = typer.Option(
    None, "--operator", help="Who acts (journaled); default: the login name."
)

_NEXT_STEP = {
    TradingState.EMERGENCY_STOP: (
        "the trader cancels every order and flattens at its next check and refuses every "
        "intent; release with `stairways resume --reason ...`"
    ),
    TradingState.PAUSED: "no new orders; `stairways resume --reason ...` again to trade",
    TradingState.RUNNING: "the governor accepts intents again",
    TradingState.MAINTENANCE: "no trading until maintenance ends",
}


@app.command("show")
def show(stage: str = StageOption) -> None:
    """Print the limits in force for a ladder stage."""
    limits = load_stage(stage)
    typer.echo(f"risk limits of stage {limits.stage} ({RISK_CONFIG_DIR / (stage + '.yaml')})")
    typer.echo(limits.description)
    rows = limits_table(limits)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        if key in ("stage", "description"):
            continue
        typer.echo(f"  {key:{width}s}  {value}")


@app.command("state")
def state(
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
    history: int = typer.Option(5, "--history", "-n", min=0, help="Recent transitions shown."),
) -> None:
    """Print the governor's state from the journal and its recent transitions."""
    cfg = build_config(config)
    location, _ = journal_location(cfg, journal, need_key=False)
    with JournalReader.open(location) as reader:
        rec = read_state(reader)
        typer.echo(f"journal {location}")
        if rec.seq == 0:
            typer.echo("state: PAUSED (start state; no transition journaled yet)")
        else:
            typer.echo(f"state: {rec.state.value} since {rec.since} by {rec.who}: {rec.why}")
        if history:
            for r in reader.tail(history, kinds=[KIND_STATE, KIND_OPERATOR]):
                p = r.payload
                if r.kind == KIND_STATE:
                    line = f"{p.get('previous')} -> {p.get('state')} by {p.get('who')}"
                else:
                    line = f"operator {p.get('operator')} ran {p.get('action')}"
                typer.echo(f"  #{r.seq} {r.ts.isoformat()} {line}: {p.get('why', p.get('reason'))}")


def _operator_action(
    action: str, reason: str, operator: str | None, journal: str | None, config: Path | None
) -> OperatorResult:
    cfg = build_config(config)
    who = operator if operator is not None else getpass.getuser()
    location, key = journal_location(cfg, journal, need_key=True)
    assert key is not None
    at = ExchangeClock().now()
    with Journal.open(location, key, create=False) as log:
        run = halt_action if action == "halt" else resume_action
        result = run(log, who, reason, at)
    rec = result.record
    typer.echo(
        f"{rec.state.value} (was {result.before.value}) by {rec.who} at {rec.since}: {rec.why}"
    )
    typer.echo(f"journal {location}: {_NEXT_STEP[rec.state]}")
    return result


def halt(
    reason: str = ReasonOption,
    operator: str | None = OperatorOption,
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Emergency stop: cancel every order, flatten, refuse every intent until resumed."""
    _operator_action("halt", reason, operator, journal, config)


def resume(
    reason: str = ReasonOption,
    operator: str | None = OperatorOption,
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """One step back toward trading: EMERGENCY_STOP -> PAUSED -> RUNNING (MAINTENANCE -> PAUSED)."""
    _operator_action("resume", reason, operator, journal, config)
