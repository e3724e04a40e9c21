"""The risk governor: every order intent passes through :meth:`Governor.check` before a broker.

``check(intent, account)`` returns a :class:`~stairways.risk.types.Verdict`, never an
exception: **approve**, **reduce** (a smaller order, naming the limit that cut it) or
**reject** (naming every rule that refused). ``assess(account)``, called by the live loop on
every bar and after fills, returns a :class:`~stairways.risk.types.Directive`: cancels and
close-outs the governor itself requires (the close-relative schedule, drawdown and loss stops,
an emergency stop).

How an order is sized. With ``p`` shares held and an order of ``q`` shares, the order first
reduces the position (``r = min(|q|, |p|)`` when ``q`` and ``p`` have opposite signs) and then
adds new exposure (``i = |q| - r``). Rules that block new exposure (reduce-only, the windows
before the close, stale data, loss streak, cooldown, shorting, the loss limit) cut ``i`` to 0;
the position and gross limits cap ``i``; the order-size and turnover limits cap ``r + i``,
cutting the new exposure first. Quantities are sized with the market core's rule
(:func:`stairways.market.actions.target_quantity`) in the stage's steps: whole shares, or
fractions of ``10**-sizing.quantity_decimals`` shares for a notional-sized stage, where every
cut is a whole number of steps. The cost estimate is the market core's fill model
(:func:`stairways.market.costs.fill_one`).

The bounds the verdicts keep (property-tested in ``tests/unit/risk``): an approved order that
adds exposure leaves the position within the position limit, the gross exposure within the
gross limit and the day's P&L after its estimated costs above minus the loss limit; every
approved order keeps the day's turnover (fills, working orders and this order) within its
limit and its own notional within the order limit; in reduce-only mode no approved order
increases a position's size or flips its sign.

The governor keeps a small memory of the day (peak equity, drawdown layer, accepted intent ids,
order times, loss streak, cooldowns, the executions it has accounted) in its state store so that
a restart does not forget it. Fills are accounted once per execution id: a restart feeds the
broker's executions again (:meth:`stairways.live.loop.LiveLoop.catch_up`) and the memory counts
exactly those it had not saved, whichever side of a commit the crash fell on.
Drawdown layers latch for the session: once sizes are halved they stay halved until the next
session.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from stairways.market.actions import is_multiple_of_step, quantity_scale, target_quantity
from stairways.market.costs import cost_params, fill_one
from stairways.market.portfolio import PF_REALISED, PF_WIDTH, pf_fill
from stairways.risk.limits import RiskLimits, dump_limits
from stairways.risk.ports import (
    KIND_ALERT,
    KIND_CONFIG,
    KIND_VERDICT,
    EncodedDocument,
    EventLog,
    StateStore,
)
from stairways.risk.sessions import SessionCalendar
from stairways.risk.state import (
    Actor,
    StateRecord,
    StateStoreError,
    TradingStateMachine,
    TransitionError,
)
from stairways.risk.types import (
    AccountState,
    Alert,
    Check,
    CloseOut,
    Decision,
    Directive,
    FillReport,
    Intent,
    MarketMark,
    Reason,
    SessionPhase,
    TradingState,
    Verdict,
)

__all__ = ["Governor", "memory_key"]

log = logging.getLogger(__name__)


def memory_key(stage: str) -> str:
    """The state-store key of a stage's memory (stages never share a day's figures)."""
    return f"risk.memory.{stage}"


_EPS = 1e-9
_NAN = float("nan")

# Drawdown layers (index into the latched ``layer``).
LAYER_NONE, LAYER_HALVE, LAYER_REDUCE_ONLY, LAYER_HALT = 0, 1, 2, 3
_LAYER_NAMES = ("none", "halve sizes", "reduce only", "flatten and halt")

# Flatten urgency: 1 = the flatten window (retry on the timer), 2 = a stop, the hard cutoff or an
# emergency stop (cancel everything and close out at once, then retry on the timer).
_URGENT = 2


def _remaining(cut: tuple[Reason, float]) -> float:
    """The order size a cut left (the binding limit is the one that left the least)."""
    return cut[1]


@dataclass
class _Memory:
    """What the governor remembers about the session; persisted under :func:`memory_key`."""

    session: str = ""
    peak_equity: float = 0.0
    layer: int = LAYER_NONE
    loss_alert_sent: bool = False
    stop_flatten: bool = False
    stop_reason: str = ""
    accepted: set[str] = field(default_factory=set)
    order_times: deque[float] = field(default_factory=deque)
    loss_streak: int = 0
    lock_until: float = 0.0
    cooldown_until: float = 0.0
    latency_streak: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    reject_streak: int = 0
    flatten_level: int = 0
    last_close_out: dict[str, float] = field(default_factory=dict)
    last_cancel_all: float = -math.inf
    held_alert: str = ""
    # execution ids accounted by record_fill this session (a restart's replay skips them)
    fills: set[str] = field(default_factory=set)
    # False for a memory saved before fills were listed by execution id (until its session
    # ends or a replay finds nothing it cannot tell apart): which fills it counted is unknown
    fills_complete: bool = True
    # round-trip tracking for the loss streak (market-core accounting arrays)
    rt_row: np.ndarray = field(default_factory=lambda: np.zeros(PF_WIDTH))
    rt_shares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rt_avg: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rt_pnl: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def new_session(self, session: str, start_equity: float) -> None:
        """Forget the previous session's day figures (cooldowns and locks run on)."""
        self.session = session
        self.peak_equity = start_equity
        self.layer = LAYER_NONE
        self.loss_alert_sent = False
        self.stop_flatten = False
        self.stop_reason = ""
        self.accepted.clear()
        self.order_times.clear()
        self.fills.clear()
        self.fills_complete = True
        self.flatten_level = 0
        self.last_close_out.clear()
        self.last_cancel_all = -math.inf

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "session": self.session,
            "peak_equity": self.peak_equity,
            "layer": self.layer,
            "loss_alert_sent": self.loss_alert_sent,
            "stop_flatten": self.stop_flatten,
            "stop_reason": self.stop_reason,
            "accepted": sorted(self.accepted),
            "order_times": list(self.order_times),
            "loss_streak": self.loss_streak,
            "lock_until": self.lock_until,
            "cooldown_until": self.cooldown_until,
            "latency_streak": self.latency_streak,
            "latencies_ms": list(self.latencies_ms),
            "reject_streak": self.reject_streak,
            "flatten_level": self.flatten_level,
            "last_close_out": dict(self.last_close_out),
            "last_cancel_all": None if math.isinf(self.last_cancel_all) else self.last_cancel_all,
            "held_alert": self.held_alert,
            "fills": sorted(self.fills),
            "fills_complete": self.fills_complete,
            "rt_row": self.rt_row.tolist(),
            "rt_shares": self.rt_shares.tolist(),
            "rt_avg": self.rt_avg.tolist(),
            "rt_pnl": self.rt_pnl.tolist(),
        }

    @classmethod
    def restore(cls, doc: Mapping[str, Any] | None, n_symbols: int) -> _Memory:
        """Rebuild from a stored document (a fresh memory when there is none)."""
        m = cls(
            rt_shares=np.zeros(n_symbols),
            rt_avg=np.zeros(n_symbols),
            rt_pnl=np.zeros(n_symbols),
        )
        if doc is None:
            return m
        m.session = str(doc["session"])
        m.peak_equity = float(doc["peak_equity"])
        m.layer = int(doc["layer"])
        m.loss_alert_sent = bool(doc["loss_alert_sent"])
        m.stop_flatten = bool(doc["stop_flatten"])
        m.stop_reason = str(doc["stop_reason"])
        m.accepted = set(doc["accepted"])
        m.order_times = deque(float(t) for t in doc["order_times"])
        m.loss_streak = int(doc["loss_streak"])
        m.lock_until = float(doc["lock_until"])
        m.cooldown_until = float(doc["cooldown_until"])
        m.latency_streak = int(doc["latency_streak"])
        m.latencies_ms = [float(x) for x in doc["latencies_ms"]]
        # absent from memories saved before the reject rule existed
        m.reject_streak = int(doc.get("reject_streak", 0))
        m.flatten_level = int(doc["flatten_level"])
        m.last_close_out = {str(k): float(v) for k, v in doc["last_close_out"].items()}
        last = doc["last_cancel_all"]
        m.last_cancel_all = -math.inf if last is None else float(last)
        m.held_alert = str(doc["held_alert"])
        # absent from memories saved before fills were accounted by execution id: such a
        # memory counted fills it does not list (see Governor.replay_fills)
        m.fills = {str(x) for x in doc.get("fills", ())}
        m.fills_complete = bool(doc.get("fills_complete", "fills" in doc))
        for name in ("rt_row", "rt_shares", "rt_avg", "rt_pnl"):
            values = np.asarray(doc[name], dtype=np.float64)
            if name != "rt_row" and values.shape != (n_symbols,):
                raise ValueError(f"{name} holds {values.shape[0]} symbols, expected {n_symbols}")
            setattr(m, name, values)
        return m


