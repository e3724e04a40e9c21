"""A :class:`~stairways.brokers.base.BarFeed` that replays stored bars, with a stale-feed fault.

Each :meth:`ReplayBarFeed.poll` delivers the next minute's closed bars (one per symbol). A
:class:`~stairways.brokers.sim.faults.StaleFeed` window withholds the bars of its minutes;
they are lost, or delivered together when the feed recovers (``late=True``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from stairways.brokers.base import MinuteBar
from stairways.brokers.sim.faults import StaleFeed
from stairways.errors import InputError

EXCHANGE_TZ = ZoneInfo("America/New_York")


class ReplayBarFeed:
    """Replay minutes of bars in order.

    :param minutes: one sequence of bars per minute (every symbol's bar of that minute)
    :param stale: windows (in minutes from the first) in which the feed delivers nothing
    """

    def __init__(
        self, minutes: Sequence[Sequence[MinuteBar]], stale: Sequence[StaleFeed] = ()
    ) -> None:
        if not minutes:
            raise InputError("a replay feed needs at least one minute of bars")
        self.symbols = tuple(b.symbol for b in minutes[0])
        for k, minute in enumerate(minutes):
            if tuple(b.symbol for b in minute) != self.symbols:
                raise InputError(f"minute {k} has symbols {[b.symbol for b in minute]}")
            if len({b.start for b in minute}) != 1:
                raise InputError(f"minute {k} mixes bar start times")
            if minute[0].start.tzinfo is None:
                raise InputError(f"minute {k}: bar start {minute[0].start} has no timezone")
        # delivered in exchange time, whatever zone the stored bars were given in
        self._minutes = [
            [dataclasses.replace(b, start=b.start.astimezone(EXCHANGE_TZ)) for b in minute]
            for minute in minutes
        ]
        self._stale = tuple(stale)
        self._next = 0
        self._withheld: list[MinuteBar] = []
        self._last: dict[str, datetime] = {}

    @property
    def exhausted(self) -> bool:
        """Whether every minute has been polled."""
        return self._next >= len(self._minutes)

    def poll(self, timeout: float = 0.0) -> list[MinuteBar]:
        """The next minute's bars ([] while stale or after the last minute)."""
        if self.exhausted:
            return []
        k = self._next
        self._next += 1
        window = next((w for w in self._stale if w.covers(k)), None)
        if window is not None:
            if window.late:
                self._withheld.extend(self._minutes[k])
            return []
        out = [*self._withheld, *self._minutes[k]]
        self._withheld = []
        for b in out:
            self._last[b.symbol] = b.start
        return out

    def last_bar_start(self, symbol: str) -> datetime | None:
        """Start of the last delivered bar of ``symbol``."""
        return self._last.get(symbol)
