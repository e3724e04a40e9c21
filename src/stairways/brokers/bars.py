"""Five-second bars into closed 1-minute bars aligned to the exchange calendar.

IB's real-time bars arrive every five seconds, each stamped with its start. A minute
``[m, m + 60 s)`` closes when its last five-second bar (starting at ``m + 55 s``) arrives, or
when a bar of a later minute arrives (the minute then closes with what it has, and the missing
five-second bars are counted).

The minute's VWAP is the volume-weighted mean of the five-second bars' ``wap`` (IB's average
trade price of each five-second bar): ``sum(wap_i * volume_i) / sum(volume_i)``, which is the
average price of every trade of the minute, the same quantity IB's historical 1-minute bars
report as their average and the bar store keeps as ``vwap`` (so live features see what training
saw). A minute without volume has no VWAP (None); a five-second bar without a ``wap`` makes the
minute's VWAP unknown (None) rather than guessed.

Only minutes inside a regular session of the calendar are delivered, so a bar feed never hands
the live loop a pre-market or post-close minute, and a half day ends at 13:00. Bars are
delivered in exchange time (America/New_York).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from stairways.brokers.base import MinuteBar
from stairways.data import calendar as cal
from stairways.errors import InputError

log = logging.getLogger(__name__)

EXCHANGE_TZ = ZoneInfo(cal.EXCHANGE_TZ)
SUB_BAR_SECONDS = 5
PER_MINUTE = 60 // SUB_BAR_SECONDS


@dataclass
class _Building:
    start: datetime  # UTC minute start
    open: float
    high: float
    low: float
    close: float
    volume: float
    parts: int
    last_offset: int
    pv: float  # sum of wap * volume
    wap_known: bool


def minute_vwap(pv: float, volume: float, known: bool = True) -> float | None:
    """A minute's VWAP from its five-second bars' sum of ``wap * volume`` and their volume."""
    if not known or not volume > 0.0:
        return None
    return pv / volume


class MinuteAggregator:
    """Build closed 1-minute bars of one symbol from 5-second bars.

    :param symbol: the ticker
    :param calendar: exchange calendar name
    """

    def __init__(self, symbol: str, calendar: str = "XNYS") -> None:
        self.symbol = symbol
        self.calendar = calendar
        self._cur: _Building | None = None
        self._days: dict[date, tuple[datetime, datetime] | None] = {}
        self.incomplete_minutes = 0
        self.dropped_outside_session = 0

    def _session(self, day: date) -> tuple[datetime, datetime] | None:
        if day not in self._days:
            s = cal.sessions(day, day, self.calendar)
            self._days[day] = (
                (s.opens[0].to_pydatetime(), s.closes[0].to_pydatetime()) if len(s) else None
            )
        return self._days[day]

    def _in_session(self, minute: datetime) -> bool:
        bounds = self._session(minute.astimezone(EXCHANGE_TZ).date())
        return bounds is not None and bounds[0] <= minute < bounds[1]

    def add(
        self,
        start: datetime,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        wap: float | None = None,
    ) -> list[MinuteBar]:
        """Add one 5-second bar (``wap``: its average trade price); return the minutes it
        closed (zero, one or two)."""
        if start.tzinfo is None:
            raise InputError(f"{self.symbol}: real-time bar time {start} has no timezone")
        t = start.astimezone(UTC)
        if t.second % SUB_BAR_SECONDS or t.microsecond:
            raise InputError(f"{self.symbol}: real-time bar at {t} is not on a 5-second boundary")
        minute = t.replace(second=0)
        offset = t.second // SUB_BAR_SECONDS
        out: list[MinuteBar] = []
        cur = self._cur
        if cur is not None and minute < cur.start:
            log.warning(
                "%s: 5-second bar %s arrived after its minute closed; ignored", self.symbol, t
            )
            return out
        if cur is not None and minute > cur.start:
            out.extend(self._close())
            cur = None
        known = wap is not None and math.isfinite(wap)
        pv = float(wap) * volume if known and wap is not None else 0.0
        if cur is None:
            self._cur = _Building(minute, open_, high, low, close, volume, 1, offset, pv, known)
        else:
            if offset <= cur.last_offset:
                log.warning("%s: repeated 5-second bar %s ignored", self.symbol, t)
                return out
            cur.high = max(cur.high, high)
            cur.low = min(cur.low, low)
            cur.close = close
            cur.volume += volume
            cur.pv += pv
            cur.wap_known = cur.wap_known and known
            cur.parts += 1
            cur.last_offset = offset
        if offset == PER_MINUTE - 1:
            out.extend(self._close())
        return out

    def _close(self) -> list[MinuteBar]:
        cur, self._cur = self._cur, None
        if cur is None:
            return []
        if not self._in_session(cur.start):
            self.dropped_outside_session += 1
            return []
        if cur.parts < PER_MINUTE:
            self.incomplete_minutes += 1
            log.warning(
                "%s: minute %s closed with %d of %d five-second bars",
                self.symbol,
                cur.start,
                cur.parts,
                PER_MINUTE,
            )
        return [
            MinuteBar(
                self.symbol,
                cur.start.astimezone(EXCHANGE_TZ),
                cur.open,
                cur.high,
                cur.low,
                cur.close,
                cur.volume,
                minute_vwap(cur.pv, cur.volume, cur.wap_known),
            )
        ]

    def flush_before(self, now: datetime) -> list[MinuteBar]:
        """Close the building minute if ``now`` is past its end (no more bars will come)."""
        cur = self._cur
        if cur is not None and now.astimezone(UTC) >= cur.start + timedelta(minutes=1):
            return self._close()
        return []