# The canonical encoding of a stored document (the SQL store's): json.dumps(document,
# sort_keys=True, allow_nan=False).
_ENCODE = json.JSONEncoder(sort_keys=True, allow_nan=False).encode
_ENCODE_STR: Any = json.encoder.encode_basestring_ascii


def _scalar(value: object) -> str:
    """``_ENCODE(value)`` for a scalar, without the encoder's call overhead for the exact
    built-in types (anything else, and a float that is not finite, goes to the encoder)."""
    kind = type(value)
    if kind is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return float.__repr__(value)
    elif kind is int:
        return int.__repr__(value)
    elif kind is bool:
        return "true" if value else "false"
    elif kind is str:
        return str(_ENCODE_STR(value))
    elif value is None:
        return "null"
    return _ENCODE(value)


class _Ids:
    """The encoding of a set of ids as a sorted list, kept up to date as the set grows.

    The set is compared with the copy of what was encoded (exact string comparison); ids added
    after the last one in order are appended to the text, anything else re-encodes it all."""

    __slots__ = ("seen", "text", "top")

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.text = "[]"
        self.top: str | None = None  # the last id in order

    def encode(self, ids: set[str]) -> str:
        seen = self.seen
        if ids == seen:
            return self.text
        added = ids - seen
        top = self.top
        if (
            top is not None
            and len(ids) == len(seen) + len(added)  # nothing was removed
            and all(type(x) is str for x in added)
            and min(added) > top
        ):
            new = sorted(added)
            self.text = f"{self.text[:-1]}, {', '.join(map(_ENCODE_STR, new))}]"
            self.top = new[-1]
            seen.update(added)
            return self.text
        ordered = sorted(ids)
        self.text = _ENCODE(ordered)
        self.seen = set(ids)
        self.top = ordered[-1] if ordered and all(type(x) is str for x in ordered) else None
        return self.text


class _Floats:
    """The encoding of a float64 array's ``tolist()``, re-encoded only when its bytes change."""

    __slots__ = ("key", "text")

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.text = ""

    def encode(self, values: np.ndarray) -> str:
        key = (values.dtype, values.shape, values.tobytes())
        if key != self.key:
            self.text = _ENCODE(values.tolist())
            self.key = key
        return self.text


