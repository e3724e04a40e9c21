"""What the governor reads and writes: intents, account state, verdicts and directives.

All of them are frozen dataclasses. Quantities are signed shares (positive buys, long
positions); money is dollars; instants are timezone-aware (exchange time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "AccountState",
    "Alert",
    "Check",
    "CloseOut",
    "Decision",
    "Directive",
    "FillReport",
    "Intent",
    "MarketMark",
    "OpenOrder",
    "Position",
    "Reason",
    "SessionPhase",
    "TradingState",
    "Verdict",
]


class TradingState(StrEnum):
    """The governor's state machine (see :mod:`stairways.risk.state`)."""

    PAUSED = "PAUSED"
    RUNNING = "RUNNING"
    EMERGENCY_STOP = "EMERGENCY_STOP"
    MAINTENANCE = "MAINTENANCE"


class Decision(StrEnum):
    """The three verdicts: the order as asked, a smaller order, or nothing."""

    APPROVE = "approve"
    REDUCE = "reduce"
    REJECT = "reject"


class Check(StrEnum):
    """Every rule the governor applies; a verdict names the ones that cut or refused."""

    TRADING_STATE = "trading_state"
    MALFORMED_INTENT = "malformed_intent"
    UNKNOWN_SYMBOL = "unknown_symbol"
    NO_CHANGE = "no_change"
    DUPLICATE_INTENT = "duplicate_intent"
    LIVE_ORDER_ON_SYMBOL = "live_order_on_symbol"
    NO_PRICE = "no_price"
    TRADING_HOURS = "trading_hours"
    HARD_CUTOFF = "hard_cutoff_before_close"
    NO_NEW_EXPOSURE_WINDOW = "no_new_exposure_before_close"
    FLATTEN_WINDOW = "flatten_before_close"
    STALE_DATA = "stale_data"
    PRICE_COLLAR = "price_collar"
    ORDERS_PER_MINUTE = "max_orders_per_minute"
    MESSAGES_PER_SECOND = "max_messages_per_second"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    MAX_GROSS_EXPOSURE = "max_gross_exposure"
    MAX_DAILY_TURNOVER = "max_daily_turnover"
    INTRADAY_LOSS_LIMIT = "intraday_loss_limit"
    SHORTING = "allow_short"
    DRAWDOWN_REDUCE_ONLY = "drawdown_reduce_only"
    LOSS_STREAK = "loss_streak"
    STOP_COOLDOWN = "cooldown_after_stop"
    SESSION_STOPPED = "session_stopped"


