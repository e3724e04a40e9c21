"""Trading hours in exchange time from the XNYS calendar, and the phases before the close.

The calendar (``stairways.data.calendar``) knows half days: the close is 16:00, or 13:00 on a
half day such as the day after Thanksgiving. Relative to that close the session has phases
(:class:`~stairways.risk.types.SessionPhase`): no new exposure from ``no_new_exposure_before_close``
seconds before, flatten from ``flatten_before_close``, hard cutoff from
``hard_cutoff_before_close``. Each boundary belongs to the later phase: exactly 10 minutes
before the close is already "no new exposure".

Lookups are cached per exchange-calendar day, so the per-check cost is a few float compares.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from stairways.clock import EXCHANGE_TZ
from stairways.data.calendar import sessions
from stairways.errors import InputError
from stairways.risk.limits import SessionRules
from stairways.risk.types import SessionPhase

__all__ = ["SessionCalendar"]


# (calendar, day) -> (open, close) in epoch seconds, or None for a day without a session.
_BOUNDS: dict[tuple[str, date], tuple[float, float] | None] = {}
_PREFETCH_DAYS = 400


def _session_bounds(calendar: str, day: date) -> tuple[float, float] | None:
    """(open, close) in epoch seconds of the session on ``day``, or None.

    The calendar is read for about a year at a time, so a long-running trader never pays for a
    calendar lookup at a day's first check.
    """
    key = (calendar, day)
    if key not in _BOUNDS:
        end = day + timedelta(days=_PREFETCH_DAYS)
        try:
            s = sessions(day, end, calendar)
        except InputError:
            # the year ahead runs past the end of the calendar's window: read this day alone
            # (a day outside the window raises here, naming the window)
            end = day
            s = sessions(day, end, calendar)
        found = {
            d.date(): (o.timestamp(), c.timestamp())
            for d, o, c in zip(s.dates, s.opens, s.closes, strict=True)
        }
        current = day
        while current <= end:
            _BOUNDS[(calendar, current)] = found.get(current)
            current += timedelta(days=1)
    return _BOUNDS[key]


class SessionCalendar:
    """Session open and close for any instant, and the phase of the session it falls in.

    :param rules: the close-relative windows
    :param calendar: exchange calendar name
    """

    def __init__(self, rules: SessionRules, calendar: str = "XNYS") -> None:
        self.rules = rules
        self.calendar = calendar
        self._lo = 1.0  # [lo, hi): epoch seconds of the cached exchange-calendar day
        self._hi = 0.0
        self._day: date | None = None
        self._key = ""
        self._open = 0.0
        self._close = 0.0
        self._is_session = False

    def _load(self, ts: float) -> None:
        local = datetime.fromtimestamp(ts, EXCHANGE_TZ)
        day = local.date()
        start = datetime.combine(day, time(0, 0), EXCHANGE_TZ)
        end = datetime.combine(day + timedelta(days=1), time(0, 0), EXCHANGE_TZ)
        self._lo, self._hi = start.timestamp(), end.timestamp()
        self._day = day
        self._key = day.isoformat()
        bounds = _session_bounds(self.calendar, day)
        self._is_session = bounds is not None
        if bounds is not None:
            self._open, self._close = bounds

    def day(self, ts: float) -> date:
        """The exchange-calendar date of the instant ``ts`` (epoch seconds)."""
        if not (self._lo <= ts < self._hi):
            self._load(ts)
        assert self._day is not None
        return self._day

    def day_key(self, ts: float) -> str:
        """The exchange-calendar date of ``ts`` as ``YYYY-MM-DD`` (the session's memory key)."""
        if not (self._lo <= ts < self._hi):
            self._load(ts)
        return self._key

    def window(self, ts: float) -> tuple[float, float] | None:
        """(open, close) in epoch seconds of the session on the day of ``ts``, or None."""
        if not (self._lo <= ts < self._hi):
            self._load(ts)
        return (self._open, self._close) if self._is_session else None

    def phase(self, ts: float) -> SessionPhase:
        """The session phase at ``ts`` (epoch seconds)."""
        if not (self._lo <= ts < self._hi):
            self._load(ts)
        if not self._is_session or ts < self._open or ts >= self._close:
            return SessionPhase.CLOSED
        remaining = self._close - ts
        r = self.rules
        if remaining <= r.hard_cutoff_before_close:
            return SessionPhase.HARD_CUTOFF
        if remaining <= r.flatten_before_close:
            return SessionPhase.FLATTEN
        if remaining <= r.no_new_exposure_before_close:
            return SessionPhase.NO_NEW_EXPOSURE
        return SessionPhase.OPEN

    def seconds_to_close(self, ts: float) -> float | None:
        """Seconds from ``ts`` to the session's close, or None outside a session."""
        w = self.window(ts)
        if w is None or not (w[0] <= ts < w[1]):
            return None
        return w[1] - ts