class _MemoryEncoder:
    """:meth:`_Memory.as_dict` in its canonical encoding (``_ENCODE(memory.as_dict())``, byte
    for byte), at a fraction of the cost: sections that did not change since the last call
    are not encoded again (the accepted intents and accounted fills grow all day)."""

    def __init__(self) -> None:
        self._accepted = _Ids()
        self._fills = _Ids()
        self._rt = (_Floats(), _Floats(), _Floats(), _Floats())

    def encode(self, m: _Memory) -> str:
        rt_avg, rt_pnl, rt_row, rt_shares = self._rt
        last = m.last_cancel_all
        return "".join(
            (
                '{"accepted": ',
                self._accepted.encode(m.accepted),
                ', "cooldown_until": ',
                _scalar(m.cooldown_until),
                ', "fills": ',
                self._fills.encode(m.fills),
                ', "fills_complete": ',
                _scalar(m.fills_complete),
                ', "flatten_level": ',
                _scalar(m.flatten_level),
                ', "held_alert": ',
                _scalar(m.held_alert),
                ', "last_cancel_all": ',
                "null" if math.isinf(last) else _scalar(last),
                ', "last_close_out": ',
                _ENCODE(dict(m.last_close_out)) if m.last_close_out else "{}",
                ', "latencies_ms": ',
                _ENCODE(list(m.latencies_ms)) if m.latencies_ms else "[]",
                ', "latency_streak": ',
                _scalar(m.latency_streak),
                ', "layer": ',
                _scalar(m.layer),
                ', "lock_until": ',
                _scalar(m.lock_until),
                ', "loss_alert_sent": ',
                _scalar(m.loss_alert_sent),
                ', "loss_streak": ',
                _scalar(m.loss_streak),
                ', "order_times": ',
                _ENCODE(list(m.order_times)) if m.order_times else "[]",
                ', "peak_equity": ',
                _scalar(m.peak_equity),
                ', "reject_streak": ',
                _scalar(m.reject_streak),
                ', "rt_avg": ',
                rt_avg.encode(m.rt_avg),
                ', "rt_pnl": ',
                rt_pnl.encode(m.rt_pnl),
                ', "rt_row": ',
                rt_row.encode(m.rt_row),
                ', "rt_shares": ',
                rt_shares.encode(m.rt_shares),
                ', "session": ',
                _scalar(m.session),
                ', "stop_flatten": ',
                _scalar(m.stop_flatten),
                ', "stop_reason": ',
                _scalar(m.stop_reason),
                "}",
            )
        )


