"""The live loop: one decision per closed bar, every order through the governor, all journaled.

The loop owns nothing it could disagree with: the observation is the env's (built by
:class:`~stairways.live.observe.SessionObserver` with the online feature kernel and the run's
normaliser), the action meaning is the market core's, the governor checks every intent, and
the broker (simulated or IBKR) executes behind the :class:`~stairways.brokers.base.Broker`
protocol.

Order of events within a bar (:meth:`LiveLoop.on_minute`), the same for every broker; the
timing matches the training env's step (``stairways.env.kernels``):

1. The clock shows the bar's end; the heartbeat is written.
2. The simulated broker advances one minute (fills due at this bar's open, marks at its close);
   a real broker's fills arrive as events.
3. The online features absorb the bar (every symbol's bar of the minute together).
4. Broker events are drained and journaled: fills (into the session book and the governor's
   loss-streak memory), status changes, rejects, a disconnect (trading pauses at once).
5. The session book is marked at the bar's closes; the previous decision's step is complete.
6. The run's drawdown rule (``env.drawdown_cap``, the rule the policy was trained under): past
   the cap every position is closed and the session takes no more decisions.
7. On the session's last bar: the closing step. The action is computed and journaled but not
   used; every position is closed (at the last close with the simulated broker, as the env
   does; with marketable orders at a real broker) and the session ends.
8. The governor assesses the account: an emergency stop (operator halt, SIGTERM, watchdog,
   broker latency) cancels every order and flattens through the broker once, latched; its
   other directives (cancels, close-outs before the close) are executed as marketable orders.
9. The decision: observation -> policy -> action -> targets; for every symbol whose target
   changed (and whose order can still fill inside the session) an intent for the target
   position goes to the governor; approved quantities become market orders.

Write-ahead order of a decision's records, which is what makes a restart safe (see
:mod:`stairways.live.recovery`): ``decision`` and its ``intent`` records in one transaction,
then each verdict (the governor journals it), then an ``order`` record of type ``submitting``,
then the broker call, then ``sent`` or ``refused``. Client order ids are derived from the
decision id (deterministic), so a restarted loop never sends an order twice.

Durability: with a journal that has group commit (:class:`stairways.journal.GroupCommit`), a
decision without orders and the broker's events ride the group commit (committed within its
delay); a decision with orders is written durably before its first order, and every broker call
that places, cancels or flattens is preceded by a flush barrier (:meth:`LiveLoop._barrier`). So
an order intent is always on disk before the order exists, and a crash loses at most the last
few milliseconds of decisions that sent nothing (a restart re-decides from the broker's state).

Behind (a flood): a driver that hands the loop bars faster than it handles them tells it so
(:attr:`LiveLoop.next_bar_waiting`). A decision with orders taken while the next bar is already
waiting does not wait for its own commit: its records (and the governor's staged memory) ride
the group commit and its orders wait in the loop's outbox. At the start of every bar the loop
sends, in decision order, the outbox's orders whose records are durable; when it is no longer
behind, or the oldest has waited ``max_deferred_bars`` bars, it commits first (one commit for
every decision waiting) and sends them all; any other broker action sends them first (the
flush barrier). The governor counts them as working orders meanwhile. So the write-ahead rule
holds and one commit serves several bars; the price is that such an order reaches the broker a
bar or more after its decision, which is what being behind means (the simulated broker fills it
at the open of the bar after it arrives). A loop that is not behind sends as before: its orders
are placed before it returns, and fill at the next bar's open. A crash loses at most the
deferred decisions not yet committed (a restart re-decides from the broker's state); committed
ones that were not sent are finished by :meth:`LiveLoop.finish_pending` like any other.

The governor's memory, when it rides the journal's commits
(:class:`stairways.risk.store.SqlStateStore` bound to the journal), is staged before a
decision's records under :meth:`stairways.journal.Journal.hold`, so the decision, its verdicts,
its ``submitting`` orders and the memory that accepted them are one transaction: one durable
commit per decision with orders. Fills are journaled before the governor accounts them;
:meth:`LiveLoop.catch_up` replays the broker's executions into the governor, which accounts
each execution id once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import numpy as np

from stairways.brokers.base import (
    Broker,
    Connected,
    Disconnected,
    Execution,
    FillEvent,
    MinuteBar,
    OrderRefused,
    OrderRejected,
    OrderStatusChanged,
    PlaceResult,
    ReconciliationDone,
    TradingHalted,
)
from stairways.brokers.orders import OrderRequest, client_order_id
from stairways.clock import Clock, ExchangeClock
from stairways.env import kernels as kn
from stairways.live.model import LivePolicy
from stairways.live.observe import SessionBook, SessionObserver, observation_hash
from stairways.live.records import END_TYPE, INTENT_TYPE
from stairways.live.recovery import SessionRecords, approved, broker_knows, intents_of
from stairways.market.actions import apply_action, quantity_scale, target_quantity
from stairways.market.portfolio import PF_NOTIONAL
from stairways.risk.governor import Governor
from stairways.risk.ports import EventLog
from stairways.risk.state import Actor, TransitionError
from stairways.risk.types import (
    AccountState,
    Decision,
    Directive,
    FillReport,
    Intent,
    MarketMark,
    OpenOrder,
    Position,
    TradingState,
    Verdict,
)

__all__ = [
    "BAR",
    "CrashHook",
    "LatencyWatch",
    "LiveLoop",
    "LoopSettings",
    "StepRecord",
]

log = logging.getLogger(__name__)

BAR = timedelta(minutes=1)

# Called with the name of each write-ahead point; tests raise there to play a crash.
CrashHook = Callable[[str], None]


@dataclass(frozen=True)
class LoopSettings:
    """How the loop behaves around the decisions.

    :param stage: the ladder stage (names the governor's limits)
    :param rehearsal: a session on the controllable clock or the simulated broker
    :param close_at_last_close: close positions at the last bar's close (simulated broker:
        the env's closing step); otherwise flatten with marketable orders
    :param latency_flatten_ms: broker latency above which the latency watch counts
    :param latency_flatten_seconds: how long latency must stay above it before the stop
    :param max_deferred_bars: the most bars a behind loop's orders wait for their group
        commit before the loop commits and sends them itself (see "Behind" in the module doc)
    """

    stage: str
    rehearsal: bool
    close_at_last_close: bool
    latency_flatten_ms: float = 120.0
    latency_flatten_seconds: float = 5.0
    max_deferred_bars: int = 8


@dataclass
class _Outbox:
    """A behind loop's decision whose orders wait for their records' commit."""

    ticket: int  # the journal's ``appended`` count after the decision's records
    bar: int
    at: datetime
    requests: list[tuple[OrderRequest, dict[str, Any]]]


@dataclass
class StepRecord:
    """One decision and what followed until the next one (the replay's step).

    ``fills`` are (symbol, quantity, price, commission) in the order the broker reported them.
    """

    bar: int
    action: int
    used: bool
    decision_id: str
    fills: list[tuple[str, float, float, float]] = field(default_factory=list)
    equity: float = math.nan
    closed: bool = False


class LatencyWatch:
    """Broker latency over a threshold for a whole window (clock seconds) trips a stop.

    :param threshold_ms: latency above which a sample counts as slow
    :param window_seconds: slow samples for this long, with none fast, trip the watch
    """

    def __init__(self, threshold_ms: float, window_seconds: float) -> None:
        self.threshold_ms = threshold_ms
        self.window = window_seconds
        self.slow_since: float | None = None
        self.last_ms = 0.0

    def sample(self, at: float, ms: float) -> bool:
        """Record a latency sample at monotonic time ``at``; True when the watch trips."""
        self.last_ms = ms
        if ms <= self.threshold_ms:
            self.slow_since = None
            return False
        if self.slow_since is None:
            self.slow_since = at
        return at - self.slow_since >= self.window


def _iso(at: datetime) -> str:
    return at.isoformat()


def _fill_report(ex: Execution, fee: float, at: datetime) -> FillReport:
    """What the governor accounts of one execution (once per ``exec_id``)."""
    return FillReport(
        symbol=ex.symbol,
        quantity=ex.quantity,
        price=ex.price,
        commission=fee,
        at=at,
        order_id=ex.client_order_id,
        exec_id=ex.exec_id,
    )


class LiveLoop:
    """One session of the live loop (see the module docstring for the order of events).

    :param policy: the loaded model
    :param observer: features and observations of the session
    :param governor: the risk governor of the stage (every intent passes it)
    :param broker: the broker (connected)
    :param journal: the journal (append-only)
    :param clock: exchange time (the controllable clock in rehearsals)
    :param session_id: the session's id (decision ids derive from it)
    :param settings: loop settings
    :param heartbeat: called with the clock's time after every bar and poll (dead-man's switch)
    :param crash_hook: called at every write-ahead point (tests play crashes with it)
    :param stopwatch: measures decision latency (default: the machine's monotonic clock)
    """

    def __init__(
        self,
        *,
        policy: LivePolicy,
        observer: SessionObserver,
        governor: Governor,
        broker: Broker,
        journal: EventLog,
        clock: Clock,
        session_id: str,
        settings: LoopSettings,
        heartbeat: Callable[[datetime, str], None] | None = None,
        crash_hook: CrashHook | None = None,
        stopwatch: Clock | None = None,
    ) -> None:
        cfg = policy.cfg
        if cfg.market.latency_bars != 1:
            raise TransitionError(
                f"the live loop trades models trained with market.latency_bars: 1 (orders fill "
                f"at the next bar's open); this run has {cfg.market.latency_bars}"
            )
        self.policy = policy
        self.observer = observer
        self.governor = governor
        self.broker = broker
        self.journal = journal
        self.clock = clock
        self.session_id = session_id
        self.settings = settings
        self.heartbeat = heartbeat
        self.crash_hook = crash_hook
        # Decision latency is computing time: measured on the machine's monotonic clock even
        # when the exchange clock is the controllable one of a rehearsal.
        self.stopwatch: Clock = stopwatch or ExchangeClock()
        self.symbols = observer.symbols
        self.n = observer.length
        # The session's account: the model's market with the stage's sizing applied
        # (stairways.risk.limits.stage_market), as the observer sees it.
        self.market = observer.market
        self.qty_scale = quantity_scale(self.market.quantity_decimals)
        self.drawdown_cap = float(cfg.env.drawdown_cap)
        self.book = SessionBook(self.symbols, self.market.starting_capital)
        self.targets = np.zeros(len(self.symbols), dtype=np.float64)
        self._before = np.zeros(len(self.symbols), dtype=np.float64)
        self.set_id = int(observer.ep[kn.EP_ACTION_SET])
        self.steps: list[StepRecord] = []
        self.latencies_ms: list[float] = []
        self.marks: dict[str, MarketMark] = {}
        self.last_bar: int = -1
        self.done = False
        self.end_reason = ""
        self.stopped = False  # the latched emergency stop was carried out
        self.paused_for_disconnect = False
        self.feed_stale = False  # no new bar within the stage's stale-data limit
        self.errors = 0
        self.orders_sent = 0
        self.fills_seen: set[str] = set()
        self.pending_stop: str | None = None
        self.exit_requested = False
        self._deferred: list[tuple[str, Mapping[str, Any], datetime]] = []
        self._outbox: list[_Outbox] = []
        # Set by a driver that can tell whether another bar is already waiting (a flood);
        # None: never behind, every decision's orders go out before the loop returns.
        self.next_bar_waiting: Callable[[], bool] | None = None
        # Called with the bar of a decision once its orders were handed to the broker.
        self.on_dispatch: Callable[[int], None] | None = None
        self._minute_bars: dict[int, dict[str, list[float | None]]] = {}
        self.latency = LatencyWatch(settings.latency_flatten_ms, settings.latency_flatten_seconds)
        self.events_log: deque[str] = deque(maxlen=200)

    # ------------------------------------------------------------------------------------
    # records

    def _base(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "rehearsal": self.settings.rehearsal}

    def _crash(self, point: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(point)

    def decision_id(self, k: int) -> str:
        """The id of the decision on bar ``k`` (deterministic: a restart derives the same)."""
        return f"{self.session_id}-{k:03d}"

    # ------------------------------------------------------------------------------------
    # broker calls, timed for the latency watch

    def _timed(self, fn: Callable[[], Any]) -> Any:
        t0 = self.clock.monotonic()
        out = fn()
        ms = 1000.0 * (self.clock.monotonic() - t0)
        if self.latency.sample(self.clock.monotonic(), ms) and self.pending_stop is None:
            self.pending_stop = (
                f"broker latency over {self.latency.threshold_ms:g} ms for "
                f"{self.latency.window:g} s (last {ms:.0f} ms)"
            )
        return out

    # ------------------------------------------------------------------------------------
    # the bar

    def on_minute(
        self,
        bars: Sequence[MinuteBar] | Mapping[str, MinuteBar],
        vwaps: Mapping[str, float] | None = None,
    ) -> None:
        """Handle one closed minute (one bar per symbol): steps 1 to 9 of the module doc.

        :param vwaps: the bars' own volume-weighted prices, when the source has them
        """
        by_symbol = dict(bars) if isinstance(bars, Mapping) else {b.symbol: b for b in bars}
        now = self.clock.now()
        start = min(b.start for b in by_symbol.values())
        if self.last_bar >= 0 and start < self.observer.bar_start(self.last_bar) + BAR:
            # A minute the loop already has (a frozen feed repeating its last bar): no new
            # data, so no decision; the broker does not see it twice. Staleness is checked.
            self._append(
                "alert",
                {**self._base(), "type": "feed_repeat", "bar_start": _iso(start)},
                now,
            )
            self.poll()
            return
        if self._outbox:
            oldest = self._outbox[0].bar
            stale = self.last_bar - oldest + 1 >= self.settings.max_deferred_bars
            self._dispatch(wait=stale or not self._behind())
        if self.heartbeat is not None:
            self.heartbeat(now, self.session_id)
        on_bars = getattr(self.broker, "on_bars", None)
        if on_bars is not None:
            self._timed(lambda: on_bars(by_symbol))
        self._crash("after_broker_bars")
        k = self._absorb(by_symbol, vwaps)
        self.after_bar(k)

    def _absorb(
        self, by_symbol: Mapping[str, MinuteBar], vwaps: Mapping[str, float] | None = None
    ) -> int:
        k = self.observer.absorb(by_symbol, vwaps)
        self.last_bar = k
        # Kept for the decision record, so that a restart can rebuild the features from the
        # journal alone (a live feed cannot replay the minutes a crash missed).
        self._minute_bars[k] = {
            s: [b.open, b.high, b.low, b.close, b.volume, (vwaps or {}).get(s)]
            for s, b in by_symbol.items()
        }
        for s, b in by_symbol.items():
            self.marks[s] = MarketMark(
                last=b.close,
                at=b.start + BAR,
                bar_volume=b.volume,
                bar_sigma=float(self.observer.mkt[0, k, self.observer.index[s], kn.M_SIGMA]),
            )
        return k

    def after_bar(self, k: int) -> None:
        """Steps 4 to 9 for bar ``k`` (its features absorbed, the broker advanced)."""
        self.drain()
        closes = self.observer.closes(k)
        self.book.mark(closes)
        if self.steps and not self.steps[-1].closed:
            self.steps[-1].equity = self.book.equity
        if self.done:
            return
        if k > 0 and self.book.drawdown > self.drawdown_cap:
            why = (
                f"drawdown {self.book.drawdown:.2%} is past the run's cap "
                f"{self.drawdown_cap:.2%} (env.drawdown_cap)"
            )
            self._append(
                "alert",
                {**self._base(), "type": "session_stop", "why": why, "bar": k},
                self.clock.now(),
            )
            self._close_all(k, why)
            self._end(why)
            return
        if k == self.n - 1:
            self._decide(k, closing=True)
            self.close_session(k)
            return
        self._stop_checks()
        directive = self.governor.assess(self.account())
        self._execute(directive)
        if self.done or self.check_feed():
            return  # no decision on stale data
        self._decide(k, closing=False)

    def poll(self) -> None:
        """Between bars: pick up a halt, drain broker events, check latency and stops."""
        self._dispatch(wait=True)
        now = self.clock.now()
        if self.heartbeat is not None:
            self.heartbeat(now, self.session_id)
        self.drain()
        self._stop_checks()
        self.check_feed()

    def check_feed(self) -> bool:
        """True while the feed is stale: the last bar ended longer ago than the stage's
        ``order_flow.stale_data_seconds``. The first stale check of an outage journals a
        ``feed_stale`` alert and pauses trading (no new exposure until an operator resumes)."""
        if self.last_bar < 0 or self.done:
            return False
        now = self.clock.now()
        age = (now - (self.observer.bar_start(self.last_bar) + BAR)).total_seconds()
        limit = float(self.governor.limits.order_flow.stale_data_seconds)
        if age <= limit:
            self.feed_stale = False
            return False
        if not self.feed_stale:
            self.feed_stale = True
            why = f"no new bar for {age:.0f} s (limit {limit:g} s: order_flow.stale_data_seconds)"
            log.warning("feed stale: %s", why)
            self._append(
                "alert",
                {
                    **self._base(),
                    "type": "feed_stale",
                    "why": why,
                    "age_seconds": age,
                    "bar": self.last_bar,
                },
                now,
            )
            self._pause_trading("feed_stale", f"feed stale: {why}", now)
        return True

    def _stop_checks(self) -> None:
        state = self.governor.sync()
        if self.pending_stop is not None and state is not TradingState.EMERGENCY_STOP:
            why, self.pending_stop = self.pending_stop, None
            self._latch(why)
            state = self.governor.state
        if state is TradingState.EMERGENCY_STOP and not self.stopped:
            self._carry_out_stop()

    def request_stop(self, why: str, *, exit_after: bool = False) -> None:
        """Ask for the latched emergency stop at the next bar or poll (signal-safe)."""
        if self.pending_stop is None:
            self.pending_stop = why
        self.exit_requested = self.exit_requested or exit_after

    def install_signal_handlers(self) -> None:
        """SIGTERM asks for the emergency stop (cancel, flatten, refuse) and then an exit."""

        def on_term(signum: int, frame: FrameType | None) -> None:
            self.request_stop(f"signal {signal.Signals(signum).name}", exit_after=True)

        signal.signal(signal.SIGTERM, on_term)

    def _latch(self, why: str) -> None:
        now = self.clock.now()
        if self.governor.sync() is TradingState.EMERGENCY_STOP:
            return
        self.governor.transition(TradingState.EMERGENCY_STOP, Actor.governor("live_loop"), why, now)
        self._append("alert", {**self._base(), "type": "live_stop", "why": why}, now)

    def _carry_out_stop(self) -> None:
        """Cancel every order and flatten through the broker; the governor refuses intents."""
        now = self.clock.now()
        rec = self.governor.machine.record
        why = f"emergency stop by {rec.who}: {rec.why}"
        log.warning("%s: cancelling every order and flattening", why)
        self._barrier()
        results = self._timed(self.broker.flatten)
        self.stopped = True
        self._append(
            "order",
            {
                **self._base(),
                "type": "close_out",
                "reason": why,
                "orders": [r.client_order_id for r in results],
                "sent": [r.sent for r in results],
            },
            now,
        )
        self.drain()
        if self.settings.close_at_last_close and self.last_bar >= 0:
            self.book.mark(self.observer.closes(self.last_bar))
            if self.steps and not self.steps[-1].closed:
                self.steps[-1].equity = self.book.equity

    # ------------------------------------------------------------------------------------
    # events

    def drain(self) -> None:
        """Journal every broker event; fills go into the book and the governor's memory."""
        events = self._timed(lambda: self.broker.events(0.0))
        if not events and not self._deferred:
            return
        now = self.clock.now()
        batch: list[tuple[str, Mapping[str, Any], datetime]] = []
        rejected: list[tuple[str, str]] = []
        fills: list[FillReport] = []
        for ev in events:
            if isinstance(ev, FillEvent):
                ex = ev.execution
                if ex.exec_id in self.fills_seen:
                    continue
                self.fills_seen.add(ex.exec_id)
                fee = float(ex.commission or 0.0)
                self.book.fill(ex.symbol, ex.quantity, ex.price, fee)
                if self.steps and not self.steps[-1].closed:
                    self.steps[-1].fills.append((ex.symbol, ex.quantity, ex.price, fee))
                batch.append(
                    (
                        "fill",
                        {
                            **self._base(),
                            "exec_id": ex.exec_id,
                            "client_order_id": ex.client_order_id,
                            "broker_order_id": ex.broker_order_id,
                            "symbol": ex.symbol,
                            "quantity": ex.quantity,
                            "price": ex.price,
                            "fee": fee,
                            "time": _iso(ex.time),
                            "recovered": ev.recovered,
                        },
                        now,
                    )
                )
                fills.append(_fill_report(ex, fee, now))
            elif isinstance(ev, OrderStatusChanged):
                batch.append(
                    (
                        "order_status",
                        {
                            **self._base(),
                            "client_order_id": ev.client_order_id,
                            "broker_order_id": ev.broker_order_id,
                            "state": ev.state.value,
                            "filled": ev.filled,
                            "remaining": ev.remaining,
                        },
                        now,
                    )
                )
            elif isinstance(ev, (OrderRejected, OrderRefused)):
                self.errors += 1
                if isinstance(ev, OrderRejected):
                    rejected.append((ev.client_order_id, ev.text))
                text = ev.text if isinstance(ev, OrderRejected) else ev.reason
                batch.append(
                    (
                        "order_status",
                        {
                            **self._base(),
                            "client_order_id": ev.client_order_id,
                            "state": "rejected" if isinstance(ev, OrderRejected) else "refused",
                            "reason": text,
                        },
                        now,
                    )
                )
            elif isinstance(ev, Disconnected):
                batch.append(
                    ("alert", {**self._base(), "type": "broker_disconnect", "why": ev.reason}, now)
                )
                self._on_disconnect(ev.reason, now)
            elif isinstance(ev, Connected):
                batch.append(
                    (
                        "alert",
                        {**self._base(), "type": "broker_connected", "attempt": ev.attempt},
                        now,
                    )
                )
            elif isinstance(ev, ReconciliationDone):
                batch.append(
                    (
                        "position",
                        {
                            **self._base(),
                            "type": "reconciled",
                            "positions": dict(ev.positions),
                            "recovered_fills": ev.recovered_fills,
                            "open_orders": ev.open_orders,
                        },
                        now,
                    )
                )
            elif isinstance(ev, TradingHalted):
                batch.append(
                    ("alert", {**self._base(), "type": "broker_halted", "why": ev.reason}, now)
                )
                if self.pending_stop is None:
                    self.pending_stop = f"the broker halted trading: {ev.reason}"
        with self._hold():
            # The fills are journaled before the governor accounts them, and no other thread
            # commits in between: a memory riding the journal's commits is never saved with a
            # fill its journal lacks (a restart replays the broker's executions by id).
            self.journal_many(batch, durable=False)
            for fill in fills:
                self.governor.record_fill(fill)
        for cid, text in rejected:
            # after the reject is journaled: the governor's pause follows it in the journal
            self.governor.record_reject(cid, text, now)

    def _hold(self) -> contextlib.AbstractContextManager[None]:
        """The journal's :meth:`~stairways.journal.Journal.hold` (no other thread commits
        while it is held), or nothing for a journal without one."""
        hold = getattr(self.journal, "hold", None)
        return hold() if hold is not None else contextlib.nullcontext()

    def _append(self, kind: str, payload: Mapping[str, Any], at: datetime) -> None:
        self.journal_many([(kind, payload, at)])

    def journal_many(
        self, batch: list[tuple[str, Mapping[str, Any], datetime]], *, durable: bool = True
    ) -> None:
        """Append several records (after any deferred ones) in one transaction.

        ``durable=False`` lets them ride the journal's group commit when it has one
        (:class:`stairways.journal.GroupCommit`): decisions without orders and broker events.
        Everything before a broker call is made durable by :meth:`_barrier`.
        """
        if self._deferred:
            batch = [*self._deferred, *batch]
            self._deferred = []
        if not batch:
            return
        many = getattr(self.journal, "append_many", None)
        if many is not None:
            if durable or getattr(self.journal, "group_commit", None) is None:
                many(batch, stored=False)
            else:
                many(batch, durable=False)
        else:
            for kind, payload, at in batch:
                self._append(kind, payload, at)

    def _on_disconnect(self, reason: str, now: datetime) -> None:
        """Safe state at once: no new exposure (PAUSED) until an operator resumes."""
        self.paused_for_disconnect = True
        self._pause_trading("broker_disconnect", f"broker disconnected: {reason}", now)

    def _pause_trading(self, who: str, why: str, now: datetime) -> None:
        """RUNNING -> PAUSED by the loop's rule ``who`` (another state already set stands)."""
        if self.governor.sync() is TradingState.RUNNING:
            try:
                self.governor.transition(TradingState.PAUSED, Actor.governor(who), why, now)
            except TransitionError:
                if self.governor.state is TradingState.RUNNING:
                    raise

    # ------------------------------------------------------------------------------------
    # the account the governor sees

    def account(self) -> AccountState:
        """The session's account: positions from the book, working orders from the broker."""
        figures = self.book.figures()
        opens = tuple(
            OpenOrder(
                order_id=o.client_order_id,
                symbol=o.symbol,
                quantity=o.remaining if o.quantity > 0 else -abs(o.remaining),
                limit_price=o.limit_price,
            )
            for o in self.broker.open_orders()
        )
        if self._outbox:
            opens += tuple(
                OpenOrder(
                    order_id=req.client_order_id,
                    symbol=req.symbol,
                    quantity=req.quantity,
                    limit_price=req.limit_price,
                )
                for box in self._outbox
                for req, _ in box.requests
            )
        return AccountState(
            now=self.clock.now(),
            cash=figures["cash"],
            positions={
                s: Position(float(self.book.shares[j]), float(self.book.avg[j]))
                for j, s in enumerate(self.symbols)
            },
            open_orders=opens,
            marks=self.marks,
            realised_pnl=figures["realised"],
            unrealised_pnl=figures["unrealised"],
            fees=figures["fees"],
            day_turnover=float(self.book.row[PF_NOTIONAL]),
        )

    def _execute(self, directive: Directive) -> None:
        """Carry out what the governor requires: cancels and close-outs (marketable orders)."""
        if directive.empty:
            return
        self._dispatch(wait=True)  # the outbox's orders are working orders too
        now = self.clock.now()
        if directive.cancel_all:
            for o in self.broker.open_orders():
                self._cancel(o.client_order_id)
        for c in directive.close_outs:
            if c.cancel_working:
                for o in self.broker.open_orders():
                    if o.symbol == c.symbol:
                        self._cancel(o.client_order_id)
            stamp = now.strftime("%H%M%S")
            cid = client_order_id(f"{self.session_id}-co{stamp}", c.symbol)
            req = OrderRequest(cid, c.symbol, c.quantity, decision_id=f"close_out:{c.reason}"[:60])
            self._append(
                "order",
                {
                    **self._base(),
                    "type": "close_out",
                    "client_order_id": cid,
                    "symbol": c.symbol,
                    "quantity": c.quantity,
                    "reason": c.reason,
                },
                now,
            )
            result = self._send(req)
            self.orders_sent += int(result.sent)
        self.drain()

    def _barrier(self) -> None:
        """Flush barrier: every record journaled so far is durable before a broker call acts
        (an order intent is durable before its order exists)."""
        flush = getattr(self.journal, "flush", None)
        if flush is not None:
            flush()
        # orders decided earlier go out before this call acts (their records are durable now)
        self._dispatch(wait=False)

    def _cancel(self, cid: str) -> bool:
        self._barrier()
        return bool(self._timed(lambda: self.broker.cancel(cid)))

    def _send(self, req: OrderRequest, *, barrier: bool = True) -> PlaceResult:
        if barrier:
            self._barrier()
        result: PlaceResult = self._timed(lambda: self.broker.place(req))
        return result

    # ------------------------------------------------------------------------------------
    # the decision

    def _decide(self, k: int, *, closing: bool) -> None:
        """Observation -> action -> intents -> verdicts -> orders (step 9, or 7 unused)."""
        t0 = self.stopwatch.monotonic()
        obs = self.observer.observe(k, self.book)
        action = self.policy.act(obs)
        did = self.decision_id(k)
        self._before[:] = self.targets
        changed = False
        if not closing:
            changed = bool(apply_action(self.set_id, action, self.targets, self.targets))
        intents: list[Intent] = []
        if changed and k + 1 <= self.n - 1:
            closes = self.observer.closes(k)
            for j, s in enumerate(self.symbols):
                if self.targets[j] == self._before[j]:
                    continue
                want = target_quantity(
                    float(self.targets[j]),
                    self.market.max_position_notional,
                    float(closes[j]),
                    self.qty_scale,
                )
                intents.append(
                    Intent(
                        intent_id=f"{did}-{s}",
                        decision_id=did,
                        model_id=self.policy.ref.model_id,
                        symbol=s,
                        reason=f"action {action}: target {self._before[j]:+g} -> "
                        f"{self.targets[j]:+g}",
                        target_shares=float(want),
                        decision_price=float(closes[j]),
                    )
                )
        step = StepRecord(bar=k, action=action, used=not closing, decision_id=did)
        if self.steps and not self.steps[-1].closed:
            self.steps[-1].closed = True
        self.steps.append(step)
        now = self.clock.now()
        records: list[tuple[str, Mapping[str, Any], datetime]] = [
            (
                "decision",
                {
                    **self._base(),
                    "observation_hash": observation_hash(obs),
                    "decision_id": did,
                    "bar": k,
                    "bar_start": _iso(self.observer.bar_start(k)),
                    "bars": self._minute_bars.get(k, {}),
                    "action": action,
                    "used": not closing,
                    "targets_before": self._before.tolist(),
                    "targets_after": self.targets.tolist(),
                    "model_id": self.policy.ref.model_id,
                    "fingerprint": self.policy.ref.fingerprint,
                    "intents": [i.intent_id for i in intents],
                },
                now,
            )
        ]
        for i in intents:
            records.append(
                (
                    "intent",
                    {
                        **self._base(),
                        "type": INTENT_TYPE,
                        "intent_id": i.intent_id,
                        "decision_id": did,
                        "model_id": i.model_id,
                        "symbol": i.symbol,
                        "target_shares": i.target_shares,
                        "decision_price": i.decision_price,
                        "reason": i.reason,
                    },
                    now,
                )
            )
        verdicts: list[Verdict] = []
        if intents:
            account = self.account()
            for i in intents:
                verdicts.append(self.governor.check(i, account))
        latency = self.stopwatch.monotonic() - t0
        self.latencies_ms.append(1000.0 * latency)
        records[0][1]["latency_ms"] = round(1000.0 * latency, 4)  # type: ignore[index]
        # Write-ahead, in one transaction: the decision, its intents, every verdict and a
        # "submitting" record for each order about to go out. The governor's memory (which
        # remembers accepted intents) is never saved ahead of them: when it rides the journal's
        # commits it is staged first and lands in the same transaction; otherwise it is saved
        # after. Orders go out last.
        requests: list[tuple[OrderRequest, dict[str, Any]]] = []
        for v in verdicts:
            records.append(("verdict", v.as_event(), now))
            if v.decision is not Decision.REJECT and v.approved != 0.0:
                req = OrderRequest.from_decision(v.decision_id, v.symbol, float(v.approved))
                order = self._order_payload(req, v.intent_id, k)
                records.append(("order", {**order, "type": "submitting"}, now))
                requests.append((req, order))
        # Durable at once when orders follow (write-ahead); otherwise it may ride the group
        # commit. Behind, the orders wait in the outbox for the group commit instead.
        defer = bool(requests) and self._may_defer()
        durable = bool(requests) and not defer
        if verdicts and self.governor.memory_rides_journal:
            with self._hold():
                self.governor.flush(now)
                self.journal_many(records, durable=durable)
            self._crash("after_decision_record")
            self._crash("after_verdict")
        else:
            self.journal_many(records, durable=durable)
            self._crash("after_decision_record")
            if verdicts:
                self.governor.flush(now)
                self._crash("after_verdict")
        if defer:
            self._outbox.append(_Outbox(self.journal.appended, k, now, requests))  # type: ignore[attr-defined]
        else:
            self._place(k, now, requests)
        self.governor.record_decision(latency, did, now)

    def _place(
        self,
        k: int,
        now: datetime,
        requests: list[tuple[OrderRequest, dict[str, Any]]],
        *,
        barrier: bool = True,
    ) -> None:
        """Hand decision ``k``'s orders to the broker. Their records are durable; without
        ``barrier`` (the outbox's, checked against ``durable_through``) later buffered records
        are not committed first."""
        for req, order in requests:
            self._crash("after_submitting")
            result = self._send(req, barrier=barrier)
            self._crash("after_place")
            self.orders_sent += int(result.sent)
            # The answer is journaled with the next batch: if it is lost, a restart finds the
            # order at the broker by its client order id and records it as recovered.
            self._deferred.append(
                (
                    "order",
                    {
                        **order,
                        "type": "sent" if result.sent else "refused",
                        "broker_order_id": result.broker_order_id,
                        "reason": result.reason,
                    },
                    now,
                )
            )
        if requests and self.on_dispatch is not None:
            self.on_dispatch(k)

    def _behind(self) -> bool:
        return self.next_bar_waiting is not None and self.next_bar_waiting()

    def _may_defer(self) -> bool:
        """Whether this decision's orders may wait for the group commit (see "Behind" in the
        module doc): the next bar is waiting, the journal has group commit and tells what is
        durable, and the governor's memory lands with the records."""
        return (
            self._behind()
            and self.settings.max_deferred_bars > 0
            and self.governor.memory_rides_journal
            and getattr(self.journal, "group_commit", None) is not None
            and hasattr(self.journal, "durable_through")
        )

    def _dispatch(self, *, wait: bool) -> None:
        """Send the outbox's orders whose records are durable, in decision order; with
        ``wait``, commit what is buffered first and send them all."""
        if not self._outbox:
            return
        if wait:
            self.journal.flush()  # type: ignore[attr-defined]
        durable = int(self.journal.durable_through)  # type: ignore[attr-defined]
        ready = 0
        while ready < len(self._outbox) and self._outbox[ready].ticket <= durable:
            ready += 1
        boxes, self._outbox = self._outbox[:ready], self._outbox[ready:]
        for box in boxes:
            self._place(box.bar, box.at, box.requests, barrier=False)

    def _order_payload(self, req: OrderRequest, intent_id: str, k: int) -> dict[str, Any]:
        return {
            **self._base(),
            "client_order_id": req.client_order_id,
            "intent_id": intent_id,
            "decision_id": req.decision_id,
            "symbol": req.symbol,
            "quantity": req.quantity,
            "order_type": req.order_type.value,
            "bar": k,
        }

    # ------------------------------------------------------------------------------------
    # restart (see stairways.live.recovery)

    def catch_up(
        self,
        minutes: Sequence[Mapping[str, MinuteBar]],
        executions: Sequence[Any],
        records: SessionRecords,
        vwaps: Sequence[Mapping[str, float] | None] | None = None,
    ) -> None:
        """Rebuild features, book and targets over the minutes the broker already saw.

        :param minutes: the session's minutes up to the broker's last bar, in order
        :param executions: the broker's executions (authoritative), in the order it made them
        :param records: what the journal holds of the session
        """
        by_bar: dict[datetime, list[Any]] = {}
        for ex in executions:
            by_bar.setdefault(ex.time, []).append(ex)
        now = self.clock.now()
        # Before anything is journaled or counted: a governor memory that cannot tell which
        # of these executions it counted refuses the restart (Governor.check_replay).
        starts = [next(iter(m.values())).start for m in minutes]
        self.governor.check_replay(
            [ex.exec_id for s in starts for ex in by_bar.get(s, [])], self.session_id, now
        )
        missing: list[tuple[str, Mapping[str, Any], datetime]] = []
        replayed: list[FillReport] = []
        for i, minute in enumerate(minutes):
            k = self._absorb(minute, None if vwaps is None else vwaps[i])
            start = next(iter(minute.values())).start
            for ex in by_bar.get(start, []):
                fee = float(ex.commission or 0.0)
                self.book.fill(ex.symbol, ex.quantity, ex.price, fee)
                self.fills_seen.add(ex.exec_id)
                replayed.append(_fill_report(ex, fee, now))
                if ex.exec_id not in records.fills:
                    missing.append(
                        (
                            "fill",
                            {
                                **self._base(),
                                "exec_id": ex.exec_id,
                                "client_order_id": ex.client_order_id,
                                "broker_order_id": ex.broker_order_id,
                                "symbol": ex.symbol,
                                "quantity": ex.quantity,
                                "price": ex.price,
                                "fee": fee,
                                "time": _iso(ex.time),
                                "recovered": True,
                            },
                            now,
                        )
                    )
            self.book.mark(self.observer.closes(k))
            decided = records.decisions.get(k)
            if decided is not None:
                self.targets[:] = np.asarray(decided["targets_after"], dtype=np.float64)
        if missing:
            self.journal_many(missing)
        # The governor accounts every execution once: those its saved memory missed (a crash
        # between a fill's journal commit and the memory's) count now, the others are skipped.
        accounted = self.governor.replay_fills(replayed, self.session_id, now)
        self.governor.flush(now)
        self.orders_sent = sum(
            1 for recs in records.orders.values() if any(r["type"] == "sent" for r in recs)
        )
        log.info(
            "session %s caught up over %d bars (%d fills, %d recovered from the broker, %d "
            "accounted by the governor now)",
            self.session_id,
            len(minutes),
            sum(len(v) for v in by_bar.values()),
            len(missing),
            accounted,
        )

    def finish_pending(self, records: SessionRecords, current_bar: int) -> dict[str, int]:
        """Finish the write-ahead chains a crash cut off; returns counts by outcome."""
        counts = {"verdicts": 0, "sent": 0, "recovered": 0, "abandoned": 0}
        now = self.clock.now()
        for k in sorted(records.decisions):
            decision = records.decisions[k]
            for intent in intents_of(decision, records):
                verdict = records.verdicts.get(intent.intent_id)
                if verdict is None:
                    if k != current_bar:
                        self._abandon(
                            intent.intent_id, "", k, "decision bar passed before its verdict", now
                        )
                        counts["abandoned"] += 1
                        continue
                    v = self.governor.check(intent, self.account())
                    self._append("verdict", v.as_event(), now)
                    self.governor.flush(now)
                    counts["verdicts"] += 1
                    verdict = v.as_event()
                if not approved(verdict):
                    continue
                cid = client_order_id(intent.decision_id, intent.symbol)
                state = records.order_state(cid)
                if state in ("sent", "refused", "recovered", "abandoned"):
                    continue
                if broker_knows(self.broker, cid):
                    self._append(
                        "order",
                        {
                            **self._base(),
                            "type": "recovered",
                            "client_order_id": cid,
                            "intent_id": intent.intent_id,
                            "decision_id": intent.decision_id,
                            "symbol": intent.symbol,
                            "bar": k,
                        },
                        now,
                    )
                    counts["recovered"] += 1
                    self.orders_sent += 1
                elif k == current_bar:
                    req_qty = float(verdict["approved"])
                    self._send_recovered(intent, req_qty, k, now, write_ahead=state == "")
                    counts["sent"] += 1
                else:
                    self._abandon(intent.intent_id, cid, k, "the market moved past its bar", now)
                    counts["abandoned"] += 1
        if any(counts.values()):
            log.warning("session %s restart: %s", self.session_id, counts)
        return counts

    def _abandon(self, intent_id: str, cid: str, k: int, why: str, now: datetime) -> None:
        self._append(
            "order",
            {
                **self._base(),
                "type": "abandoned",
                "client_order_id": cid or f"none:{intent_id}",
                "intent_id": intent_id,
                "bar": k,
                "reason": why,
            },
            now,
        )

    def _send_recovered(
        self, intent: Intent, qty: float, k: int, now: datetime, *, write_ahead: bool
    ) -> None:
        req = OrderRequest.from_decision(intent.decision_id, intent.symbol, qty)
        order = self._order_payload(req, intent.intent_id, k)
        if write_ahead:
            self._append("order", {**order, "type": "submitting"}, now)
        result = self._send(req)
        self.orders_sent += int(result.sent)
        self._append(
            "order",
            {
                **order,
                "type": "sent" if result.sent else "refused",
                "broker_order_id": result.broker_order_id,
                "reason": result.reason,
            },
            now,
        )

    # ------------------------------------------------------------------------------------
    # closing

    def _close_all(self, k: int, why: str) -> None:
        """Close every position: at the last close (simulated broker) or with market orders."""
        self._dispatch(wait=True)
        now = self.clock.now()
        held = {s: q for s, q in self.book.positions().items() if q != 0.0}
        working = self.broker.open_orders()
        if not held and not working:
            return
        close = getattr(self.broker, "close_at_last_close", None)
        if self.settings.close_at_last_close and close is not None:
            self._barrier()
            self._timed(close)
        else:
            self._barrier()
            self._timed(self.broker.flatten)
        self._append(
            "order",
            {**self._base(), "type": "close_out", "reason": why, "positions": held, "bar": k},
            now,
        )
        self.drain()
        self.book.mark(self.observer.closes(k))
        if self.steps and not self.steps[-1].closed:
            self.steps[-1].equity = self.book.equity

    def resume_after(self, records: SessionRecords, last: int) -> None:
        """Carry on after catching up to bar ``last`` (its write-ahead chains finished): end
        if the journal holds a stop, close the session if ``last`` was the decided closing
        step, else run the bar's steps 4 to 9 (a bar already decided needs nothing more)."""
        if records.stop:
            self.done = True
            self.end_reason = records.stop
        elif last in records.decisions:
            if last == self.n - 1:
                self.close_session(last)
        else:
            self.after_bar(last)

    def close_session(self, k: int) -> None:
        """The closing step's orders: every position closed, the session over."""
        self._close_all(k, "closing step: the session's last bar")
        self._end("session closed")

    def _end(self, why: str) -> None:
        self.done = True
        self.end_reason = why
        if self.steps:
            self.steps[-1].closed = True

    def summary(self) -> dict[str, Any]:
        """The session's figures (journaled in the end record)."""
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {
            **self._base(),
            "type": END_TYPE,
            "reason": self.end_reason or "stopped",
            "figures": self.book.figures(),
            "positions": self.book.positions(),
            "decisions": len(self.steps),
            "orders_sent": self.orders_sent,
            "errors": self.errors,
            "latency_ms_p50": float(np.percentile(lat, 50)),
            "latency_ms_p99": float(np.percentile(lat, 99)),
            "emergency_stop": self.stopped,
        }

    def finish(self) -> dict[str, Any]:
        """Journal the session's end record and return it."""
        payload = self.summary()
        now = self.clock.now()
        for box in self._outbox:  # never sent: the session is over
            for req, order in box.requests:
                self._abandon(
                    order["intent_id"], req.client_order_id, box.bar, "the session ended", now
                )
        self._outbox = []
        with self._hold():
            # the last fills' accounting (the closing step's) is saved with the end record
            self.governor.flush(now)
            self.journal_many([("config", payload, now)])
        return payload
