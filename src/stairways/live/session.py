"""Assembling and running one session of the live loop: a rehearsal, or a session at IBKR.

A **rehearsal** replays a stored session (a day of the bar store) through the live loop with
the simulated broker, on the controllable clock: the clock is set to each bar's end as the bar
is delivered, so a whole session runs in seconds (``pace`` slows it to so many wall seconds per
bar, for a dress rehearsal or a test that halts it from another terminal). Everything a real
session does happens: the governor checks every intent, the journal records every decision,
verdict, order and fill, each marked ``rehearsal: true``; the simulated broker keeps its state
in a SQLite file per session, so a killed rehearsal resumes where it stopped.

A session is identified by ``session_id``: ``R`` (rehearsal) or ``L``, the date, the stage's
initial, the model fingerprint's first six digits and a serial. A start finds the last session
with that prefix in the journal: if it has no end record it is resumed (crash recovery), else a
new serial starts.

Warm-up: the online features absorb the stored history before the session, from the first
warm-up session the panel builder would read (of the named split when ``split`` is given, so
that the features equal a replay of that split bit for bit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from stairways.brokers.base import MinuteBar
from stairways.brokers.settings import SimConfig
from stairways.brokers.sim.broker import SimBroker
from stairways.brokers.sim.faults import NO_FAULTS, FaultPlan
from stairways.clock import EXCHANGE_TZ, Clock, ExchangeClock, ManualClock
from stairways.data import calendar as cal
from stairways.data.panel_builder import warmup_start
from stairways.data.settings import DateRange
from stairways.data.splits import resolve_split
from stairways.data.store import BarStore
from stairways.errors import InputError, MissingResourceError
from stairways.journal.schema import JournalLocation
from stairways.live.evidence import collect_sessions
from stairways.live.loop import BAR, CrashHook, LiveLoop, LoopSettings, StepRecord
from stairways.live.model import LivePolicy
from stairways.live.observe import SessionObserver
from stairways.live.records import SESSION_TYPE
from stairways.live.recovery import JournalCursor, read_session
from stairways.live.sizing import session_market, sizing_record
from stairways.market.settings import MarketConfig
from stairways.risk.governor import Governor
from stairways.risk.limits import RISK_CONFIG_DIR, RiskLimits, load_stage
from stairways.risk.operator import resume
from stairways.risk.ports import EventLog, StateStore
from stairways.risk.types import TradingState

__all__ = [
    "Minute",
    "RehearsalResult",
    "SessionPlan",
    "load_session_bars",
    "rehearse",
    "session_id_for",
]

log = logging.getLogger(__name__)

Minute = dict[str, MinuteBar]


@dataclass(frozen=True)
class SessionPlan:
    """What to run.

    :param day: the session's date
    :param stage: ladder stage (risk limits ``<risk_dir>/<stage>.yaml``)
    :param split: align the features' warm-up with this split's panel (None: the day's own)
    :param operator: who starts trading when the governor is PAUSED ("" waits for a resume)
    :param pace: wall seconds per bar (0: as fast as possible)
    :param risk_dir: folder of the stage files
    :param state_dir: where the simulated broker's per-session state files go
    :param poll_seconds: how often a paced session polls for a halt between bars
    """

    day: date
    stage: str = "paper"
    split: str | None = None
    operator: str = ""
    pace: float = 0.0
    risk_dir: Path = RISK_CONFIG_DIR
    state_dir: Path = Path("live/sim")
    poll_seconds: float = 0.25


@dataclass
class RehearsalResult:
    """A finished (or stopped) rehearsal."""

    session_id: str
    resumed: bool
    steps: list[StepRecord]
    summary: dict[str, Any]
    executions: list[Any]
    orders: list[Any]
    state_path: Path
    restart: dict[str, int] = field(default_factory=dict)
    review: Any = None  # the ladder's review after the session (LadderReview), if one ran


def session_id_for(
    source: Any, *, rehearsal: bool, day: date, stage: str, fingerprint: str
) -> tuple[str, bool]:
    """The session id to use and whether it resumes an unfinished session of the journal."""
    prefix = f"{'R' if rehearsal else 'L'}{day:%y%m%d}{stage[:1]}{fingerprint[:6]}"
    mine = [
        s for s in collect_sessions(source, figures=False) if s.session_id.startswith(prefix + "-")
    ]
    if mine and not mine[-1].ended:
        return mine[-1].session_id, True
    return f"{prefix}-{len(mine) + 1}", False


def session_config_record(
    policy: LivePolicy,
    *,
    session_id: str,
    rehearsal: bool,
    day: date,
    stage: str,
    market: MarketConfig,
    warmup_split: str | None,
    location: JournalLocation | None,
    **broker_fields: Any,
) -> dict[str, Any]:
    """The session's ``config`` record: model, data, stage, sizing and journal, with the
    broker's own fields (``broker``, ``clock`` and what says where it traded)."""
    cfg = policy.cfg
    return {
        "type": SESSION_TYPE,
        "session_id": session_id,
        "rehearsal": rehearsal,
        "day": day.isoformat(),
        "stage": stage,
        "model_id": policy.ref.model_id,
        "fingerprint": policy.ref.fingerprint,
        "run_dir": str(policy.ref.run_dir),
        "checkpoint": policy.ref.checkpoint,
        "data_fingerprint": policy.manifest.data.panel_fingerprint,
        "config_name": cfg.name,
        "symbols": list(cfg.data.symbols),
        "capital": market.starting_capital,
        "sizing": sizing_record(market),
        "warmup_split": warmup_split,
        "journal": str(location) if location is not None else "",
        **broker_fields,
    }


def load_stage_limits(stage: str, risk_dir: Path, symbols: tuple[str, ...]) -> RiskLimits:
    """The stage's risk limits from ``risk_dir``; refused unless they trade the model's
    ``symbols``."""
    limits = load_stage(stage, risk_dir)
    if tuple(limits.symbols) != symbols:
        raise InputError(
            f"stage {stage} trades {list(limits.symbols)} but the model trades "
            f"{list(symbols)}; use limits for the model's symbols"
        )
    return limits


def warmup_first_day(store: Path, cfg_data: Any, day: date, split: str | None) -> date:
    """The first session the features warm up from for ``day`` (the panel builder's warm-up
    start for ``split``, or for ``day`` alone); refuses a day outside the split and a missing
    bar store."""
    rng = resolve_split(cfg_data, split) if split is not None else DateRange(start=day, end=day)
    if split is not None and not (rng.start <= day <= rng.end):
        raise InputError(f"{day} is not inside split {split!r} ({rng.start}..{rng.end})")
    first = warmup_start(cfg_data, rng).date()
    if not store.exists():
        raise MissingResourceError(f"bar store {store} does not exist")
    return first


def load_session_bars(
    store: Path, cfg_data: Any, symbols: tuple[str, ...], day: date, split: str | None
) -> tuple[pd.DataFrame, list[Minute], list[dict[str, float]]]:
    """Warm-up history, the session's minutes and each bar's own VWAP (when stored) from the
    bar store; an incomplete session is refused."""
    first = warmup_first_day(store, cfg_data, day, split)
    with BarStore(store, read_only=True) as bs:
        history = bs.read_bars(list(symbols), first, day - timedelta(days=1))
        today = bs.read_bars(list(symbols), day, day)
    opens = cal.sessions(day, day, cfg_data.calendar)
    if len(opens) == 0:
        raise InputError(f"{day} is not a {cfg_data.calendar} trading session")
    n = int(opens.minutes[0])
    open_ts = pd.Timestamp(opens.opens[0])
    if len(today):
        today = today[cal.rth_mask(today["ts"], cfg_data.calendar)]
    minutes: list[Minute] = [{} for _ in range(n)]
    vwaps: list[dict[str, float]] = [{} for _ in range(n)]
    has_vwap = "vwap" in today.columns
    for row in today.itertuples(index=False):
        ts = pd.Timestamp(row.ts)
        k = int((ts - open_ts).total_seconds() // 60)
        if 0 <= k < n:
            if has_vwap and not pd.isna(row.vwap):
                vwaps[k][str(row.symbol)] = float(row.vwap)
            minutes[k][str(row.symbol)] = MinuteBar(
                symbol=str(row.symbol),
                start=ts.tz_convert(EXCHANGE_TZ).to_pydatetime(),
                open=float(row.open),
                high=float(row.high),
                low=float(row.low),
                close=float(row.close),
                volume=float(row.volume),
            )
    for s in symbols:
        have = sum(1 for m in minutes if s in m)
        if have != n:
            raise MissingResourceError(
                f"bar store {store} holds {have} of the {n} {s} bars of {day}; a rehearsal "
                "replays complete sessions only (choose another day or import the bars)"
            )
    ordered = [{s: m[s] for s in symbols} for m in minutes]
    return history, ordered, vwaps


def rehearse(
    policy: LivePolicy,
    plan: SessionPlan,
    *,
    journal: EventLog,
    store_state: StateStore,
    location: JournalLocation | None = None,
    bar_store: Path | None = None,
    crash_hook: CrashHook | None = None,
    heartbeat: Callable[[datetime, str], None] | None = None,
    on_loop: Callable[[LiveLoop], None] | None = None,
    wall: Clock | None = None,
    faults: FaultPlan = NO_FAULTS,
    wrap_broker: Callable[[SimBroker, ManualClock], Any] | None = None,
    reviewer: Callable[[Any, str], Any] | None = None,
) -> RehearsalResult:
    """Rehearse one stored session through the live loop with the simulated broker.

    :param policy: the loaded model
    :param plan: day, stage, warm-up split, operator, pace
    :param journal: the rehearsal's journal (its governor state is the rehearsal's)
    :param store_state: where the governor keeps its memory of the day
    :param bar_store: bar store (default: the run's ``data.store_path``)
    :param crash_hook: called at every write-ahead point (tests)
    :param heartbeat: called after every bar and poll (the dead-man's switch)
    :param on_loop: called with the loop once it is built (signal handlers, tests)
    :param wall: the wall clock pacing a paced rehearsal
    :param faults: faults the simulated broker injects (disconnects, rejects, partial fills)
    :param wrap_broker: wraps the simulated broker (tests: a slow broker)
    :param reviewer: called with the journal and the session id once the session has ended
        (:class:`stairways.live.ladder.SessionReviewer`: the ladder's review after a session)
    """
    cfg = policy.cfg
    symbols = tuple(cfg.data.symbols)
    limits = load_stage_limits(plan.stage, plan.risk_dir, symbols)
    # The stage's account: the model's own (paper) or a notional-sized one (micro_10, scale_50).
    market = session_market(cfg.market, cfg.env, limits, str(plan.risk_dir / f"{plan.stage}.yaml"))
    history, minutes, vwaps = load_session_bars(
        bar_store or cfg.data.store_path, cfg.data, symbols, plan.day, plan.split
    )
    sid, resumed = session_id_for(
        journal, rehearsal=True, day=plan.day, stage=plan.stage, fingerprint=policy.ref.fingerprint
    )
    records = read_session(journal, sid)
    first_end = minutes[0][symbols[0]].start
    clock = ManualClock(first_end)
    if not resumed:
        journal.append(
            "config",
            session_config_record(
                policy,
                session_id=sid,
                rehearsal=True,
                day=plan.day,
                stage=plan.stage,
                market=market,
                warmup_split=plan.split,
                location=location,
                broker="sim",
                clock="manual",
            ),
            clock.now(),
        )
    # Each rehearsal has its own day: its governor memory (peak, accepted intents, order times,
    # streaks) must not be another rehearsal's of the same date; a restart keeps its own.
    scoped = SessionScopedStore(store_state, sid)
    governor = Governor(limits, journal=journal, store=scoped, calendar=cfg.data.calendar)
    governor.announce(clock.now())
    if governor.state is TradingState.PAUSED and plan.operator:
        resume(journal, plan.operator, f"start of rehearsal {sid} of {plan.day}", clock.now())
    plan.state_dir.mkdir(parents=True, exist_ok=True)
    journal_id = str(getattr(journal, "journal_id", "memory"))[:8]
    state_path = plan.state_dir / f"{journal_id}-{sid}.sqlite"
    if not resumed and state_path.exists():
        raise InputError(
            f"simulated broker state {state_path} already exists for new session {sid}; "
            "remove it or use another --state-dir"
        )
    broker = SimBroker(
        SimConfig(
            state_path=state_path,
            starting_capital=market.starting_capital,
            costs=market.costs,
            account="SIM-" + sid,
            quantity_decimals=market.quantity_decimals,
        ),
        symbols,
        faults=faults,
        cursor=JournalCursor(records),
    )
    broker.connect()
    trading: Any = broker if wrap_broker is None else wrap_broker(broker, clock)
    observer = SessionObserver(
        symbols, policy.normaliser, market, cfg.env, plan.day, cfg.data.calendar
    )
    observer.warm_up(history)
    policy.new_session()
    loop = LiveLoop(
        policy=policy,
        observer=observer,
        governor=governor,
        broker=trading,
        journal=journal,
        clock=clock,
        session_id=sid,
        settings=LoopSettings(stage=plan.stage, rehearsal=True, close_at_last_close=True),
        heartbeat=heartbeat,
        crash_hook=crash_hook,
    )
    if on_loop is not None:
        on_loop(loop)
    restart: dict[str, int] = {}
    try:
        done_bars = _bars_done(broker, minutes)
        if records.ended:
            loop.done = True
            loop.end_reason = "session had already ended"
        elif done_bars:
            clock.set(minutes[done_bars - 1][symbols[0]].start + BAR)
            loop.catch_up(minutes[:done_bars], broker.executions(), records, vwaps[:done_bars])
            restart = loop.finish_pending(records, done_bars - 1)
            loop.resume_after(records, done_bars - 1)
        wall_clock = wall or ExchangeClock()
        for minute, vwap in zip(minutes[done_bars:], vwaps[done_bars:], strict=True):
            if loop.done:
                break
            clock.set(minute[symbols[0]].start + BAR)
            loop.on_minute(minute, vwap)
            if plan.pace > 0.0 and not loop.done:
                _paced_wait(loop, plan.pace, plan.poll_seconds, wall_clock)
            if loop.stopped and loop.exit_requested:
                break
        summary = loop.finish() if not records.ended else {}
        review = reviewer(journal, sid) if reviewer is not None and summary else None
        return RehearsalResult(
            session_id=sid,
            resumed=resumed,
            steps=loop.steps,
            summary=summary,
            executions=broker.executions(),
            orders=broker.all_orders(),
            state_path=state_path,
            restart=restart,
            review=review,
        )
    finally:
        broker.close()


class SessionScopedStore:
    """A :class:`StateStore` whose keys are suffixed with a session id."""

    def __init__(self, inner: StateStore, session_id: str) -> None:
        self.inner = inner
        self.session_id = session_id

    def load_state(self, key: str) -> Any:
        """The document saved under ``key`` for this session."""
        return self.inner.load_state(f"{key}.{self.session_id}")

    def save_state(self, key: str, value: Any, ts: datetime) -> None:
        """Save ``value`` under ``key`` for this session."""
        self.inner.save_state(f"{key}.{self.session_id}", value, ts)

    @property
    def commits_with_journal(self) -> bool:
        """Whether the inner store's saves ride the journal's commits."""
        return bool(getattr(self.inner, "commits_with_journal", False))

    @property
    def takes_encoded(self) -> bool:
        """Whether the inner store writes an encoded document's text as it is."""
        return bool(getattr(self.inner, "takes_encoded", False))


def _bars_done(broker: SimBroker, minutes: list[Minute]) -> int:
    """How many of the session's minutes the simulated broker has already seen."""
    seen = broker.now()
    return sum(1 for m in minutes if next(iter(m.values())).start < seen)


def _paced_wait(loop: LiveLoop, pace: float, poll: float, wall: Clock) -> None:
    """Wait ``pace`` wall seconds, polling for a halt every ``poll`` seconds."""
    end = wall.monotonic() + pace
    while True:
        left = end - wall.monotonic()
        if left <= 0.0 or (loop.stopped and loop.exit_requested):
            return
        time.sleep(min(poll, left))
        loop.poll()
