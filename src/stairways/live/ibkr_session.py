"""One session of the live loop at Interactive Brokers: the exchange-time session driver.

The loop is the one rehearsals run (:class:`~stairways.live.loop.LiveLoop`: the same features,
normaliser, policy, governor, journal and metrics, one decision per closed bar); this module
feeds it from IB instead of the bar store:

- **Start.** Connect the trader client (:class:`~stairways.brokers.ibkr.adapter.IbkrBroker`);
  an unreachable gateway is a :class:`~stairways.brokers.errors.BrokerConnectionError` naming
  host:port and the fix, and nothing falls back to the simulated broker. The adapter reconciles
  with IB against the journal's fills of the session; a difference it cannot explain (an
  account that is not flat in the model's symbols at the start of a new session, a fill the
  journal never saw and IB's positions do not explain) refuses the start. Nothing is journaled
  before the connection and the reconciliation succeed.
- **Bars.** IB's 5-second real-time bars are aggregated into closed 1-minute bars with their
  VWAP (:class:`~stairways.brokers.ibkr.feed.IbkrBarFeed`); a minute goes to the loop once it
  closed for every symbol. Orders go out through the adapter; fills, status changes, disconnects
  and reconciliations come back as broker events and are journaled by the loop.
- **Minutes the loop did not see live** (started after the open, restarted after a crash, a
  reconnect after a disconnect): they are rebuilt from the journal's decision records (the bars
  the policy saw) and, for the rest, IB's 1-minute historical bars of the day (whose average is
  the same VWAP); the loop absorbs them without deciding (their decision time has passed). A
  restart then finishes the write-ahead chains a crash cut off
  (:meth:`~stairways.live.loop.LiveLoop.finish_pending`) before the next decision.
- **Clock.** A session at IBKR runs on the exchange clock (the machine's clock). A *rehearsal
  against a gateway* (``day`` given: a gateway replaying a stored day, such as the fake gateway of
  the tests and the stress suite) runs on :class:`FeedClock`, whose time is the end of the last
  5-second bar received; it is journaled as a rehearsal and never counts on the ladder.
- **End.** The loop's closing step on the session's last bar (the governor has flattened
  before the close by then), an emergency stop with an exit request, or ``max_wall_seconds``
  (tests, bounded runs: the positions are flattened). The driver then waits up to
  ``settle_seconds`` for the broker to confirm it is flat and journals the end record.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from stairways.brokers.base import Execution, MinuteBar
from stairways.brokers.errors import BrokerStateError
from stairways.brokers.settings import BrokerConfig
from stairways.clock import EXCHANGE_TZ, Clock, ExchangeClock
from stairways.data.store import BarStore
from stairways.errors import DataValidationError, InputError, MissingResourceError
from stairways.journal.schema import JournalLocation
from stairways.live.loop import BAR, CrashHook, LiveLoop, LoopSettings, StepRecord
from stairways.live.model import LivePolicy
from stairways.live.observe import SessionObserver, session_minutes
from stairways.live.recovery import JournalCursor, SessionRecords, read_session
from stairways.live.session import (
    Minute,
    SessionScopedStore,
    load_stage_limits,
    session_config_record,
    session_id_for,
    warmup_first_day,
)
from stairways.live.sizing import check_broker_fractions, session_market
from stairways.market.settings import MarketConfig
from stairways.risk.governor import Governor
from stairways.risk.limits import RISK_CONFIG_DIR
from stairways.risk.operator import resume
from stairways.risk.ports import EventLog, StateStore
from stairways.risk.types import TradingState

__all__ = [
    "FeedClock",
    "IbkrPlan",
    "IbkrSessionResult",
    "load_warmup",
    "run_ibkr_session",
]

log = logging.getLogger(__name__)


class FeedClock:
    """Exchange time of the market data: the end of the last 5-second bar received.

    The clock of a rehearsal against a gateway that replays a stored day. Its monotonic reading
    is the machine's (durations, broker latency and reconnect backoff are real time).

    :param start: the instant shown before the first bar (the session's open)
    """

    def __init__(self, start: datetime) -> None:
        self._at = start.astimezone(EXCHANGE_TZ)
        self.started = False

    def now(self) -> datetime:
        """The end of the last bar received (exchange time)."""
        return self._at

    def monotonic(self) -> float:
        """``time.perf_counter()``."""
        return time.perf_counter()

    def follow(self, at: datetime) -> None:
        """A bar ending at ``at`` arrived: the clock moves there (never backwards)."""
        self.started = True
        at = at.astimezone(EXCHANGE_TZ)
        if at > self._at:
            self._at = at


@dataclass(frozen=True)
class IbkrPlan:
    """What to run at IBKR.

    :param stage: ladder stage (risk limits ``<risk_dir>/<stage>.yaml``)
    :param day: None: today's session on the exchange clock; a date: a rehearsal against a
        gateway replaying that stored day, on the :class:`FeedClock`
    :param split: align the features' warm-up with this split's panel (None: the day's own)
    :param operator: who starts trading when the governor is PAUSED ("" waits for a resume)
    :param risk_dir: folder of the stage files
    :param poll_seconds: how long one wait for bars lasts (the loop polls between waits)
    :param grace_seconds: how long after a minute's end its missing bars are awaited before the
        minute is rebuilt from IB's historical bars
    :param settle_seconds: how long, after the session ended, to wait for the broker to be flat
    :param max_wall_seconds: end the session (flattening) after this many wall seconds
    :param first_bar_seconds: a rehearsal gives up when no bar came within this many seconds
    """

    stage: str = "paper"
    day: date | None = None
    split: str | None = None
    operator: str = ""
    risk_dir: Path = RISK_CONFIG_DIR
    poll_seconds: float = 0.05
    grace_seconds: float = 15.0
    settle_seconds: float = 10.0
    max_wall_seconds: float | None = None
    first_bar_seconds: float = 120.0

    @property
    def rehearsal(self) -> bool:
        """A rehearsal against a replaying gateway (a day was given)."""
        return self.day is not None


@dataclass
class IbkrSessionResult:
    """A finished (or stopped) session at IBKR."""

    session_id: str
    resumed: bool
    steps: list[StepRecord]
    summary: dict[str, Any]
    executions: list[Execution]
    positions: dict[str, float]
    open_orders: int
    account: str
    restart: dict[str, int] = field(default_factory=dict)
    live_minutes: int = 0
    rebuilt_minutes: int = 0
    history_requests: int = 0
    review: Any = None  # the ladder's review after the session (LadderReview), if one ran


def load_warmup(
    store: Path, cfg_data: Any, symbols: tuple[str, ...], day: date, split: str | None
) -> pd.DataFrame:
    """The stored bars before ``day`` the online features warm up on (from the first warm-up
    session the panel builder reads for ``split``, or for ``day`` alone)."""
    first = warmup_first_day(store, cfg_data, day, split)
    with BarStore(store, read_only=True) as bs:
        history: pd.DataFrame = bs.read_bars(list(symbols), first, day - timedelta(days=1))
    if history.empty:
        raise MissingResourceError(
            f"bar store {store} holds no bars of {', '.join(symbols)} before {day} to warm the "
            "features up on; import recent sessions (stairways data import --ibkr)"
        )
    return history


def _minute_of(at: datetime) -> datetime:
    return at.astimezone(EXCHANGE_TZ).replace(second=0, microsecond=0)


def _journal_minute(
    decision: Mapping[str, Any], start: datetime
) -> tuple[Minute, dict[str, float]]:
    """The bars a journaled decision saw, as the loop's minute and its VWAPs."""
    minute: Minute = {}
    vwaps: dict[str, float] = {}
    for s, row in dict(decision.get("bars", {})).items():
        o, h, lo, c, v = (float(x) for x in row[:5])
        vwap = row[5] if len(row) > 5 else None
        minute[s] = MinuteBar(s, start, o, h, lo, c, v, None if vwap is None else float(vwap))
        if vwap is not None:
            vwaps[s] = float(vwap)
    return minute, vwaps


class _Session:
    """The driver's state: which minutes the loop has, which are pending, where the data is."""

    def __init__(
        self,
        loop: LiveLoop,
        broker: Any,
        feed: Any,
        journal: EventLog,
        records: SessionRecords,
        plan: IbkrPlan,
        started_at: datetime,
    ) -> None:
        self.loop = loop
        self.broker = broker
        self.feed = feed
        self.journal = journal
        self.records = records
        self.plan = plan
        self.started_at = started_at
        self.observer = loop.observer
        self.symbols = loop.symbols
        self.pending: dict[int, dict[str, MinuteBar]] = {}
        self.next_k = 0
        self.caught_up = False
        self.restart: dict[str, int] = {}
        self.live_minutes = 0
        self.rebuilt_minutes = 0
        self.history_requests = 0
        self._history: dict[int, dict[str, MinuteBar]] = {}
        self._flattened_at = -1

    # data ----------------------------------------------------------------------------------

    def take(self, bars: Sequence[MinuteBar]) -> None:
        for b in bars:
            try:
                k = self.observer.bar_index(b.start)
            except DataValidationError as err:
                log.warning("bar ignored: %s", err)
                continue
            if k < self.next_k:
                log.warning("%s bar %s arrived after its minute was handled; ignored", b.symbol, k)
                continue
            self.pending.setdefault(k, {})[b.symbol] = b

    def _complete(self, k: int) -> bool:
        return set(self.pending.get(k, {})) >= set(self.symbols)

    def history(self, ks: Sequence[int]) -> dict[int, dict[str, MinuteBar]]:
        """IB's 1-minute historical bars of the session for minutes ``ks`` (one request per
        symbol for the day so far, repeated only for minutes not yet fetched)."""
        want = [k for k in ks if set(self._history.get(k, {})) < set(self.symbols)]
        if want:
            from ib_async import RequestError

            from stairways.brokers.ibkr.history import bar_start, session_minute_bars

            end = pd.Timestamp(self.loop.clock.now())
            for s in self.symbols:
                self.history_requests += 1
                try:
                    bars = session_minute_bars(self.broker.ib, s, end)
                except RequestError as err:
                    raise BrokerStateError(
                        f"IB historical bars of {s} for the minutes the loop missed: IB error "
                        f"{err.code}: {err.message}"
                    ) from None
                for b in bars:
                    at = bar_start(b).tz_convert(EXCHANGE_TZ).to_pydatetime()
                    try:
                        k = self.observer.bar_index(at)
                    except DataValidationError:
                        continue
                    vwap = float(b.average) if b.average and b.average > 0 else None
                    self._history.setdefault(k, {})[s] = MinuteBar(
                        s,
                        at,
                        float(b.open),
                        float(b.high),
                        float(b.low),
                        float(b.close),
                        float(b.volume),
                        vwap if b.volume > 0 else None,
                    )
        return {k: self._history.get(k, {}) for k in ks}

    def rebuild(self, ks: Sequence[int]) -> tuple[list[Minute], list[dict[str, float]]]:
        """Minutes ``ks``: from the journal's decisions, else the pending bars, else IB."""
        minutes: list[Minute] = []
        vwaps: list[dict[str, float]] = []
        need_ib = [k for k in ks if k not in self.records.decisions and not self._complete(k)]
        fetched = self.history(need_ib) if need_ib else {}
        for k in ks:
            start = self.observer.bar_start(k)
            if k in self.records.decisions:
                minute, vw = _journal_minute(self.records.decisions[k], start)
            elif self._complete(k):
                minute = {s: self.pending[k][s] for s in self.symbols}
                vw = {s: b.vwap for s, b in minute.items() if b.vwap is not None}
            else:
                got = fetched.get(k, {})
                missing = [s for s in self.symbols if s not in got]
                if missing:
                    raise BrokerStateError(
                        f"minute {start:%H:%M} of the {self.observer.day} session: no bar of "
                        f"{', '.join(missing)} from the feed, the journal or IB's historical "
                        "data; the loop cannot rebuild its features. Check the market data "
                        "subscription, then restart the session"
                    )
                minute = {s: got[s] for s in self.symbols}
                vw = {s: b.vwap for s, b in minute.items() if b.vwap is not None}
            missing_decided = set(self.symbols) - set(minute)
            if missing_decided:
                raise BrokerStateError(
                    f"the journal's decision on minute {start:%H:%M} lacks the bars of "
                    f"{', '.join(sorted(missing_decided))}"
                )
            minutes.append({s: minute[s] for s in self.symbols})
            vwaps.append(vw)
            self.pending.pop(k, None)
        self.rebuilt_minutes += len(ks)
        return minutes, vwaps

    # the session ---------------------------------------------------------------------------

    def live_start(self) -> int | None:
        """The first minute the feed delivers (None before the session's data starts)."""
        now = self.loop.clock.now()
        clock = self.loop.clock
        if isinstance(clock, FeedClock) and not clock.started:
            return None
        offset = (now - self.observer.bar_start(0)).total_seconds()
        if offset < 0:
            return None
        at = min(int(offset // 60), self.observer.length)
        if self.pending:
            at = min(at, min(self.pending))
        return at

    def catch_up(self, first_live: int) -> None:
        """Absorb minutes 0..first_live-1 (journal, IB history) and finish a restart."""
        loop = self.loop
        records = self.records
        self.caught_up = True
        if records.ended:
            loop.done = True
            loop.end_reason = "session had already ended"
            return
        ks = list(range(self.next_k, first_live))
        if not ks:
            return
        minutes, vwaps = self.rebuild(ks)
        last_start = self.observer.bar_start(ks[-1])
        mine = self.executions()
        inside = [
            dataclasses.replace(e, time=_minute_of(e.time))
            for e in mine
            if _minute_of(e.time) <= last_start
        ]
        loop.catch_up(minutes, inside, records, vwaps)
        # fills after the rebuilt minutes that the journal already holds: the reconciliation
        # does not report them again (they are known), so the book takes them here
        for e in mine:
            later = _minute_of(e.time) > last_start
            if later and e.exec_id in records.fills and e.exec_id not in loop.fills_seen:
                loop.fills_seen.add(e.exec_id)
                loop.book.fill(e.symbol, e.quantity, e.price, float(e.commission or 0.0))
        last = ks[-1]
        self.next_k = last + 1
        self.restart = loop.finish_pending(records, last)
        loop.resume_after(records, last)

    def executions(self) -> list[Execution]:
        """The broker's executions of this session: its own orders, and closing orders
        (``sw-flatten-...``) executed after the session started (one trader client id)."""
        sid = self.loop.session_id
        out = []
        for e in self.broker.executions():
            ours = f"-{sid}-" in e.client_order_id
            closing = e.client_order_id.startswith("sw-flatten-") and e.time >= self.started_at
            if ours or closing:
                out.append(e)
        return out

    def reflatten(self) -> None:
        """After an emergency stop whose flatten could not reach IB (disconnected), flatten
        again once per connection, when IB still reports positions in the session's symbols."""
        loop, broker = self.loop, self.broker
        if not loop.stopped or not broker.connected or broker.connects == self._flattened_at:
            return
        self._flattened_at = broker.connects
        held = _held(broker, self.symbols)
        if not held:
            return
        log.warning("session %s: flattening %s again after the reconnect", loop.session_id, held)
        results = broker.flatten()
        loop.journal_many(
            [
                (
                    "order",
                    {
                        "session_id": loop.session_id,
                        "rehearsal": self.plan.rehearsal,
                        "type": "close_out",
                        "reason": "emergency stop: flatten again after the reconnect",
                        "orders": [r.client_order_id for r in results],
                        "sent": [r.sent for r in results],
                    },
                    loop.clock.now(),
                )
            ]
        )

    def step(self) -> None:
        """Hand the loop every minute that is complete, in order; rebuild the ones the feed
        will not complete (a gap after a reconnect, a symbol's missing minute)."""
        loop = self.loop
        while not loop.done:
            if self._complete(self.next_k):
                minute = self.pending.pop(self.next_k)
                vw = {s: b.vwap for s, b in minute.items() if b.vwap is not None}
                loop.on_minute({s: minute[s] for s in self.symbols}, vw)
                self.live_minutes += 1
                self.next_k += 1
                continue
            later = [k for k in self.pending if k > self.next_k and self._complete(k)]
            due = (
                self.observer.bar_start(self.next_k)
                + BAR
                + timedelta(seconds=self.plan.grace_seconds)
            )
            if later and loop.clock.now() >= due:
                ks = list(range(self.next_k, min(later)))
                log.warning(
                    "minutes %d..%d of the session did not come from the feed; rebuilt from "
                    "IB's historical bars without deciding on them",
                    ks[0],
                    ks[-1],
                )
                loop.journal_many([])  # deferred order answers first: the records are read
                minutes, vwaps = self.rebuild(ks)
                loop.catch_up(minutes, [], read_session(self.journal, loop.session_id), vwaps)
                self.next_k = ks[-1] + 1
                continue
            return


def _session_record(
    policy: LivePolicy,
    plan: IbkrPlan,
    sid: str,
    day: date,
    broker: Any,
    location: JournalLocation | None,
    market: MarketConfig,
) -> dict[str, Any]:
    return session_config_record(
        policy,
        session_id=sid,
        rehearsal=plan.rehearsal,
        day=day,
        stage=plan.stage,
        market=market,
        warmup_split=plan.split,
        location=location,
        broker="ibkr",
        clock="feed" if plan.rehearsal else "exchange",
        gateway=f"{broker.endpoint.host}:{broker.endpoint.port}",
        client_id=broker.endpoint.client_id,
        account=broker.account_id,
        mode=broker.cfg.mode,
    )


def run_ibkr_session(
    policy: LivePolicy,
    plan: IbkrPlan,
    broker_cfg: BrokerConfig,
    *,
    journal: EventLog,
    store_state: StateStore,
    location: JournalLocation | None = None,
    bar_store: Path | None = None,
    live: bool = False,
    clock: Clock | None = None,
    wall: Clock | None = None,
    heartbeat: Callable[[datetime, str], None] | None = None,
    on_loop: Callable[[LiveLoop], None] | None = None,
    crash_hook: CrashHook | None = None,
    wrap_broker: Callable[[Any], Any] | None = None,
    ib_factory: Callable[[], Any] | None = None,
    host: str | None = None,
    port: int | None = None,
    reviewer: Callable[[Any, str], Any] | None = None,
) -> IbkrSessionResult:
    """Run one session of the live loop at IBKR (see the module docstring).

    :param policy: the loaded model
    :param plan: stage, day (rehearsal), warm-up split, operator, bounds
    :param broker_cfg: the broker configuration (``ibkr`` host, port, mode, client ids)
    :param journal: the journal (its governor state is the account's, or the rehearsal's)
    :param store_state: where the governor keeps its memory of the day
    :param bar_store: the bar store the features warm up from (default: the run's)
    :param live: the explicit live flag (the adapter refuses it without ``mode: live``)
    :param clock: exchange time (default: the exchange clock, or a :class:`FeedClock`)
    :param wall: the wall clock bounding the run
    :param heartbeat: called after every bar and poll (the dead-man's switch)
    :param on_loop: called with the loop once it is built (signal handlers, tests)
    :param crash_hook: called at every write-ahead point (tests)
    :param wrap_broker: wraps the adapter as the loop sees it (stress: added latency)
    :param ib_factory: builds the ib_async client (default: ``ib_async.IB``)
    :param host: override of ``ibkr.host``
    :param port: override of the configured port
    :param reviewer: called with the journal and the session id once the session has ended
        (:class:`stairways.live.ladder.SessionReviewer`: the ladder's review after a session)
    """
    from stairways.brokers.ibkr.adapter import IbkrBroker
    from stairways.brokers.ibkr.feed import IbkrBarFeed

    cfg = policy.cfg
    symbols = tuple(cfg.data.symbols)
    limits = load_stage_limits(plan.stage, plan.risk_dir, symbols)
    if tuple(broker_cfg.symbols) != symbols and set(symbols) - set(broker_cfg.symbols):
        raise InputError(
            f"the broker configuration trades {list(broker_cfg.symbols)} but the model trades "
            f"{list(symbols)}; set symbols in the broker configuration"
        )
    # The stage's account (notional-sized stages trade fractions: only with IB's permission).
    where = str(plan.risk_dir / f"{plan.stage}.yaml")
    market = session_market(cfg.market, cfg.env, limits, where)
    check_broker_fractions(limits, broker_cfg, "the broker configuration")
    wall_clock = wall or ExchangeClock()
    if plan.day is not None:
        day = plan.day
        open_at, _ = session_minutes(day, cfg.data.calendar)
        the_clock: Clock = clock or FeedClock(open_at.to_pydatetime())
    else:
        the_clock = clock or ExchangeClock()
        day = the_clock.now().astimezone(EXCHANGE_TZ).date()
    open_ts, length = session_minutes(day, cfg.data.calendar)
    close_at = (open_ts + pd.Timedelta(minutes=length)).to_pydatetime()
    if plan.day is None and the_clock.now() >= close_at:
        raise InputError(
            f"the {day} session closed at {close_at:%H:%M} exchange time; start a session "
            "before the close (or rehearse a stored day with --broker sim --rehearse DATE)"
        )
    history = load_warmup(bar_store or cfg.data.store_path, cfg.data, symbols, day, plan.split)
    sid, resumed = session_id_for(
        journal,
        rehearsal=plan.rehearsal,
        day=day,
        stage=plan.stage,
        fingerprint=policy.ref.fingerprint,
    )
    records = read_session(journal, sid)
    kwargs: dict[str, Any] = {}
    if ib_factory is not None:
        kwargs["ib_factory"] = ib_factory
    broker = IbkrBroker(
        broker_cfg,
        role="trader",
        live=live,
        cursor=JournalCursor(records),
        clock=the_clock,
        host=host,
        port=port,
        **kwargs,
    )
    broker.connect()  # BrokerConnectionError names host:port and the fix; nothing journaled yet
    try:
        if broker.halted:
            raise BrokerStateError(
                f"reconciliation with IB at {broker.endpoint} at the start of session {sid} "
                f"failed: {broker.halted}. Nothing was traded; flatten or explain the "
                "positions (stairways broker check / broker flatten) and start again"
            )
        started_at = the_clock.now()
        if not resumed:
            journal.append(
                "config",
                _session_record(policy, plan, sid, day, broker, location, market),
                started_at,
            )
        else:
            # closing orders of the day after the open belong to the resumed session
            started_at = open_ts.to_pydatetime()
        scoped = SessionScopedStore(store_state, sid)
        governor = Governor(limits, journal=journal, store=scoped, calendar=cfg.data.calendar)
        governor.announce(the_clock.now())
        if governor.state is TradingState.PAUSED and plan.operator:
            where = "rehearsal against the gateway" if plan.rehearsal else "session at IBKR"
            resume(journal, plan.operator, f"start of {where} {sid} of {day}", the_clock.now())
        observer = SessionObserver(
            symbols, policy.normaliser, market, cfg.env, day, cfg.data.calendar
        )
        observer.warm_up(history)
        policy.new_session()
        trading: Any = broker if wrap_broker is None else wrap_broker(broker)
        loop = LiveLoop(
            policy=policy,
            observer=observer,
            governor=governor,
            broker=trading,
            journal=journal,
            clock=the_clock,
            session_id=sid,
            settings=LoopSettings(
                stage=plan.stage, rehearsal=plan.rehearsal, close_at_last_close=False
            ),
            heartbeat=heartbeat,
            crash_hook=crash_hook,
        )
        if on_loop is not None:
            on_loop(loop)
        on_bar = the_clock.follow if isinstance(the_clock, FeedClock) else None
        feed = IbkrBarFeed(broker, symbols, on_bar=on_bar)
        state = _Session(loop, broker, feed, journal, records, plan, started_at)
        _drive(state, plan, wall_clock, close_at)
        _settle(broker, loop, plan.settle_seconds, wall_clock)
        if loop.last_bar >= 0:
            # closing fills arrive after the last bar's mark: mark again, so that the end
            # record's equity and P&L include them (flat: equity is cash)
            loop.book.mark(loop.observer.closes(loop.last_bar))
        summary = loop.finish() if not records.ended else {}
        review = reviewer(journal, sid) if reviewer is not None and summary else None
        positions = {p.symbol: p.quantity for p in broker.positions()}
        return IbkrSessionResult(
            session_id=sid,
            resumed=resumed,
            steps=loop.steps,
            summary=summary,
            executions=state.executions(),
            positions=positions,
            open_orders=len(broker.open_orders()),
            account=broker.account_id,
            restart=state.restart,
            live_minutes=state.live_minutes,
            rebuilt_minutes=state.rebuilt_minutes,
            history_requests=state.history_requests,
            review=review,
        )
    finally:
        broker.close()


def _drive(state: _Session, plan: IbkrPlan, wall: Clock, close_at: datetime) -> None:
    """The session's wait-for-bars loop, bounded by the session's end and ``plan``'s limits."""
    loop = state.loop
    begun = wall.monotonic()
    while not loop.done:
        if loop.stopped and loop.exit_requested:
            return
        if plan.max_wall_seconds is not None and wall.monotonic() - begun > plan.max_wall_seconds:
            why = f"stopped after {plan.max_wall_seconds:g} wall seconds (the run's bound)"
            log.warning("session %s %s", loop.session_id, why)
            if loop.last_bar >= 0:
                loop.close_session(loop.last_bar)
            else:
                loop.done = True
            loop.end_reason = why
            return
        state.take(state.feed.poll(plan.poll_seconds))
        if not state.caught_up:
            first = state.live_start()
            if first is None:
                waited = wall.monotonic() - begun
                if plan.rehearsal and waited > plan.first_bar_seconds:
                    raise BrokerStateError(
                        f"no real-time bar from the gateway within {plan.first_bar_seconds:g} "
                        f"s; a rehearsal against a gateway needs one replaying the "
                        f"{loop.observer.day} session"
                    )
                loop.poll()
                continue
            state.catch_up(first)
        state.step()
        state.reflatten()
        if loop.done:
            return
        if loop.clock.now() >= close_at + timedelta(seconds=plan.grace_seconds):
            why = "the session closed before its last bar arrived"
            log.warning("session %s: %s", loop.session_id, why)
            loop.close_session(max(loop.last_bar, 0))
            loop.end_reason = why
            return
        loop.poll()


def _held(broker: Any, symbols: Sequence[str]) -> dict[str, float]:
    return {p.symbol: p.quantity for p in broker.positions() if p.symbol in symbols}


def _settle(broker: Any, loop: LiveLoop, seconds: float, wall: Clock) -> None:
    """Wait (bounded) until IB reports no working order and no position in the session's
    symbols (the session ends flat: closing step, stop or bound); journal what arrives."""
    deadline = wall.monotonic() + seconds
    while wall.monotonic() < deadline:
        loop.drain()
        if not _held(broker, loop.symbols) and not broker.open_orders():
            return
        broker.pump(0.1)
    loop.drain()
    held = _held(broker, loop.symbols)
    if broker.open_orders() or held:
        log.warning(
            "session %s ended with %d working orders and positions %s at IB",
            loop.session_id,
            len(broker.open_orders()),
            held,
        )
