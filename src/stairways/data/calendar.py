"""The exchange calendar (XNYS from exchange_calendars): sessions, half days, RTH minutes.

Exchange time is America/New_York; bars are stored in UTC and aligned to exchange minutes, so
DST transitions need no special handling beyond what the calendar already knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from stairways.errors import InputError

EXCHANGE_TZ = "America/New_York"
FULL_SESSION_MINUTES = 390
# exchange_calendars needs an explicit window; this covers any data a user is likely to hold.
_CAL_START = "2000-01-03"
_CAL_END = "2030-12-31"


@lru_cache(maxsize=4)
def _calendar(name: str) -> xcals.ExchangeCalendar:
    try:
        return xcals.get_calendar(name, start=_CAL_START, end=_CAL_END)
    except xcals.errors.InvalidCalendarName:
        raise InputError(f"unknown exchange calendar {name!r}; use 'XNYS'") from None


@dataclass(frozen=True)
class Sessions:
    """Sessions of a date range: dates, open and close instants (UTC) and minutes per session."""

    dates: pd.DatetimeIndex  # session labels (naive dates)
    opens: pd.DatetimeIndex  # UTC, first bar start
    closes: pd.DatetimeIndex  # UTC, session end (last bar starts one minute before)
    minutes: np.ndarray  # number of 1-minute bars per session

    def __len__(self) -> int:
        return len(self.dates)


def sessions(start: date | str, end: date | str, calendar: str = "XNYS") -> Sessions:
    """Sessions between ``start`` and ``end`` inclusive (either may fall on a non-session day)."""
    cal = _calendar(calendar)
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    if lo > hi:
        raise InputError(f"start {lo.date()} is after end {hi.date()}")
    if lo < pd.Timestamp(_CAL_START) or hi > pd.Timestamp(_CAL_END):
        raise InputError(f"dates must lie between {_CAL_START} and {_CAL_END}")
    labels = cal.sessions_in_range(lo, hi)
    opens = pd.DatetimeIndex(cal.schedule.loc[labels, "open"]).tz_convert("UTC").as_unit("ns")
    closes = pd.DatetimeIndex(cal.schedule.loc[labels, "close"]).tz_convert("UTC").as_unit("ns")
    minutes = ((closes - opens) // pd.Timedelta(minutes=1)).to_numpy().astype(np.int64)
    return Sessions(dates=pd.DatetimeIndex(labels), opens=opens, closes=closes, minutes=minutes)


def session_minutes(start: date | str, end: date | str, calendar: str = "XNYS") -> pd.DatetimeIndex:
    """Start instants (UTC) of every regular-hours 1-minute bar between two dates inclusive."""
    s = sessions(start, end, calendar)
    if len(s) == 0:
        return pd.DatetimeIndex([], tz="UTC")
    parts = [
        np.arange(o.value, c.value, 60_000_000_000, dtype=np.int64)
        for o, c in zip(s.opens, s.closes, strict=True)
    ]
    return pd.DatetimeIndex(pd.to_datetime(np.concatenate(parts), utc=True)).as_unit("ns")


def is_session(day: date | str, calendar: str = "XNYS") -> bool:
    """Whether the exchange holds a regular session on ``day``."""
    return bool(_calendar(calendar).is_session(pd.Timestamp(day)))


def rth_mask(ts_utc: pd.Series | pd.DatetimeIndex, calendar: str = "XNYS") -> np.ndarray:
    """Boolean mask: True where a bar start lies inside a regular trading session."""
    idx = pd.DatetimeIndex(ts_utc).as_unit("ns")
    if len(idx) == 0:
        return np.zeros(0, dtype=bool)
    s = sessions(
        idx.min().tz_convert(EXCHANGE_TZ).date(), idx.max().tz_convert(EXCHANGE_TZ).date(), calendar
    )
    if len(s) == 0:
        return np.zeros(len(idx), dtype=bool)
    values = idx.asi8
    opens = s.opens.as_unit("ns").asi8
    closes = s.closes.as_unit("ns").asi8
    pos = np.searchsorted(opens, values, side="right") - 1
    valid = pos >= 0
    out = np.zeros(len(values), dtype=bool)
    out[valid] = values[valid] < closes[pos[valid]]
    return out
