"""``stairways live run --broker ibkr``: build a session at IBKR and print how it went.

Called by :mod:`stairways.cli.live` once the run's mode is settled (the live conditions for a
session, or a rehearsal against a gateway replaying a stored day); it only builds and calls
:func:`stairways.live.ibkr_session.run_ibkr_session`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer

from stairways.cli.journal import journal_location
from stairways.clock import ExchangeClock
from stairways.config import StairwaysConfig
from stairways.journal import Journal, MacKey
from stairways.live.ladder import SessionReviewer
from stairways.live.ladder_config import load_ladder_config
from stairways.live.model import LivePolicy, ModelRef

__all__ = ["run_at_ibkr", "session_reviewer"]


def session_reviewer(
    cfg: StairwaysConfig, registry: str | None, key: MacKey, ladder_config: Path | None
) -> SessionReviewer:
    """The ladder's review after a session, in the registry's journal (``--registry-journal``
    or the config's), whose MAC key is the session journal's (``journal.mac_key_secret``)."""
    location, _ = journal_location(cfg, registry, need_key=False)
    return SessionReviewer(location, key, load_ladder_config(ladder_config), ExchangeClock())


def run_at_ibkr(
    cfg: StairwaysConfig,
    *,
    ref: ModelRef,
    stage: str,
    day: date | None,
    split: str | None,
    live: bool,
    broker_config: Path | None,
    journal: str | None,
    risk_dir: Path,
    operator: str,
    heartbeat: Path | None,
    store: Path | None,
    max_seconds: float | None,
    registry: str | None = None,
    ladder_config: Path | None = None,
) -> None:
    """Run one session at IBKR (``day``: a rehearsal against a gateway replaying that day)."""
    from stairways.brokers.settings import load_broker_config
    from stairways.live.ibkr_session import IbkrPlan, run_ibkr_session
    from stairways.live.watchdog import Heartbeat
    from stairways.risk.store import SqlStateStore

    bcfg = load_broker_config(broker_config)
    location, key = journal_location(cfg, journal, need_key=True)
    assert key is not None
    reviewer = session_reviewer(cfg, registry, key, ladder_config)
    policy = LivePolicy(ref, store=store)
    plan = IbkrPlan(
        stage=stage,
        day=day,
        split=split,
        operator=operator,
        risk_dir=risk_dir,
        max_wall_seconds=max_seconds,
    )
    beat = None
    if heartbeat is not None:
        info: dict[str, Any] = {
            "journal": str(location),
            "broker": "ibkr",
            "stage": stage,
            "rehearsal": day is not None,
            "symbols": list(policy.cfg.data.symbols),
            "broker_config": str(broker_config) if broker_config is not None else None,
        }
        beat = Heartbeat(heartbeat, info)
    states = SqlStateStore(location)
    holder: dict[str, Any] = {}

    def on_loop(loop: Any) -> None:
        loop.install_signal_handlers()
        holder["loop"] = loop

    try:
        with Journal.open(location, key) as log_:
            result = run_ibkr_session(
                policy,
                plan,
                bcfg,
                journal=log_,
                store_state=states,
                location=location,
                bar_store=store,
                live=live,
                heartbeat=beat,
                on_loop=on_loop,
                reviewer=reviewer,
            )
            if beat is not None:
                beat.stop(ExchangeClock().now(), result.session_id)
    finally:
        states.close()
    kind = "REHEARSAL against the gateway" if day is not None else "SESSION at IBKR"
    typer.echo(
        f"{kind} {result.session_id} at stage {stage}, account {result.account} "
        f"({'resumed after a restart' if result.resumed else 'new session'})"
    )
    typer.echo(f"journal {location}")
    s = result.summary
    if s:
        f = s["figures"]
        typer.echo(
            f"{s['decisions']} decisions, {s['orders_sent']} orders, {len(result.executions)} "
            f"fills; P&L ${f['pnl']:+,.2f} after ${f['fees']:,.2f} fees; max drawdown "
            f"{f['max_drawdown']:.2%}; decision latency p50 {s['latency_ms_p50']:.3f} ms, "
            f"p99 {s['latency_ms_p99']:.3f} ms"
        )
        typer.echo(
            f"minutes: {result.live_minutes} from the real-time feed, {result.rebuilt_minutes} "
            "rebuilt (journal, IB history)"
        )
        typer.echo(f"ended: {s['reason']}" + (" (EMERGENCY STOP)" if s["emergency_stop"] else ""))
    if result.restart:
        typer.echo(f"restart: {result.restart}")
    if result.review is not None:
        for line in result.review.lines():
            typer.echo(line)
    held = {k: v for k, v in result.positions.items() if v}
    if held or result.open_orders:
        typer.echo(
            f"WARNING: IB still reports positions {held} and {result.open_orders} working "
            "orders; check with `stairways broker check`"
        )
        raise typer.Exit(1)
