"""Faults the simulated broker and bar feed can inject, for tests and the stress suite.

Times are counted in bars (minutes of the simulated session), so a scenario replays exactly.
Rules match orders by a substring of the client order id (``"*"`` matches every order) and
apply to at most ``count`` orders each.
"""

from __future__ import annotations

from dataclasses import dataclass

from stairways.errors import InputError

__all__ = ["Disconnect", "FaultPlan", "PartialFill", "Reject", "StaleFeed"]


def _matches(pattern: str, client_order_id: str) -> bool:
    return pattern == "*" or pattern in client_order_id


@dataclass(frozen=True)
class Reject:
    """Reject matching orders with an IB-style error code and text."""

    match: str = "*"
    code: int = 201
    text: str = "Order rejected - reason: simulated rejection"
    count: int = 1

    def matches(self, client_order_id: str) -> bool:
        """Whether this rule applies to ``client_order_id``."""
        return _matches(self.match, client_order_id)


@dataclass(frozen=True)
class PartialFill:
    """Fill matching orders in chunks, one chunk per bar, as fractions of the quantity.

    The last chunk takes whatever the whole-share rounding of the earlier ones left.
    """

    match: str = "*"
    fractions: tuple[float, ...] = (0.5, 0.5)
    count: int = 1

    def __post_init__(self) -> None:
        if not self.fractions or any(f <= 0.0 for f in self.fractions):
            raise InputError("PartialFill.fractions must be positive")
        if abs(sum(self.fractions) - 1.0) > 1e-9:
            raise InputError(f"PartialFill.fractions must sum to 1, got {sum(self.fractions)}")

    def matches(self, client_order_id: str) -> bool:
        """Whether this rule applies to ``client_order_id``."""
        return _matches(self.match, client_order_id)


@dataclass(frozen=True)
class Disconnect:
    """The connection is down from bar ``start`` for ``bars`` bars (orders at the broker
    keep working; their events arrive after the reconnect)."""

    start: int
    bars: int

    def covers(self, bar: int) -> bool:
        """Whether the connection is down at ``bar``."""
        return self.start <= bar < self.start + self.bars


@dataclass(frozen=True)
class StaleFeed:
    """The bar feed delivers nothing from bar ``start`` for ``bars`` bars.

    With ``late`` the withheld bars arrive together when the feed recovers; without it they
    are lost.
    """

    start: int
    bars: int
    late: bool = False

    def covers(self, bar: int) -> bool:
        """Whether the feed is stale at ``bar``."""
        return self.start <= bar < self.start + self.bars


@dataclass(frozen=True)
class FaultPlan:
    """Every fault of one simulated session.

    :param rejects: orders the broker rejects
    :param partial_fills: orders that fill in chunks over several bars
    :param ack_delay_bars: bars an order stays pending-submit before the broker accepts it
        (it cannot fill before it is accepted)
    :param extra_latency_bars: bars added before a market order fills (0: the next bar's open)
    :param disconnects: windows in which the connection is down
    """

    rejects: tuple[Reject, ...] = ()
    partial_fills: tuple[PartialFill, ...] = ()
    ack_delay_bars: int = 0
    extra_latency_bars: int = 0
    disconnects: tuple[Disconnect, ...] = ()

    def __post_init__(self) -> None:
        if self.ack_delay_bars < 0 or self.extra_latency_bars < 0:
            raise InputError("ack_delay_bars and extra_latency_bars must not be negative")

    def disconnected_at(self, bar: int) -> bool:
        """Whether the connection is down at ``bar``."""
        return any(d.covers(bar) for d in self.disconnects)


NO_FAULTS = FaultPlan()
