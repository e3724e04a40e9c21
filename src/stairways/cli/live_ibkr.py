"""``stairways live run --broker ibkr``: build a session at IBKR and print how it went.

Called by :mod:`stairways.cli.live` once the run's mode is settled (the live conditions for a
session, or a rehearsal against a gateway replaying a stored day); it only builds and calls
:func:`stairways.live.ibkr_session.run_ibkr_session`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Protocol, TypeVar

import typer

from stairways.cli.journal import journal_location
from stairways.clock import ExchangeClock
from stairways.config import StairwaysConfig
from stairways.journal import Journal, MacKey
from stairways.journal.schema import JournalLocation
from stairways.live.ladder import SessionReviewer
from stairways.live.ladder_config import load_ladder_config
from stairways.live.model import LivePolicy, ModelRef
from stairways.live.watchdog import Heartbeat
from stairways.risk.ports import StateStore

__all__ = [
    "echo_figures",
    "echo_restart_and_review",
    "install_signal_handlers",
    "run_at_ibkr",
    "run_journaled",
    "session_journal",
    "session_reviewer",
]


class _Ended(Protocol):
    @property
    def session_id(self) -> str: ...


R = TypeVar("R", bound=_Ended)


def session_reviewer(
    cfg: StairwaysConfig, registry: str | None, key: MacKey, ladder_config: Path | None
) -> SessionReviewer:
    """The ladder's review after a session, in the registry's journal (``--registry-journal``
    or the config's), whose MAC key is the session journal's (``journal.mac_key_secret``)."""
    location, _ = journal_location(cfg, registry, need_key=False)
    return SessionReviewer(location, key, load_ladder_config(ladder_config), ExchangeClock())


def session_journal(
    cfg: StairwaysConfig, journal: str | None, registry: str | None, ladder_config: Path | None
) -> tuple[JournalLocation, MacKey, SessionReviewer]:
    """The session's journal (``journal`` or the config's) with its MAC key, and the ladder's
    reviewer after the session (see :func:`session_reviewer`)."""
    location, key = journal_location(cfg, journal, need_key=True)
    assert key is not None
    return location, key, session_reviewer(cfg, registry, key, ladder_config)


def run_journaled(
    location: JournalLocation,
    key: MacKey,
    beat: Heartbeat | None,
    run: Callable[[Journal, StateStore], R],
) -> R:
    """``run`` with the session's journal open and the risk state store in it (closed after);
    the heartbeat, if any, stops with the session's id once ``run`` returns."""
    from stairways.risk.store import SqlStateStore

    with Journal.open(location, key) as log_:
        # the governor's memory rides the journal's commits (stairways.risk.store)
        states = SqlStateStore(location, journal=log_)
        try:
            result = run(log_, states)
            if beat is not None:
                beat.stop(ExchangeClock().now(), result.session_id)
        finally:
            states.close()
    return result


def install_signal_handlers(loop: Any) -> None:
    """The session loop's ``on_loop`` hook: SIGINT/SIGTERM ask the loop to stop cleanly."""
    loop.install_signal_handlers()


def echo_figures(summary: Mapping[str, Any], fills: int) -> None:
    """The session summary's line of counts, P&L, drawdown and decision latency."""
    f = summary["figures"]
    typer.echo(
        f"{summary['decisions']} decisions, {summary['orders_sent']} orders, {fills} "
        f"fills; P&L ${f['pnl']:+,.2f} after ${f['fees']:,.2f} fees; max drawdown "
        f"{f['max_drawdown']:.2%}; decision latency p50 {summary['latency_ms_p50']:.3f} ms, "
        f"p99 {summary['latency_ms_p99']:.3f} ms"
    )


def echo_restart_and_review(restart: Mapping[str, int], review: Any) -> None:
    """What a restart finished (if anything) and the ladder's review lines (if one ran)."""
    if restart:
        typer.echo(f"restart: {restart}")
    if review is not None:
        for line in review.lines():
            typer.echo(line)


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

    bcfg = load_broker_config(broker_config)
    location, key, reviewer = session_journal(cfg, journal, registry, ladder_config)
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
            "broker_config": str(broker_config.resolve()) if broker_config is not None else None,
            "live": live,
        }
        beat = Heartbeat(heartbeat, info)
    result = run_journaled(
        location,
        key,
        beat,
        lambda log_, states: run_ibkr_session(
            policy,
            plan,
            bcfg,
            journal=log_,
            store_state=states,
            location=location,
            bar_store=store,
            live=live,
            heartbeat=beat,
            on_loop=install_signal_handlers,
            reviewer=reviewer,
        ),
    )
    kind = "REHEARSAL against the gateway" if day is not None else "SESSION at IBKR"
    typer.echo(
        f"{kind} {result.session_id} at stage {stage}, account {result.account} "
        f"({'resumed after a restart' if result.resumed else 'new session'})"
    )
    typer.echo(f"journal {location}")
    s = result.summary
    if s:
        echo_figures(s, len(result.executions))
        typer.echo(
            f"minutes: {result.live_minutes} from the real-time feed, {result.rebuilt_minutes} "
            "rebuilt (journal, IB history)"
        )
        typer.echo(f"ended: {s['reason']}" + (" (EMERGENCY STOP)" if s["emergency_stop"] else ""))
    echo_restart_and_review(result.restart, result.review)
    held = {k: v for k, v in result.positions.items() if v}
    if held or result.open_orders:
        typer.echo(
            f"WARNING: IB still reports positions {held} and {result.open_orders} working "
            "orders; check with `stairways broker check`"
        )
        raise typer.Exit(1)
