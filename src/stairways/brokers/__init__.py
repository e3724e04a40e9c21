"""Brokers behind one interface: the protocols, our order states, a simulated broker (``sim``)
on the market core and Interactive Brokers through ib_async (``ibkr``).

Import the implementations from their subpackages; this package's top level only holds the
interface, so importing it never pulls in ib_async.
"""

from stairways.brokers.base import (
    AccountSummary,
    BarFeed,
    Broker,
    BrokerEvent,
    Execution,
    ExecutionCursor,
    MinuteBar,
    OrderSnapshot,
    PlaceResult,
    Position,
)
from stairways.brokers.orders import OrderRequest, OrderState, OrderType, client_order_id

__all__ = [
    "AccountSummary",
    "BarFeed",
    "Broker",
    "BrokerEvent",
    "Execution",
    "ExecutionCursor",
    "MinuteBar",
    "OrderRequest",
    "OrderSnapshot",
    "OrderState",
    "OrderType",
    "PlaceResult",
    "Position",
    "client_order_id",
]
