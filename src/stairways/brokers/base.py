"""The broker interface: the :class:`Broker` and :class:`BarFeed` protocols and their records.

Every broker (the simulated one and Interactive Brokers) implements :class:`Broker`; the live
loop, the ``broker`` CLI commands and the stress suite only see this protocol. A refused order
is an event with a reason (:class:`OrderRefused`), not an exception; exceptions are kept for
what the operator must fix (configuration, an unreachable gateway).

Times are timezone-aware instants; brokers stamp events with their clock (exchange time).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from stairways.brokers.orders import OrderRequest, OrderState, OrderType

__all__ = [
    "AccountSummary",
    "BarFeed",
    "Broker",
    "BrokerEvent",
    "Connected",
    "Disconnected",
    "Execution",
    "ExecutionCursor",
    "FillEvent",
    "MinuteBar",
    "OrderRefused",
    "OrderRejected",
    "OrderSnapshot",
    "OrderStatusChanged",
    "PlaceResult",
    "Position",
    "ReconciliationDone",
    "TradingHalted",
]


@dataclass(frozen=True)
class Position:
    """Shares held in one symbol and their average cost, as the broker reports them."""

    symbol: str
    quantity: float
    avg_cost: float
    account: str = ""


@dataclass(frozen=True)
class Execution:
    """One execution (a fill, possibly one of several for an order).

    :param exec_id: the broker's execution id, unique per fill
    :param quantity: signed shares, positive bought
    :param commission: commission charged for this fill (None until the broker reports it)
    """

    exec_id: str
    client_order_id: str
    broker_order_id: str
    symbol: str
    quantity: float
    price: float
    time: datetime
    commission: float | None = None
    account: str = ""


@dataclass(frozen=True)
class OrderSnapshot:
    """An order as the broker knows it now."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    quantity: float
    order_type: OrderType
    limit_price: float | None
    state: OrderState
    filled: float
    remaining: float
    avg_fill_price: float = 0.0


@dataclass(frozen=True)
class AccountSummary:
    """Account figures the governor and the CLI read (dollars)."""

    account: str
    paper: bool
    net_liquidation: float
    cash: float
    currency: str = "USD"
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlaceResult:
    """What became of :meth:`Broker.place`: sent, or refused with a reason (also an event)."""

    client_order_id: str
    sent: bool
    reason: str = ""
    broker_order_id: str = ""


# Events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerEvent:
    """Base of every broker event; ``time`` is the broker's clock at the event."""

    time: datetime


@dataclass(frozen=True)
class OrderStatusChanged(BrokerEvent):
    """An order moved to a new state."""

    client_order_id: str
    broker_order_id: str
    state: OrderState
    filled: float
    remaining: float
    broker_status: str = ""


@dataclass(frozen=True)
class FillEvent(BrokerEvent):
    """A fill with its commission; ``recovered`` marks fills learnt at reconciliation."""

    execution: Execution
    recovered: bool = False


@dataclass(frozen=True)
class OrderRejected(BrokerEvent):
    """The broker refused an order (IBKR error code and text)."""

    client_order_id: str
    code: int
    text: str


@dataclass(frozen=True)
class OrderRefused(BrokerEvent):
    """The adapter refused to send an order (duplicate id, zero shares, halted, disconnected)."""

    client_order_id: str
    reason: str


@dataclass(frozen=True)
class Disconnected(BrokerEvent):
    """The connection to the broker was lost."""

    reason: str


@dataclass(frozen=True)
class Connected(BrokerEvent):
    """(Re)connected to the broker; ``attempt`` is 0 for the first connect."""

    attempt: int


@dataclass(frozen=True)
class ReconciliationDone(BrokerEvent):
    """Reconciliation after a connect found everything explained."""

    positions: Mapping[str, float]
    recovered_fills: int
    open_orders: int


@dataclass(frozen=True)
class TradingHalted(BrokerEvent):
    """New trading is halted until an operator resolves ``reason``."""

    reason: str


class ExecutionCursor(Protocol):
    """What the journal knows, for reconciliation after a (re)connect.

    The broker's positions must equal the journal's positions plus the executions the journal
    has not seen yet; anything else is a difference nobody can explain and halts trading.
    """

    def known_positions(self) -> Mapping[str, float]:
        """Signed shares per symbol after every execution the journal recorded."""
        ...

    def known_execution_ids(self) -> Collection[str]:
        """Execution ids the journal recorded (their fills are already in the positions)."""
        ...

    def last_execution_time(self) -> datetime | None:
        """Time of the last recorded execution (executions are requested from there)."""
        ...


@runtime_checkable
class Broker(Protocol):
    """A broker: orders in, fills and state changes out.

    ``place`` never sends a client order id the broker already knows (idempotency across
    reconnects and restarts) and never raises for a refused order: it returns a
    :class:`PlaceResult` and emits an :class:`OrderRefused` event.
    """

    name: str

    def connect(self) -> None:
        """Connect (or reopen the persisted state) and reconcile."""
        ...

    def close(self) -> None:
        """Disconnect; orders at the broker stay as they are."""
        ...

    def place(self, request: OrderRequest) -> PlaceResult:
        """Send one order, unless it is refused (see :class:`OrderRefused`)."""
        ...

    def cancel(self, client_order_id: str) -> bool:
        """Request a cancel; False when no working order has that id."""
        ...

    def open_orders(self) -> list[OrderSnapshot]:
        """Orders still working at the broker."""
        ...

    def positions(self) -> list[Position]:
        """Positions as the broker reports them (authoritative)."""
        ...

    def executions(self, since: datetime | None = None) -> list[Execution]:
        """Executions at or after ``since`` (all the broker reports when None)."""
        ...

    def account(self) -> AccountSummary:
        """Account figures."""
        ...

    def events(self, timeout: float = 0.0) -> list[BrokerEvent]:
        """Events since the last call, waiting up to ``timeout`` seconds for the first one."""
        ...

    def flatten(self) -> list[PlaceResult]:
        """Emergency stop: cancel every open order and send orders closing every position
        (sent even when trading is halted)."""
        ...

    @property
    def halted(self) -> str | None:
        """Why new trading is halted, or None."""
        ...


@dataclass(frozen=True)
class MinuteBar:
    """One closed 1-minute bar; ``start`` is the bar's first instant in exchange time.

    ``vwap`` is the bar's own volume-weighted average price when the source reports one (IB's
    5-second bars carry a ``wap``; stored bars a ``vwap``), None otherwise (and for a minute
    without volume, where it is undefined).
    """

    symbol: str
    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float | None = None


@runtime_checkable
class BarFeed(Protocol):
    """Closed 1-minute bars in exchange time, in order, for a set of symbols."""

    symbols: tuple[str, ...]

    def poll(self, timeout: float = 0.0) -> Sequence[MinuteBar]:
        """Bars that closed since the last call (waiting up to ``timeout`` for the first)."""
        ...

    def last_bar_start(self, symbol: str) -> datetime | None:
        """Start of the last closed bar of ``symbol`` (None before the first)."""
        ...