class Governor:
    """Limits, state machine and memory of one ladder stage.

    :param limits: the stage's limits (:func:`stairways.risk.limits.load_stage`)
    :param journal: the journal: state transitions (the state is read back from it), verdicts,
        directives, alerts
    :param store: where the day's memory persists
    :param calendar: exchange calendar for trading hours and half days
    """

    def __init__(
        self,
        limits: RiskLimits,
        *,
        journal: EventLog,
        store: StateStore,
        calendar: str = "XNYS",
    ) -> None:
        self.limits = limits
        self.store = store
        self.journal = journal
        self.machine = TradingStateMachine(journal)
        self.sessions = SessionCalendar(limits.session, calendar)
        self.symbols = limits.symbols
        self._index = {s: j for j, s in enumerate(limits.symbols)}
        self._cost = cost_params(limits.costs)
        self._messages: deque[float] = deque()
        self._alerts: list[Alert] = []
        self._observed: AccountState | None = None
        self._dirty = False
        self.memory_key = memory_key(limits.stage)
        # a store that writes the canonical text gets it from the encoder (sections that did
        # not change are not encoded again); any other store gets the memory's dict
        self._encoder = _MemoryEncoder() if getattr(store, "takes_encoded", False) else None
        doc = store.load_state(self.memory_key)
        try:
            self.mem = _Memory.restore(doc, len(self.symbols))
        except (KeyError, ValueError, TypeError) as err:
            raise StateStoreError(
                f"the governor's stored memory ({self.memory_key}) is not readable: {err}; "
                "inspect the journal before trading again"
            ) from None
        # Compile (or load from cache) the market-core functions before the first real check.
        self._decimals = limits.sizing.quantity_decimals
        self._scale = quantity_scale(self._decimals)
        target_quantity(1.0, 1.0, 1.0, self._scale)
        fill_one(1.0, 1.0, 0.0, 1.0, self._cost)
        ex = self.limits.exposure
        self._max_order = ex.max_order_notional
        self._max_pos = ex.max_position_notional
        self._max_gross = ex.max_gross_exposure
        self._max_turnover = ex.max_daily_turnover
        self._allow_short = ex.allow_short
        self._collar = limits.order_flow.price_collar
        self._stale = limits.order_flow.stale_data_seconds
        self._opm = limits.order_flow.max_orders_per_minute
        self._mps = limits.order_flow.max_messages_per_second
        self._loss_limit = limits.loss.intraday_loss_limit
        self._loss_alert = limits.loss.alert
        dd = limits.drawdown
        self._dd = (dd.halve_sizes_at, dd.reduce_only_at, dd.flatten_and_halt_at)

    # ----------------------------------------------------------------------------------------
    # state

    @property
    def state(self) -> TradingState:
        """The trading state in force."""
        return self.machine.state

    @property
    def memory_rides_journal(self) -> bool:
        """Whether the memory's saves ride the journal's commits (a
        :class:`~stairways.risk.store.SqlStateStore` bound to the journal): then the live loop
        stages the memory of a decision's verdicts before the decision is written, so both land
        in one transaction; otherwise the memory is saved after the decision."""
        return bool(getattr(self.store, "commits_with_journal", False))

    def transition(self, to: TradingState, actor: Actor, why: str, at: datetime) -> StateRecord:
        """Change state (see :class:`~stairways.risk.state.TradingStateMachine`)."""
        return self.machine.transition(to, actor, why, at)

    def announce(self, at: datetime) -> None:
        """Journal the limits in force and the state at start-up (the configuration record)."""
        self.journal.append(
            KIND_CONFIG,
            {
                "type": "risk_limits",
                "stage": self.limits.stage,
                "limits": dump_limits(self.limits),
                "state": self.machine.record.as_dict(),
                "memory_session": self.mem.session,
            },
            at,
        )

    # ----------------------------------------------------------------------------------------
    # the check

    def check(self, intent: Intent, account: AccountState) -> Verdict:
        """The verdict on one intent given the account; records an approval in memory."""
        now = account.now
        ts = account.now_ts
        if account is not self._observed:  # several intents of one bar share an account state
            self._observe(account, ts)
        mem = self.mem
        state = self.machine.record.state
        sym = intent.symbol
        p = account.shares(sym)
        hard: list[Reason] = []

        if state is not TradingState.RUNNING:
            hard.append(Reason(Check.TRADING_STATE, "trading is {}", (state.value,)))
        if sym not in self._index:
            hard.append(
                Reason(
                    Check.UNKNOWN_SYMBOL,
                    "{!r} is not a symbol of stage {}",
                    (sym, self.limits.stage),
                )
            )
        q = self._requested(intent, p, hard)
        if q == 0.0:
            hard.append(Reason(Check.NO_CHANGE, "the intent asks for no change in position"))
        if intent.intent_id in mem.accepted:
            hard.append(
                Reason(
                    Check.DUPLICATE_INTENT, "intent {} was already accepted", (intent.intent_id,)
                )
            )
        open_notional, working_here, open_by_symbol, unvalued = self._open_orders(account, sym)
        if working_here is not None:
            hard.append(
                Reason(
                    Check.LIVE_ORDER_ON_SYMBOL,
                    "order {} is still working on {}; one live order per symbol",
                    (working_here, sym),
                )
            )
        mark = account.marks.get(sym)
        price = _NAN if mark is None else mark.last
        if not (price > 0.0 and math.isfinite(price)):
            hard.append(Reason(Check.NO_PRICE, "no valid last trade price for {}", (sym,)))
            price = _NAN
        phase = self.sessions.phase(ts)
        if phase is SessionPhase.CLOSED:
            hard.append(Reason(Check.TRADING_HOURS, "outside the exchange's regular session"))
        elif phase is SessionPhase.HARD_CUTOFF:
            hard.append(
                Reason(
                    Check.HARD_CUTOFF,
                    "within {:g} s of the close: close-out only",
                    (self.limits.session.hard_cutoff_before_close,),
                )
            )
        if price == price and (intent.limit_price is not None or intent.decision_price is not None):
            self._collar_check(intent, price, hard)
        window = mem.order_times
        while window and window[0] <= ts - 60.0:
            window.popleft()
        if len(window) >= self._opm:
            hard.append(
                Reason(
                    Check.ORDERS_PER_MINUTE,
                    "{} orders in the last minute (limit {})",
                    (len(window), self._opm),
                )
            )
        msgs = self._messages
        while msgs and msgs[0] <= ts - 1.0:
            msgs.popleft()
        if len(msgs) + 1 > self._mps:
            hard.append(
                Reason(
                    Check.MESSAGES_PER_SECOND,
                    "{} messages in the last second (budget {})",
                    (len(msgs), self._mps),
                )
            )
        if unvalued is not None:
            hard.append(
                Reason(
                    Check.MAX_DAILY_TURNOVER,
                    "working order {} has no price, so the day's turnover is unknown",
                    (unvalued,),
                )
            )

        approved = 0.0
        cuts: list[tuple[Reason, float]] = []
        if q == q and q != 0.0 and price == price:  # q and price known
            approved = self._size(
                q, p, price, mark, account, ts, phase, open_notional, open_by_symbol, sym, cuts
            )
        binding: Check | None = None
        reasons = (*hard, *(c[0] for c in cuts)) if cuts else tuple(hard)
        if hard or approved == 0.0:
            decision = Decision.REJECT
            approved = 0.0
        elif approved != q:
            decision = Decision.REDUCE
            binding = min(cuts, key=_remaining)[0].check
        else:
            decision = Decision.APPROVE
        if decision is not Decision.REJECT:
            mem.accepted.add(intent.intent_id)
            window.append(ts)
            msgs.append(ts)
            self._dirty = True
        return Verdict(
            decision=decision,
            intent_id=intent.intent_id,
            decision_id=intent.decision_id,
            model_id=intent.model_id,
            symbol=sym,
            requested=q,
            approved=approved,
            price=price,
            position_before=p,
            reasons=reasons,
            binding=binding,
            state=state,
            stage=self.limits.stage,
            at=now,
        )

    def submit(self, intent: Intent, account: AccountState) -> Verdict:
        """:meth:`check`, then journal the verdict and persist the day's memory."""
        verdict = self.check(intent, account)
        self.journal.append(KIND_VERDICT, verdict.as_event(), account.now)
        self.flush(account.now)
        return verdict

    def _lots(self, notional: float, price: float) -> float:
        """The most shares (in the stage's steps) worth at most ``notional`` at ``price``."""
        return float(target_quantity(1.0, notional, price, self._scale))

    def _snap(self, x: float) -> float:
        """A sum or difference of step multiples back on its step (float noise off)."""
        return round(x, self._decimals) if self._decimals else x

    def _fit(self, r: float, i: float, room: float) -> tuple[float, float]:
        """An order of ``r`` reducing and ``i`` new shares cut to ``room`` shares in all, the
        new exposure first."""
        return min(r, room), max(min(i, self._snap(room - r)), 0.0)

    def _requested(self, intent: Intent, p: float, hard: list[Reason]) -> float:
        t, qty = intent.target_shares, intent.quantity
        if (t is None) == (qty is None):
            hard.append(
                Reason(Check.MALFORMED_INTENT, "give exactly one of target_shares and quantity")
            )
            return _NAN
        value = t if t is not None else qty
        assert value is not None
        if not is_multiple_of_step(value, self._decimals):
            step = "a whole number of shares"
            if self._decimals:
                step = f"a whole number of {10.0**-self._decimals:g}-share steps"
            hard.append(Reason(Check.MALFORMED_INTENT, "{!r} is not " + step, (value,)))
            return _NAN
        return self._snap(float(value - p)) if t is not None else float(value)

    def _collar_check(self, intent: Intent, last: float, hard: list[Reason]) -> None:
        for name, px in (("limit", intent.limit_price), ("decision", intent.decision_price)):
            if px is None:
                continue
            if not (px > 0.0 and math.isfinite(px)):
                hard.append(Reason(Check.PRICE_COLLAR, "{} price {!r} is not a price", (name, px)))
            elif abs(px / last - 1.0) > self._collar:
                hard.append(
                    Reason(
                        Check.PRICE_COLLAR,
                        "{} price {:.4f} is {:.2f}% from the last trade {:.4f} (collar {:g}%)",
                        (name, px, 100 * abs(px / last - 1.0), last, 100 * self._collar),
                    )
                )

    @staticmethod
    def _open_orders(
        account: AccountState, sym: str
    ) -> tuple[float, str | None, dict[str, float], str | None]:
        """Notional of working orders, the order working on ``sym``, per-symbol quantities."""
        notional = 0.0
        here: str | None = None
        by_symbol: dict[str, float] = {}
        unvalued: str | None = None
        if not account.open_orders:
            return notional, here, by_symbol, unvalued
        marks = account.marks
        for o in account.open_orders:
            if o.symbol == sym:
                here = o.order_id
            by_symbol[o.symbol] = by_symbol.get(o.symbol, 0.0) + o.quantity
            m = marks.get(o.symbol)
            px = o.limit_price if o.limit_price is not None else (None if m is None else m.last)
            if px is None or not px > 0.0:
                unvalued = o.order_id
                continue
            notional += abs(o.quantity) * px
        return notional, here, by_symbol, unvalued

    def _size(
        self,
        q: float,
        p: float,
        price: float,
        mark: MarketMark | None,
        account: AccountState,
        ts: float,
        phase: SessionPhase,
        open_notional: float,
        open_by_symbol: dict[str, float],
        sym: str,
        cuts: list[tuple[Reason, float]],
    ) -> float:
        """The signed quantity the limits allow; every cut is appended to ``cuts``.

        Each cut is recorded with the order size left after it, so the binding limit of a
        reduced order is the one that left the least.
        """
        mem = self.mem
        d = 1.0 if q > 0.0 else -1.0
        aq, ap = abs(q), abs(p)
        r = min(aq, ap) if p * q < 0.0 else 0.0
        i = self._snap(aq - r)
        base = self._snap(ap - r)  # what is left of the position on its own side

        if i > 0.0:
            blocked: list[Reason] = []  # usually stays empty
            if mem.layer >= LAYER_REDUCE_ONLY:
                blocked.append(
                    Reason(
                        Check.DRAWDOWN_REDUCE_ONLY,
                        "drawdown layer '{}' reached: reduce only",
                        (_LAYER_NAMES[mem.layer],),
                    )
                )
            if phase is SessionPhase.NO_NEW_EXPOSURE:
                blocked.append(
                    Reason(
                        Check.NO_NEW_EXPOSURE_WINDOW,
                        "within {:g} s of the close: no new exposure",
                        (self.limits.session.no_new_exposure_before_close,),
                    )
                )
            elif phase is SessionPhase.FLATTEN:
                blocked.append(
                    Reason(
                        Check.FLATTEN_WINDOW,
                        "within {:g} s of the close: flattening",
                        (self.limits.session.flatten_before_close,),
                    )
                )
            if mark is not None:
                age = ts - mark.at_ts
                if age > self._stale:
                    blocked.append(
                        Reason(
                            Check.STALE_DATA,
                            "no new {} bar for {:.0f} s (limit {:g} s)",
                            (sym, age, self._stale),
                        )
                    )
            if ts < mem.lock_until:
                blocked.append(
                    Reason(
                        Check.LOSS_STREAK,
                        "{} losing round trips in a row: new exposure locked for {:.0f} s more",
                        (self.limits.protections.loss_streak, mem.lock_until - ts),
                    )
                )
            if ts < mem.cooldown_until:
                blocked.append(
                    Reason(
                        Check.STOP_COOLDOWN,
                        "cooldown after a stop ({}): {:.0f} s more",
                        (mem.stop_reason or "stop", mem.cooldown_until - ts),
                    )
                )
            if d < 0.0 and not self._allow_short:
                blocked.append(
                    Reason(
                        Check.SHORTING,
                        "stage {} does not allow short positions",
                        (self.limits.stage,),
                    )
                )
            if mem.stop_flatten:
                blocked.append(
                    Reason(
                        Check.SESSION_STOPPED,
                        "stopped for the session: {}",
                        (mem.stop_reason,),
                    )
                )
            if blocked:
                i = 0.0
                cuts.extend((reason, r) for reason in blocked)

        halved = mem.layer >= LAYER_HALVE
        factor = 0.5 if halved else 1.0
        note = " (halved by the drawdown layer)" if halved else ""
        if i > 0.0:
            cap = self._max_pos * factor
            room = self._snap(self._lots(cap + _EPS, price) - base)
            if i > room:
                i = max(room, 0.0)
                cuts.append(
                    (
                        Reason(
                            Check.MAX_POSITION_NOTIONAL,
                            "position in {} capped at ${:,.2f}{}: {:g} sh at {:.4f}",
                            (sym, cap, note, base + i, price),
                        ),
                        r + i,
                    )
                )
        if i > 0.0:
            cap = self._max_gross * factor
            others, missing = self._other_gross(account, sym, open_by_symbol)
            if missing is not None:
                i = 0.0
                cuts.append(
                    (
                        Reason(
                            Check.MAX_GROSS_EXPOSURE,
                            "no last price for {}: gross exposure cannot be measured",
                            (missing,),
                        ),
                        r,
                    )
                )
            else:
                room = self._snap(self._lots(max(cap - others, 0.0) + _EPS, price) - base)
                if i > room:
                    i = max(room, 0.0)
                    cuts.append(
                        (
                            Reason(
                                Check.MAX_GROSS_EXPOSURE,
                                "gross exposure capped at ${:,.2f}{}: ${:,.2f} in other symbols",
                                (cap, note, others),
                            ),
                            r + i,
                        )
                    )
        cap = self._max_order * factor
        room = self._lots(cap + _EPS, price)
        if r + i > room:
            r, i = self._fit(r, i, room)
            cuts.append(
                (
                    Reason(
                        Check.MAX_ORDER_NOTIONAL,
                        "order capped at ${:,.2f}{}: {:g} sh at {:.4f}",
                        (cap, note, r + i, price),
                    ),
                    r + i,
                )
            )
        used = account.day_turnover + open_notional
        room = self._lots(max(self._max_turnover - used, 0.0) + _EPS, price)
        if r + i > room:
            r, i = self._fit(r, i, room)
            cuts.append(
                (
                    Reason(
                        Check.MAX_DAILY_TURNOVER,
                        "turnover ${:,.2f} of ${:,.2f} used today (fills and working orders)",
                        (used, self._max_turnover),
                    ),
                    r + i,
                )
            )
        if i > 0.0:
            cost = self.estimated_cost(d * (r + i), price, mark)
            pnl = account.day_pnl
            if pnl - cost < -self._loss_limit:
                i = 0.0
                cuts.append(
                    (
                        Reason(
                            Check.INTRADAY_LOSS_LIMIT,
                            "day P&L ${:,.2f} less estimated costs ${:,.2f} would pass the loss "
                            "limit -${:,.2f}",
                            (pnl, cost, self._loss_limit),
                        ),
                        r,
                    )
                )
        return d * self._snap(r + i)

    def estimated_cost(self, qty: float, price: float, mark: MarketMark | None) -> float:
        """Commission, spread and impact of ``qty`` shares at ``price`` (market-core model).

        Without the last bar's volume and volatility the impact is taken at its cap.
        """
        sigma = 1.0 if mark is None or mark.bar_sigma is None else mark.bar_sigma
        volume = 0.0 if mark is None or mark.bar_volume is None else mark.bar_volume
        _, commission, spread, impact = fill_one(qty, price, sigma, volume, self._cost)
        return float(commission + spread + impact)

    def _other_gross(
        self, account: AccountState, sym: str, open_by_symbol: dict[str, float]
    ) -> tuple[float, str | None]:
        """Gross exposure of the other symbols if their working orders fill (worst case)."""
        total = 0.0
        marks = account.marks
        for s, pos in account.positions.items():
            if s == sym:
                continue
            held = pos.shares
            o = open_by_symbol.get(s, 0.0) if open_by_symbol else 0.0
            size = abs(held) if o == 0.0 else max(abs(held), abs(held + o))
            if size == 0.0:
                continue
            m = marks.get(s)
            if m is None or not m.last > 0.0:
                return total, s
            total += size * m.last
        if open_by_symbol:
            positions = account.positions
            for s, o in open_by_symbol.items():
                if s == sym or s in positions or o == 0.0:
                    continue
                m = marks.get(s)
                if m is None or not m.last > 0.0:
                    return total, s
                total += abs(o) * m.last
        return total, None

    # ----------------------------------------------------------------------------------------
    # observing the account: day roll-over, peak equity, drawdown layers, loss limit

    def _observe(self, account: AccountState, ts: float) -> None:
        self._observed = account
        mem = self.mem
        pnl = account.day_pnl
        equity = self.limits.allocated_capital + pnl
        key = self.sessions.day_key(ts)
        if mem.session != key:
            mem.new_session(key, self.limits.allocated_capital)
            self._dirty = True
        if equity > mem.peak_equity:
            mem.peak_equity = equity
            self._dirty = True
        # the tolerance makes $9,900 off an $11,000 peak exactly 10%, as a person counts it
        drawdown = 1.0 - equity / mem.peak_equity + _EPS
        layer = LAYER_NONE
        if drawdown >= self._dd[2]:
            layer = LAYER_HALT
        elif drawdown >= self._dd[1]:
            layer = LAYER_REDUCE_ONLY
        elif drawdown >= self._dd[0]:
            layer = LAYER_HALVE
        if layer > mem.layer:
            self._raise_layer(layer, drawdown, equity, account.now, ts)
        if pnl <= -self._loss_alert and not mem.loss_alert_sent:
            mem.loss_alert_sent = True
            self._alert(
                "loss_alert",
                f"day P&L ${pnl:,.2f} reached the alert level -${self._loss_alert:,.2f} "
                f"(limit -${self._loss_limit:,.2f})",
                account.now,
            )
            self._persist(account.now)
        if pnl <= -self._loss_limit and not mem.stop_flatten:
            self._stop(
                "loss_limit",
                f"day P&L ${pnl:,.2f} reached the intraday loss limit -${self._loss_limit:,.2f}",
                account.now,
                ts,
            )

    def _raise_layer(
        self, layer: int, drawdown: float, equity: float, at: datetime, ts: float
    ) -> None:
        mem = self.mem
        previous = mem.layer
        mem.layer = layer
        message = (
            f"drawdown {100 * drawdown:.2f}% from the day's peak ${mem.peak_equity:,.2f} "
            f"(equity ${equity:,.2f}): layer '{_LAYER_NAMES[layer]}'"
        )
        self.journal.append(
            KIND_ALERT,
            {
                "kind": "drawdown_layer",
                "message": message,
                "from": _LAYER_NAMES[previous],
                "to": _LAYER_NAMES[layer],
                "drawdown": drawdown,
                "peak_equity": mem.peak_equity,
                "equity": equity,
            },
            at,
        )
        self._alerts.append(Alert("drawdown_layer", message))
        log.warning("%s", message)
        if layer >= LAYER_HALT and not mem.stop_flatten:
            self._stop("drawdown", message, at, ts)
        else:
            self._persist(at)

    def _stop(self, rule: str, why: str, at: datetime, ts: float) -> None:
        """Flatten for the rest of the session, pause trading and start the cooldown."""
        mem = self.mem
        mem.stop_flatten = True
        mem.stop_reason = why
        mem.cooldown_until = max(
            mem.cooldown_until, ts + 60.0 * self.limits.protections.cooldown_after_stop
        )
        self.journal.append(KIND_ALERT, {"kind": "stop", "rule": rule, "message": why}, at)
        self._alerts.append(Alert("stop", why))
        log.error("risk stop (%s): %s", rule, why)
        self._persist(at)
        self._pause(rule, why, at)

    def _alert(self, kind: str, message: str, at: datetime) -> None:
        self.journal.append(KIND_ALERT, {"kind": kind, "message": message}, at)
        self._alerts.append(Alert(kind, message))
        log.warning("%s", message)

    def _pause(self, rule: str, why: str, at: datetime) -> bool:
        """RUNNING -> PAUSED on one of the governor's rules; True when this call paused."""
        if self.machine.sync().state is not TradingState.RUNNING:
            return False
        try:
            self.machine.transition(TradingState.PAUSED, Actor.governor(rule), why, at)
        except TransitionError:
            # Another process moved the state first (an operator's halt): that state stands.
            if self.machine.state is TradingState.RUNNING:
                raise
            return False
        return True

    # ----------------------------------------------------------------------------------------
    # what the live loop reports: decisions (latency), fills (loss streak), messages

    def record_decision(self, latency_seconds: float, decision_id: str, at: datetime) -> bool:
        """Note how long a decision took (bar in to intent out); True when it paused trading.

        ``consecutive`` decisions in a row over ``max_decision_ms`` pause a running governor.
        """
        mem = self.mem
        guard = self.limits.latency
        ms = 1000.0 * latency_seconds
        if ms <= guard.max_decision_ms:
            if mem.latency_streak:
                mem.latency_streak = 0
                mem.latencies_ms.clear()
            return False
        mem.latency_streak += 1
        mem.latencies_ms.append(round(ms, 3))
        if mem.latency_streak < guard.consecutive:
            return False
        shown = ", ".join(f"{x:.1f}" for x in mem.latencies_ms[-guard.consecutive :])
        why = (
            f"{guard.consecutive} decisions in a row over {guard.max_decision_ms:g} ms "
            f"({shown} ms; last {decision_id})"
        )
        mem.latency_streak = 0
        mem.latencies_ms.clear()
        self._alert("latency", why, at)
        self._persist(at)
        return self._pause("latency", why, at)

    def record_fill(self, fill: FillReport) -> bool:
        """Account a fill; a round trip closing at a loss counts toward the loss streak.

        A fill whose ``exec_id`` the memory has already accounted is skipped (False): a restart
        replays the broker's executions and only the ones the saved memory missed count.
        """
        if fill.exec_id:
            if fill.exec_id in self.mem.fills:
                return False
            self.mem.fills.add(fill.exec_id)
            self._dirty = True
        j = self._index.get(fill.symbol)
        if j is None:
            self._alert(
                "unknown_fill",
                f"fill of {fill.quantity:g} {fill.symbol} is outside stage {self.limits.stage}",
                fill.at,
            )
            return True
        mem = self.mem
        mem.reject_streak = 0
        before = float(mem.rt_shares[j])
        realised = float(mem.rt_row[PF_REALISED])
        pf_fill(
            mem.rt_row,
            mem.rt_shares,
            mem.rt_avg,
            j,
            float(fill.quantity),
            float(fill.price),
            float(fill.commission),
            0.0,
            0.0,
        )
        mem.rt_pnl[j] += float(mem.rt_row[PF_REALISED]) - realised - fill.commission
        after = float(mem.rt_shares[j])
        self._dirty = True
        if before != 0.0 and (after == 0.0 or (after > 0.0) != (before > 0.0)):
            pnl = float(mem.rt_pnl[j])
            mem.rt_pnl[j] = 0.0
            self._round_trip(fill.symbol, pnl, fill.at)
        return True

    def check_replay(self, exec_ids: Sequence[str], session_id: str, at: datetime) -> None:
        """Refuse to resume session ``session_id`` when replaying the broker's executions
        ``exec_ids`` into the saved memory could count a fill twice.

        A memory saved before fills were listed by execution id does not say which fills it
        counted. Replaying into it an execution of its own day that it does not list would
        count a fill twice or not at all (the loss streak and its lock), so that is refused
        with :class:`StateStoreError`. A memory of another day, or a replay with nothing it
        cannot tell apart, goes ahead, and the memory is complete from then on.
        """
        mem = self.mem
        if mem.fills_complete:
            return
        unknown = [x or "(no id)" for x in exec_ids if not x or x not in mem.fills]
        if unknown and mem.session == self.sessions.day_key(at.timestamp()):
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise StateStoreError(
                f"session {session_id} cannot resume: the governor's memory {self.memory_key} "
                f"of {mem.session} was saved by a version of Stairways that did not list the "
                f"executions it had accounted, so the broker's {len(unknown)} execution(s) of "
                f"the day it does not list ({shown}) may already be counted in it (loss "
                "streak, its lock): replaying them could count a fill twice. Finish this "
                "session with the Stairways version that started it; sessions started by this "
                "version are not affected"
            )
        mem.fills_complete = True
        self._dirty = True

    def replay_fills(self, fills: Sequence[FillReport], session_id: str, at: datetime) -> int:
        """Account a restarted session's executions (the broker's, in order) once each, after
        :meth:`check_replay`: those the saved memory lists are skipped (see
        :meth:`record_fill`); returns how many counted now."""
        self.check_replay([f.exec_id for f in fills], session_id, at)
        return sum(self.record_fill(f) for f in fills)

    def _round_trip(self, symbol: str, pnl: float, at: datetime) -> None:
        mem = self.mem
        guard = self.limits.protections
        # A round trip's memory is saved with the next flush (the live loop's assessment of
        # the same bar, before any order): the fills it follows are accounted once by
        # execution id, so a crash before that save loses nothing (a restart replays them).
        if pnl >= 0.0:
            mem.loss_streak = 0
            self._dirty = True
            return
        mem.loss_streak += 1
        if mem.loss_streak >= guard.loss_streak:
            mem.lock_until = at.timestamp() + 60.0 * guard.loss_streak_lock
            why = (
                f"{mem.loss_streak} losing round trips in a row (last {symbol} ${pnl:,.2f}): "
                f"new exposure locked for {guard.loss_streak_lock:g} min"
            )
            mem.loss_streak = 0
            # saved first: the alert's commit carries the memory that locked (a memory riding
            # the journal is staged here and lands with the alert)
            self._persist(at)
            self._alert("loss_streak", why, at)
            return
        self._dirty = True

    def record_reject(self, order_id: str, reason: str, at: datetime) -> bool:
        """Count a broker reject; True when it paused trading.

        ``order_flow.max_consecutive_rejects`` rejects in a row (a fill resets the count) pause
        a running governor: a broker refusing everything is not retried into a storm.
        """
        mem = self.mem
        mem.reject_streak += 1
        limit = self.limits.order_flow.max_consecutive_rejects
        if mem.reject_streak < limit:
            self._persist(at)
            return False
        why = f"{mem.reject_streak} broker rejects in a row (last {order_id}: {reason})"
        mem.reject_streak = 0
        self._alert("rejects", why, at)
        self._persist(at)
        return self._pause("rejects", why, at)

    def record_messages(self, count: int, at: datetime) -> None:
        """Count ``count`` messages sent to the broker outside approvals (cancels, modifies)."""
        ts = at.timestamp()
        self._messages.extend([ts] * count)

    # ----------------------------------------------------------------------------------------
    # directives: cancels and close-outs the governor requires

    def sync(self) -> TradingState:
        """Pick up a state set by another process (``stairways halt``)."""
        return self.machine.sync().state

    def assess(self, account: AccountState) -> Directive:
        """What must happen now: cancels, close-outs and alerts; journaled when not empty.

        Call it on every bar, after fills and on a timer: it also picks up an operator's halt.
        """
        now = account.now
        ts = account.now_ts
        self.machine.sync()
        self._observe(account, ts)
        mem = self.mem
        state = self.machine.state
        phase = self.sessions.phase(ts)
        retry = self.limits.session.flatten_retry
        if state is TradingState.EMERGENCY_STOP:
            cooldown = ts + 60.0 * self.limits.protections.cooldown_after_stop
            if cooldown > mem.cooldown_until:
                mem.cooldown_until = cooldown
                mem.stop_reason = f"emergency stop by {self.machine.record.who}"
                self._dirty = True
        level = 0
        if (
            state is TradingState.EMERGENCY_STOP
            or mem.stop_flatten
            or phase is SessionPhase.HARD_CUTOFF
        ):
            level = _URGENT
        elif phase is SessionPhase.FLATTEN:
            level = 1
        cancel_all = False
        close_outs: list[CloseOut] = []
        if level > mem.flatten_level:
            # a more urgent reason to flatten: act now rather than on the retry timer
            mem.last_close_out.clear()
            if level == _URGENT:
                mem.last_cancel_all = -math.inf
        if level != mem.flatten_level:
            mem.flatten_level = level
            self._dirty = True
        if level == _URGENT and account.open_orders and ts - mem.last_cancel_all >= retry:
            cancel_all = True
            mem.last_cancel_all = ts
        if level:
            working = {o.symbol for o in account.open_orders}
            why = self._flatten_reason(state, phase)
            for sym, pos in account.positions.items():
                if pos.shares == 0.0:
                    continue
                last = mem.last_close_out.get(sym)
                if last is not None and ts - last < retry:
                    continue
                mem.last_close_out[sym] = ts
                close_outs.append(
                    CloseOut(
                        symbol=sym,
                        quantity=-pos.shares,
                        reason=why,
                        cancel_working=(sym in working) and not cancel_all,
                    )
                )
        elif phase is SessionPhase.CLOSED and mem.held_alert != mem.session:
            held = [f"{s} {p.shares:g}" for s, p in account.positions.items() if p.shares]
            if held:
                mem.held_alert = mem.session
                self._alert(
                    "position_outside_session",
                    f"positions held outside the session: {', '.join(held)}",
                    now,
                )
        if cancel_all or close_outs:
            self._dirty = True
        messages = int(cancel_all) + sum(1 + int(c.cancel_working) for c in close_outs)
        if messages:
            self.record_messages(messages, now)
        alerts = tuple(self._alerts)
        self._alerts.clear()
        directive = Directive(
            at=now,
            state=state,
            phase=phase,
            cancel_all=cancel_all,
            close_outs=tuple(close_outs),
            alerts=alerts,
        )
        if not directive.empty:
            self.journal.append(KIND_VERDICT, directive.as_event(), now)
        self.flush(now)
        return directive

    def _flatten_reason(self, state: TradingState, phase: SessionPhase) -> str:
        if state is TradingState.EMERGENCY_STOP:
            rec = self.machine.record
            return f"emergency stop by {rec.who}: {rec.why}"
        if self.mem.stop_flatten:
            return f"stop: {self.mem.stop_reason}"
        if phase is SessionPhase.HARD_CUTOFF:
            return "hard cutoff before the close: close out"
        return "flatten before the close"

    # ----------------------------------------------------------------------------------------
    # persistence

    def _persist(self, at: datetime) -> None:
        if self._encoder is not None:
            document: Mapping[str, Any] = EncodedDocument(self._encoder.encode(self.mem))
        else:
            document = self.mem.as_dict()
        self.store.save_state(self.memory_key, document, at)
        self._dirty = False

    def flush(self, at: datetime) -> None:
        """Save the day's memory if it changed since the last save."""
        if self._dirty:
            self._persist(at)

    def memory(self) -> dict[str, Any]:
        """The day's memory as saved (for inspection and the CLI)."""
        return self.mem.as_dict()
