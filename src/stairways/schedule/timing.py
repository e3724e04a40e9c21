"""When scheduled jobs are due: cron expressions and fixed intervals in exchange time.

Cron expressions have the five standard fields ``minute hour day-of-month month day-of-week``
with ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, and lists ``a,b``; day of week
counts 0 (or 7) = Sunday to 6 = Saturday. As in cron, when both day fields are restricted a day
matches if either matches. Times are wall-clock times in the schedule's timezone (America/New_York
by default): a time that does not exist on a spring-forward day is skipped, and a time that
occurs twice on a fall-back day fires at its first occurrence.

Interval specs (``every: 90d``; units ``m``, ``h``, ``d``, ``w``) count from the job's ``start``.

Clocks are injected (:class:`Clock`): the scheduler never reads the system time itself, so tests
drive it with a :class:`FixedClock`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from stairways.data.calendar import is_session
from stairways.errors import ConfigError

__all__ = [
    "Clock",
    "CronSpec",
    "FixedClock",
    "SystemClock",
    "next_cron_time",
    "next_interval_time",
    "next_session_time",
    "parse_cron",
    "parse_interval",
]

# How far ahead a cron search looks before declaring an expression that never fires.
_MAX_SEARCH_DAYS = 366 * 8
# How many occurrences a sessions-only job may skip before declaring it never fires.
_MAX_SKIPPED_OCCURRENCES = 10_000


class Clock(Protocol):
    """The current instant, timezone-aware."""

    def now(self) -> datetime:
        """The current instant (timezone-aware)."""


class SystemClock:
    """The machine's clock in the exchange timezone (the live clock the CLI uses)."""

    def __init__(self, tz: str = "America/New_York") -> None:
        self.tz = ZoneInfo(tz)

    def now(self) -> datetime:
        """The current instant in the exchange timezone."""
        return datetime.now(self.tz)


class FixedClock:
    """A clock that shows a set instant until moved (tests, replays)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a clock instant must be timezone-aware")
        self.at = at

    def now(self) -> datetime:
        """The set instant."""
        return self.at

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self.at = self.at + delta


_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


@dataclass(frozen=True)
class CronSpec:
    """A parsed cron expression: the allowed values of each field."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def day_matches(self, day: date) -> bool:
        """Whether the cron's day fields allow ``day``."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow


def _parse_field(text: str, name: str, lo: int, hi: int, expr: str) -> tuple[set[int], bool]:
    values: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", part)
        if m is None:
            raise ConfigError(f"cron {expr!r}: {name} field {text!r} is not understood")
        base, step_text = m.group(1), m.group(2)
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ConfigError(f"cron {expr!r}: {name} step must be at least 1")
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            start, end = (int(x) for x in base.split("-"))
        else:
            start = end = int(base)
            if step_text:
                end = hi
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise ConfigError(f"cron {expr!r}: {name} field {text!r} leaves the range {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return values, text != "*"


def parse_cron(expression: str) -> CronSpec:
    """Parse a five-field cron expression (ConfigError naming the field when invalid)."""
    parts = expression.split()
    if len(parts) != 5:
        raise ConfigError(
            f"cron {expression!r} must have 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(parts)}"
        )
    parsed = [
        _parse_field(text, name, lo, hi, expression)
        for text, (name, lo, hi) in zip(parts, _FIELDS, strict=True)
    ]
    weekdays = {d % 7 for d in parsed[4][0]}
    return CronSpec(
        expression=expression,
        minutes=tuple(sorted(parsed[0][0])),
        hours=tuple(sorted(parsed[1][0])),
        days=frozenset(parsed[2][0]),
        months=frozenset(parsed[3][0]),
        weekdays=frozenset(weekdays),
        days_restricted=parsed[2][1],
        weekdays_restricted=parsed[4][1],
    )


def _exists(local: datetime) -> bool:
    """Whether a wall-clock time exists in its zone (not skipped by a spring-forward jump)."""
    tz = local.tzinfo
    assert tz is not None
    back = local.astimezone(ZoneInfo("UTC")).astimezone(tz)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def next_cron_time(spec: CronSpec, after: datetime, tz: str) -> datetime:
    """The first time strictly after ``after`` that matches ``spec`` in timezone ``tz``."""
    zone = ZoneInfo(tz)
    start = after.astimezone(zone)
    day = start.date()
    for _ in range(_MAX_SEARCH_DAYS):
        if spec.day_matches(day):
            for hour in spec.hours:
                for minute in spec.minutes:
                    local = datetime.combine(day, time(hour, minute), tzinfo=zone)
                    if local <= start or not _exists(local):
                        continue
                    return local
        day += timedelta(days=1)
    raise ConfigError(f"cron {spec.expression!r} never fires (searched {_MAX_SEARCH_DAYS} days)")


_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = timedelta(weeks=1)


def parse_interval(text: str) -> timedelta:
    """Parse ``90d``, ``12h``, ``30m`` or ``2w`` (ConfigError when invalid or not positive)."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if m is None:
        raise ConfigError(f"interval {text!r} must look like 30m, 12h, 90d or 2w")
    value = int(m.group(1)) * _UNITS[m.group(2)]
    if value <= timedelta(0):
        raise ConfigError(f"interval {text!r} must be positive")
    return value


def next_interval_time(start: datetime, every: timedelta, after: datetime) -> datetime:
    """The first ``start + k * every`` (k >= 0) strictly after ``after``."""
    if after < start:
        return start
    k = (after - start) // every + 1
    return start + k * every


def next_session_time(
    candidate: datetime, step: Callable[[datetime], datetime], calendar: str
) -> datetime:
    """``candidate`` or the first later occurrence (``step``) falling on an exchange session."""
    for _ in range(_MAX_SKIPPED_OCCURRENCES):
        if is_session(candidate.date(), calendar):
            return candidate
        candidate = step(candidate)
    raise ConfigError(
        f"no occurrence falls on a {calendar} session within {_MAX_SKIPPED_OCCURRENCES} tries"
    )
