"""``stairways live run|watchdog`` and ``stairways lineage ORDER_ID``.

``live run --rehearse DATE`` replays a stored session through the live loop with the simulated
broker on the controllable clock (a rehearsal: journaled as one, never counted by the ladder);
``live run --broker ibkr`` trades at IBKR in exchange time, paper unless every live condition
holds (see :mod:`stairways.live.modes`); ``--broker ibkr --rehearse DATE`` rehearses against a
gateway replaying that stored day (the feed clock; a rehearsal). ``live watchdog`` is the
dead-man's switch beside a running loop. ``lineage`` prints an order's chain from the
journal. The commands only parse, build and call into :mod:`stairways.live`.
"""

from __future__ import annotations

import getpass
import logging
from datetime import date
from pathlib import Path
from typing import Any

import typer

from stairways.cli.common import ConfigOption, StoreOption, build_config
from stairways.cli.journal import JournalOption, journal_location
from stairways.config import StairwaysConfig
from stairways.errors import InputError
from stairways.journal import Journal, JournalReader
from stairways.journal.schema import JournalLocation
from stairways.live.lineage import trace_order
from stairways.live.model import LivePolicy, ModelRef, ref_from_run
from stairways.live.modes import LIVE_STAGES, check_mode, live_conditions, refuse_unknown_stage
from stairways.risk.limits import RISK_CONFIG_DIR

app = typer.Typer(help="The live loop: rehearse or trade one session; the watchdog.")

log = logging.getLogger(__name__)

REHEARSAL_JOURNAL = "rehearsals.sqlite"


def _rehearsal_journal(cfg: StairwaysConfig, journal: str | None) -> str:
    """Rehearsals keep their own journal (their governor state is not the account's)."""
    if journal is not None:
        return journal
    return str(cfg.journal.path.parent / REHEARSAL_JOURNAL)


def _resolve_model(
    cfg: StairwaysConfig, model: str, checkpoint: str, registry: str | None
) -> ModelRef:
    """A run directory (rehearsals and paper only) or a registered model id / stage alias."""
    path = Path(model)
    if path.is_dir():
        return ref_from_run(path, checkpoint)
    from stairways.live.registry import load_model_ref

    location, _ = journal_location(cfg, registry, need_key=False)
    with JournalReader.open(location) as reader:
        return load_model_ref(reader, model)