class SessionPhase(StrEnum):
    """Where exchange time stands relative to the session (see :class:`SessionRules`)."""

    CLOSED = "closed"
    OPEN = "open"
    NO_NEW_EXPOSURE = "no_new_exposure"
    FLATTEN = "flatten"
    HARD_CUTOFF = "hard_cutoff"


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """What the policy wants for one symbol: a target position or an order quantity.

    Exactly one of ``target_shares`` and ``quantity`` is given. ``limit_price`` (the order's
    limit, if any) and ``decision_price`` (the price the policy saw) are held against the last
    trade by the price collar.
    """

    intent_id: str
    decision_id: str
    model_id: str
    symbol: str
    reason: str
    target_shares: float | None = None
    quantity: float | None = None
    limit_price: float | None = None
    decision_price: float | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Shares held (negative for a short) and their average cost."""

    shares: float
    avg_cost: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenOrder:
    """A working order at the broker: signed remaining quantity."""

    order_id: str
    symbol: str
    quantity: float
    intent_id: str = ""
    limit_price: float | None = None


@dataclass(frozen=True, slots=True)
class MarketMark:
    """The last trade of a symbol and when its last bar arrived.

    ``bar_volume`` and ``bar_sigma`` (the last bar's volume and range volatility) feed the cost
    estimate's impact term; when unknown the estimate takes the impact cap (the worst case).
    """

    last: float
    at: datetime
    bar_volume: float | None = None
    bar_sigma: float | None = None
    at_ts: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # epoch seconds of ``at``, computed once per bar rather than in every check
        object.__setattr__(self, "at_ts", _epoch(self.at, "MarketMark.at"))


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountState:
    """The account as the broker (or simulated broker) reports it, at exchange time ``now``.

    ``realised_pnl``, ``unrealised_pnl``, ``fees`` and ``day_turnover`` (filled notional) are
    the session's figures for the strategy's symbols.
    """

    now: datetime
    cash: float
    positions: Mapping[str, Position]
    open_orders: tuple[OpenOrder, ...] = ()
    marks: Mapping[str, MarketMark] = field(default_factory=dict)
    realised_pnl: float = 0.0
    unrealised_pnl: float = 0.0
    fees: float = 0.0
    day_turnover: float = 0.0
    now_ts: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # epoch seconds of ``now``, computed once per account state rather than in every check
        object.__setattr__(self, "now_ts", _epoch(self.now, "AccountState.now"))

    @property
    def day_pnl(self) -> float:
        """The session's P&L after fees: realised + unrealised - fees."""
        return self.realised_pnl + self.unrealised_pnl - self.fees

    def shares(self, symbol: str) -> float:
        """Shares held in ``symbol`` (0 when flat)."""
        pos = self.positions.get(symbol)
        return 0.0 if pos is None else pos.shares


@dataclass(frozen=True, slots=True, kw_only=True)
class FillReport:
    """One execution the broker reported (feeds the loss-streak guard)."""

    symbol: str
    quantity: float
    price: float
    commission: float
    at: datetime
    order_id: str = ""
    # the broker's execution id: the governor accounts each once (a restart replays them)
    exec_id: str = ""


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule that cut or refused an intent, with the figures that decided it.

    The words are formatted only when read (:attr:`detail`): a refused intent costs the check
    no string formatting.
    """

    check: Check
    template: str
    args: tuple[Any, ...] = ()

    @property
    def detail(self) -> str:
        """The reason in words, with its figures."""
        return self.template.format(*self.args) if self.args else self.template

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"check": self.check._value_, "detail": self.detail}


# (an aware instant - this).total_seconds() is how datetime.timestamp() computes it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch(at: datetime, name: str) -> float:
    """Epoch seconds of an aware instant (``at.timestamp()``; for a plain datetime without its
    second look-up of the offset); a naive one is refused (its zone would be a guess)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} {at.isoformat()} has no timezone: pass the clock's exchange time")
    if type(at) is datetime:
        return (at - _EPOCH).total_seconds()
    return at.timestamp()  # a subclass (pandas' Timestamp) computes it its own way


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The governor's answer to one intent. Never an exception: a refusal is a verdict.

    ``approved`` is the signed order quantity that may go to the broker (0 on a reject);
    ``binding`` names the limit that cut a reduced order; ``reasons`` lists every rule that
    cut or refused.
    """

    decision: Decision
    intent_id: str
    decision_id: str
    model_id: str
    symbol: str
    requested: float
    approved: float
    price: float
    position_before: float
    reasons: tuple[Reason, ...]
    binding: Check | None
    state: TradingState
    stage: str
    at: datetime

    @property
    def position_after(self) -> float:
        """The position if the approved quantity fills completely."""
        return self.position_before + self.approved

    def as_event(self) -> dict[str, Any]:
        """The journal payload of the verdict (JSON-ready)."""
        # an enum member's _value_ is its value as a plain str, read without the property
        return {
            "type": "intent",
            "decision": self.decision._value_,
            "intent_id": self.intent_id,
            "decision_id": self.decision_id,
            "model_id": self.model_id,
            "symbol": self.symbol,
            "requested": _num(self.requested),
            "approved": self.approved,
            "price": _num(self.price),
            "position_before": self.position_before,
            "binding": None if self.binding is None else self.binding._value_,
            "reasons": [r.as_dict() for r in self.reasons],
            "state": self.state._value_,
            "stage": self.stage,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseOut:
    """An order the governor itself sends to bring a symbol to flat.

    ``cancel_working`` asks to cancel the symbol's working order first (a retry).
    """

    symbol: str
    quantity: float
    reason: str
    cancel_working: bool


@dataclass(frozen=True, slots=True)
class Alert:
    """Something an operator should see (loss alert level, drawdown layer, pause)."""

    kind: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Directive:
    """What the live loop must do now, from :meth:`Governor.assess`: cancels and close-outs."""

    at: datetime
    state: TradingState
    phase: SessionPhase
    cancel_all: bool = False
    close_outs: tuple[CloseOut, ...] = ()
    alerts: tuple[Alert, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing has to be done."""
        return not (self.cancel_all or self.close_outs or self.alerts)

    def as_event(self) -> dict[str, Any]:
        """The journal payload of the directive (JSON-ready)."""
        return {
            "type": "directive",
            "at": self.at.isoformat(),
            "state": self.state._value_,
            "phase": self.phase._value_,
            "cancel_all": self.cancel_all,
            "close_outs": [
                {
                    "symbol": c.symbol,
                    "quantity": c.quantity,
                    "reason": c.reason,
                    "cancel_working": c.cancel_working,
                }
                for c in self.close_outs
            ],
            "alerts": [{"kind": a.kind, "message": a.message} for a in self.alerts],
        }
