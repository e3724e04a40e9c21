"""Exchange time for the live side: the machine's clock (live) and a controllable clock (tests).

Domain code never calls ``datetime.now()``: it asks a :class:`Clock`. Both clocks return
timezone-aware instants in the exchange timezone (America/New_York), and a monotonic reading
in seconds for measuring durations (decision latency), which the live clock takes from
``time.perf_counter`` so that a wall-clock step (NTP, DST) never shows as a negative duration.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

__all__ = ["EXCHANGE_TZ", "Clock", "ExchangeClock", "ManualClock", "exchange_time"]

EXCHANGE_TZ = ZoneInfo("America/New_York")
UTC_TZ = ZoneInfo("UTC")


class Clock(Protocol):
    """The current instant in exchange time and a monotonic reading for durations."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in the clock's timezone."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards (for durations only)."""
        ...


def exchange_time(at: datetime, tz: ZoneInfo = EXCHANGE_TZ) -> datetime:
    """``at`` converted to exchange time; a naive instant is refused (its zone is unknown)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"instant {at.isoformat()} has no timezone; give an aware datetime")
    return at.astimezone(tz)


class ExchangeClock:
    """The machine's clock shown in the exchange timezone: the clock of the live loop.

    :param tz: IANA timezone name of the exchange
    """

    def __init__(self, tz: str = "America/New_York") -> None:
        self.tz = ZoneInfo(tz)

    def now(self) -> datetime:
        """The current instant in the exchange timezone."""
        return datetime.now(self.tz)

    def monotonic(self) -> float:
        """``time.perf_counter()``: a high-resolution monotonic reading in seconds."""
        return time.perf_counter()


class ManualClock:
    """A clock that shows a set instant until it is moved (tests, replays, simulations).

    Its monotonic reading follows the instant it shows, so moving the clock forward by 12 ms
    makes a measured duration 12 ms. It never moves backwards. Arithmetic is done in UTC, so
    an hour across a daylight-saving change is a real hour.

    :param at: the starting instant (timezone-aware)
    :param tz: IANA timezone the instants are shown in
    """

    def __init__(self, at: datetime, tz: str = "America/New_York") -> None:
        self.tz = ZoneInfo(tz)
        self._utc = exchange_time(at, UTC_TZ)
        self._origin = self._utc

    @property
    def at(self) -> datetime:
        """The instant the clock shows, in its timezone."""
        return self._utc.astimezone(self.tz)

    def now(self) -> datetime:
        """The set instant, in the clock's timezone."""
        return self._utc.astimezone(self.tz)

    def monotonic(self) -> float:
        """Seconds since the clock was created, following :meth:`advance` and :meth:`set`."""
        return (self._utc - self._origin).total_seconds()

    def advance(self, delta: timedelta | float) -> None:
        """Move the clock forward by ``delta`` (a timedelta, or seconds)."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=float(delta))
        if step < timedelta(0):
            raise ValueError(f"a clock never moves backwards (asked to move by {step})")
        self._utc = self._utc + step

    def set(self, at: datetime) -> None:
        """Move the clock to ``at`` (not earlier than the instant it shows)."""
        target = exchange_time(at, UTC_TZ)
        if target < self._utc:
            raise ValueError(
                f"a clock never moves backwards ({target.isoformat()} is before "
                f"{self._utc.isoformat()})"
            )
        self._utc = target