@app.command("run")
def run(
    model: str = typer.Option(
        ..., "--model", "-m", help="Registered model id or stage alias, or a run directory."
    ),
    checkpoint: str = typer.Option("final", "--checkpoint", help="With a run directory."),
    stage: str = typer.Option("paper", "--stage", "-s", help="paper, micro_10 or scale_50."),
    broker: str = typer.Option("sim", "--broker", help="sim (rehearsal) or ibkr."),
    rehearse: str | None = typer.Option(
        None,
        "--rehearse",
        help="Rehearse this stored session (YYYY-MM-DD): with the sim broker, or with ibkr "
        "against a gateway replaying it.",
    ),
    split: str | None = typer.Option(
        None, "--split", help="Warm features up as this split's panel does (parity with it)."
    ),
    compare: bool = typer.Option(
        False, "--compare", help="Compare with the run's evaluation trace of --split (exit 3)."
    ),
    live: bool = typer.Option(False, "--live", help="Trade real money (live stages only)."),
    broker_config: Path | None = typer.Option(
        None, "--broker-config", help="Broker YAML file (ibkr host, port, mode)."
    ),
    journal: str | None = JournalOption,
    registry: str | None = typer.Option(
        None, "--registry-journal", help="Journal holding the model registry (default: config)."
    ),
    risk_dir: Path = typer.Option(RISK_CONFIG_DIR, "--risk-dir", help="Folder of stage limits."),
    state_dir: Path = typer.Option(
        Path("live/sim"), "--state-dir", help="Simulated broker state files (rehearsals)."
    ),
    operator: str | None = typer.Option(
        None, "--operator", help="Who starts trading (rehearsal default: the login name)."
    ),
    pace: float = typer.Option(
        0.0, "--pace", min=0.0, max=120.0, help="Wall seconds per bar in a rehearsal."
    ),
    heartbeat: Path | None = typer.Option(
        None, "--heartbeat", help="Heartbeat file for the watchdog."
    ),
    ladder_config: Path | None = typer.Option(
        None,
        "--ladder-config",
        help="Ladder gates for the review after the session (default config/ladder.yaml).",
    ),
    max_seconds: float | None = typer.Option(
        None,
        "--max-seconds",
        min=1.0,
        help="At IBKR: end the session (flat) after this many wall seconds.",
    ),
    store: Path | None = StoreOption,
    config: Path | None = ConfigOption,
) -> None:
    """Run one session of the live loop (a rehearsal, or a session at IBKR); the ladder
    reviews the model's stage after it (journaled in the registry's journal)."""
    refuse_unknown_stage(stage)
    if broker not in ("sim", "ibkr"):
        raise InputError(f"--broker must be sim or ibkr, got {broker!r}")
    cfg = build_config(config, store)
    if broker == "sim":
        if rehearse is None:
            raise InputError(
                "the simulated broker replays a stored session: give --rehearse YYYY-MM-DD "
                "(sessions on the simulated broker are rehearsals)"
            )
        if live:
            raise InputError(
                "--live is for --broker ibkr at a live stage; a rehearsal is never live"
            )
        _rehearse(
            cfg,
            model=model,
            checkpoint=checkpoint,
            stage=stage,
            day=_parse_day(rehearse),
            split=split,
            compare=compare,
            journal=journal,
            registry=registry,
            risk_dir=risk_dir,
            state_dir=state_dir,
            operator=operator if operator is not None else getpass.getuser(),
            pace=pace,
            heartbeat=heartbeat,
            store=store,
            ladder_config=ladder_config,
        )
        return
    from stairways.cli.live_ibkr import run_at_ibkr

    day: date | None = None
    if rehearse is not None:
        # A rehearsal against a gateway replaying the stored day (the feed clock): never live,
        # a paper account (checked at connect), journaled as a rehearsal.
        if live or stage != "paper":
            raise InputError(
                "a rehearsal against a gateway (--broker ibkr --rehearse) runs at stage paper "
                "without --live; a rehearsal is never live"
            )
        ref = _resolve_model(cfg, model, checkpoint, registry)
        day = _parse_day(rehearse)
        journal = _rehearsal_journal(cfg, journal)
    else:
        ref = _ibkr_checks(cfg, model, stage, live, broker_config, registry, checkpoint)
    run_at_ibkr(
        cfg,
        ref=ref,
        stage=stage,
        day=day,
        split=split,
        live=live,
        broker_config=broker_config,
        journal=journal,
        risk_dir=risk_dir,
        operator=operator if operator is not None else getpass.getuser(),
        heartbeat=heartbeat,
        store=store,
        max_seconds=max_seconds,
        registry=registry,
        ladder_config=ladder_config,
    )


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--rehearse takes a date YYYY-MM-DD, got {text!r}") from None


