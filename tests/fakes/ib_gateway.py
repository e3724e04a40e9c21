"""The fake IB Gateway (it ships in the package for the stress suite; see its module)."""

from stairways.brokers.ibkr.fake_gateway import (
    CON_IDS,
    NY,
    Accept,
    FakeExecution,
    FakeIBGateway,
    FakeOrder,
    FillAtMarket,
    RejectOrder,
    ReplayBar,
    Swallow,
    five_second_bars,
    pack,
)

__all__ = [
    "CON_IDS",
    "NY",
    "Accept",
    "FakeExecution",
    "FakeIBGateway",
    "FakeOrder",
    "FillAtMarket",
    "RejectOrder",
    "ReplayBar",
    "Swallow",
    "five_second_bars",
    "pack",
]