def _ibkr_checks(
    cfg: StairwaysConfig,
    model: str,
    stage: str,
    live: bool,
    broker_config: Path | None,
    registry: str | None,
    checkpoint: str,
) -> ModelRef:
    """Every condition of an IBKR run, refused together by name; returns the verified model."""
    from stairways.brokers.settings import load_broker_config
    from stairways.live.registry import live_allowed, load_model_ref
    from stairways.security.access import open_vault
    from stairways.security.passphrase import terminal_prompt

    bcfg = load_broker_config(broker_config)
    location, _ = journal_location(cfg, registry, need_key=False)
    if Path(model).is_dir():
        ref: ModelRef | None = None
        ladder = (
            False,
            f"{model} is a run directory, not a registered model: register it (stairways models "
            "register) and promote it on the ladder",
        )
    else:
        with JournalReader.open(location) as reader:
            decision = live_allowed(reader, model, stage)
            ladder = (decision.allowed, decision.reason)
            ref = load_model_ref(reader, model) if decision.allowed else None

    def vault_names() -> list[str]:
        vault = open_vault(
            cfg.security.vault_path, prompt=terminal_prompt(), reading="ib_gateway_user"
        )
        return vault.names()

    checks = live_conditions(
        stage=stage,
        broker=bcfg,
        live_flag=live,
        vault_names=vault_names,
        ladder=lambda: ladder,
    )
    check_mode(checks, stage)
    assert ref is not None
    if stage in LIVE_STAGES:
        log.warning("LIVE trading at stage %s with model %s", stage, ref.model_id)
    return ref


def _rehearse(
    cfg: StairwaysConfig,
    *,
    model: str,
    checkpoint: str,
    stage: str,
    day: date,
    split: str | None,
    compare: bool,
    journal: str | None,
    registry: str | None,
    risk_dir: Path,
    state_dir: Path,
    operator: str,
    pace: float,
    heartbeat: Path | None,
    store: Path | None,
    ladder_config: Path | None,
) -> None:
    from stairways.cli.live_ibkr import (
        echo_figures,
        echo_restart_and_review,
        install_signal_handlers,
        run_journaled,
        session_journal,
    )
    from stairways.live.parity import compare_with_trace
    from stairways.live.session import SessionPlan, rehearse
    from stairways.live.watchdog import Heartbeat

    ref = _resolve_model(cfg, model, checkpoint, registry)
    if compare and split is None:
        raise InputError("--compare needs --split (the evaluation trace to compare with)")
    location, key, reviewer = session_journal(
        cfg, _rehearsal_journal(cfg, journal), registry, ladder_config
    )
    policy = LivePolicy(ref, store=store)
    plan = SessionPlan(
        day=day,
        stage=stage,
        split=split,
        operator=operator,
        pace=pace,
        risk_dir=risk_dir,
        state_dir=state_dir,
    )
    beat = None
    if heartbeat is not None:
        beat = Heartbeat(heartbeat, _beat_info(location, state_dir, stage, policy.cfg))
    result = run_journaled(
        location,
        key,
        beat,
        lambda log_, states: rehearse(
            policy,
            plan,
            journal=log_,
            store_state=states,
            location=location,
            bar_store=store,
            heartbeat=beat,
            on_loop=install_signal_handlers,
            reviewer=reviewer,
        ),
    )
    s = result.summary
    typer.echo(
        f"REHEARSAL {result.session_id} of {day} at stage {stage} "
        f"({'resumed after a restart' if result.resumed else 'new session'})"
    )
    typer.echo(f"journal {location} (every record marked rehearsal)")
    if s:
        echo_figures(s, len(result.executions))
        typer.echo(f"ended: {s['reason']}" + (" (EMERGENCY STOP)" if s["emergency_stop"] else ""))
    echo_restart_and_review(result.restart, result.review)
    if result.review is None and s:
        typer.echo(
            f"ladder review: model {ref.model_id} is not registered in "
            f"{reviewer.location}; no stage to review (stairways models register)"
        )
    if compare and split is not None:
        from stairways.evaluation.traces import read_run_trace

        trace = read_run_trace(
            ref.run_dir,
            split,
            ref.checkpoint,
        )
        report = compare_with_trace(
            result.steps,
            trace,
            day,
            tuple(policy.cfg.data.symbols),
            policy.cfg.market.starting_capital,
        )
        for line in report.lines():
            typer.echo(line)
        if not report.equal:
            raise typer.Exit(3)


def _beat_info(
    location: JournalLocation, state_dir: Path, stage: str, cfg: StairwaysConfig
) -> dict[str, Any]:
    return {
        "journal": str(location),
        "broker": "sim",
        "state_dir": str(state_dir.resolve()),
        "stage": stage,
        "rehearsal": True,
        "symbols": list(cfg.data.symbols),
        "sim": {
            "starting_capital": cfg.market.starting_capital,
            "costs": cfg.market.costs.model_dump(mode="json"),
        },
    }


@app.command("watchdog")
def watchdog(
    heartbeat: Path = typer.Option(..., "--heartbeat", help="The loop's heartbeat file."),
    timeout: float = typer.Option(
        10.0, "--timeout", min=0.5, max=600.0, help="Wall seconds without a beat = dead loop."
    ),
    interval: float = typer.Option(1.0, "--interval", min=0.05, max=60.0),
    max_seconds: float | None = typer.Option(
        None, "--max-seconds", help="Stop watching after this long (tests); default: forever."
    ),
    max_actions: int | None = typer.Option(None, "--max-actions", help="Stop after N actions."),
    operator: str = typer.Option("watchdog", "--operator", hidden=True),
    broker_config: Path | None = typer.Option(
        None,
        "--broker-config",
        help="Broker YAML of an IBKR loop; default: the file its heartbeat names.",
    ),
    live: bool = typer.Option(False, "--live", help="The watched loop trades a live account."),
    config: Path | None = ConfigOption,
) -> None:
    """Dead-man's switch: on a stopped heartbeat during a session, halt, cancel and flatten."""
    from stairways.live.watchdog import watch

    cfg = build_config(config)
    keys: dict[str, Any] = {}

    def open_journal(doc: dict[str, Any]) -> Journal:
        location, key = journal_location(cfg, str(doc["journal"]), need_key=True)
        assert key is not None
        keys["journal"] = Journal.open(location, key, create=False)
        return keys["journal"]

    def open_broker(doc: dict[str, Any]) -> Any:
        if doc.get("broker") == "sim":
            from stairways.brokers.settings import SimConfig
            from stairways.brokers.sim.broker import SimBroker

            state_dir = Path(str(doc["state_dir"]))
            found = sorted(state_dir.glob(f"*-{doc['session_id']}.sqlite"))
            if not found:
                raise InputError(
                    f"no simulated broker state for session {doc['session_id']} in {state_dir}"
                )
            sim_cfg = SimConfig.model_validate(
                {**doc["sim"], "state_path": found[-1], "account": f"SIM-{doc['session_id']}"}
            )
            sim = SimBroker(sim_cfg, tuple(doc["symbols"]))
            sim.connect()
            return sim
        from stairways.brokers.ibkr.adapter import IbkrBroker
        from stairways.brokers.settings import load_broker_config
        from stairways.live.watchdog import ibkr_connection

        path, live_account = ibkr_connection(doc, broker_config, live)
        ib = IbkrBroker(load_broker_config(path), role="flatten", live=live_account)
        ib.connect()
        return ib

    actions = watch(
        heartbeat,
        timeout,
        open_journal=open_journal,
        open_broker=open_broker,
        interval=interval,
        max_seconds=max_seconds,
        max_actions=max_actions,
    )
    for a in actions:
        typer.echo(
            f"watchdog acted on session {a.session_id}: {a.reason}; halt "
            f"{'latched' if a.halted else 'NOT latched'}; closing orders {a.flatten_orders}"
        )


def lineage(
    order_id: str = typer.Argument(..., help="Client order id (sw-<session>-<bar>-<SYMBOL>)."),
    journal: str | None = JournalOption,
    config: Path | None = ConfigOption,
) -> None:
    """Print an order's chain: fills, verdict, intent, decision, model, run, config, data."""
    cfg = build_config(config)
    location, _ = journal_location(cfg, journal, need_key=False)
    with JournalReader.open(location) as reader:
        chain = trace_order(reader, order_id)
    typer.echo(f"journal {location}")
    for line in chain.lines():
        typer.echo(line)
    if not chain.complete:
        raise typer.Exit(1)
