"""Due-time arithmetic: cron expressions and intervals in New York time, DST, sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.errors import ConfigError
from stairways.schedule.runner import next_occurrence
from stairways.schedule.settings import JobConfig, ScheduleConfig
from stairways.schedule.timing import (
    next_cron_time,
    next_interval_time,
    parse_cron,
    parse_interval,
)

NY = ZoneInfo("America/New_York")
TZ = "America/New_York"


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def test_quarterly_cron_then_next_is_first_day_of_next_quarter_at_seven() -> None:
    spec = parse_cron("0 7 1 1,4,7,10 *")
    assert next_cron_time(spec, ny(2026, 11, 24, 10, 0), TZ) == ny(2027, 1, 1, 7, 0)
    assert next_cron_time(spec, ny(2027, 1, 1, 7, 0), TZ) == ny(2027, 4, 1, 7, 0)
    assert next_cron_time(spec, ny(2027, 1, 1, 6, 59), TZ) == ny(2027, 1, 1, 7, 0)


def test_after_given_in_utc_then_answer_is_new_york_wall_time() -> None:
    spec = parse_cron("0 18 * * 5")  # Fridays 18:00 New York
    after = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)  # 17:00 New York
    nxt = next_cron_time(spec, after, TZ)
    assert nxt == ny(2026, 11, 27, 18, 0)
    assert nxt.utcoffset() == timedelta(hours=-5)


def test_both_day_fields_restricted_then_either_matches() -> None:
    spec = parse_cron("0 9 13 * 5")  # the 13th, or any Friday
    # 2026-11-24 is a Tuesday: the next Friday (27th) comes before the next 13th.
    assert next_cron_time(spec, ny(2026, 11, 24), TZ) == ny(2026, 11, 27, 9, 0)
    assert next_cron_time(spec, ny(2026, 12, 12, 10), TZ) == ny(2026, 12, 13, 9, 0)


def test_time_skipped_by_spring_forward_then_that_day_is_skipped() -> None:
    spec = parse_cron("30 2 * * *")  # 02:30 does not exist on 2026-03-08 in New York
    assert next_cron_time(spec, ny(2026, 3, 7, 3, 0), TZ) == ny(2026, 3, 9, 2, 30)


def test_time_repeated_by_fall_back_then_first_occurrence() -> None:
    spec = parse_cron("30 1 * * *")  # 01:30 happens twice on 2026-11-01
    nxt = next_cron_time(spec, ny(2026, 10, 31, 12, 0), TZ)
    assert (nxt.month, nxt.day, nxt.hour, nxt.minute) == (11, 1, 1, 30)
    assert nxt.utcoffset() == timedelta(hours=-4)  # still daylight time


@pytest.mark.parametrize(
    ("expr", "match"),
    [
        ("0 7 1 *", "5 fields"),
        ("61 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("x * * * *", "minute field 'x'"),
        ("*/0 * * * *", "step"),
    ],
)
def test_invalid_cron_then_config_error_names_the_field(expr: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_cron(expr)


def test_cron_that_never_fires_then_config_error() -> None:
    with pytest.raises(ConfigError, match="never fires"):
        next_cron_time(parse_cron("0 0 31 2 *"), ny(2026, 1, 1), TZ)


@settings(max_examples=60, deadline=None)
@given(
    minute_step=st.integers(1, 59),
    hour_step=st.integers(1, 23),
    offset_min=st.integers(0, 60 * 24 * 3),
)
def test_any_step_cron_then_first_match_strictly_after(
    minute_step: int, hour_step: int, offset_min: int
) -> None:
    spec = parse_cron(f"*/{minute_step} */{hour_step} * * *")
    # A stretch of January: no DST change, so wall minutes and real minutes agree.
    after = ny(2027, 1, 4) + timedelta(minutes=offset_min)
    nxt = next_cron_time(spec, after, TZ)
    assert nxt > after
    assert nxt.minute % minute_step == 0 and nxt.hour % hour_step == 0
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while t < nxt:  # no earlier minute matches (bounded: at most a day of minutes)
        assert not (t.minute % minute_step == 0 and t.hour % hour_step == 0)
        t += timedelta(minutes=1)


@settings(max_examples=100, deadline=None)
@given(
    every_h=st.integers(1, 24 * 120),
    offset_h=st.integers(-1000, 100_000),
)
def test_any_interval_then_next_is_first_multiple_after(every_h: int, offset_h: int) -> None:
    start = datetime(2026, 1, 1, 7, 0, tzinfo=UTC)
    every = timedelta(hours=every_h)
    after = start + timedelta(hours=offset_h, minutes=7)
    nxt = next_interval_time(start, every, after)
    assert (nxt - start) % every == timedelta(0)
    if after < start:
        assert nxt == start  # the first occurrence is start itself
    else:
        assert nxt - every <= after < nxt


@pytest.mark.parametrize(
    ("text", "delta"),
    [("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2))],
)
def test_interval_text_then_timedelta(text: str, delta: timedelta) -> None:
    assert parse_interval(text) == delta


@pytest.mark.parametrize("text", ["90", "0d", "1y", "-3d"])
def test_bad_interval_then_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_interval(text)


def test_sessions_only_job_then_holiday_occurrence_moves_to_next_session() -> None:
    cfg = ScheduleConfig(jobs={})
    job = JobConfig(cron="30 20 * * *", sessions_only=True, command=("runs", "list"))
    # Thanksgiving 2026-11-26 has no session; Friday 2026-11-27 has a (half-day) one.
    assert next_occurrence(job, cfg, ny(2026, 11, 25, 21, 0)) == ny(2026, 11, 27, 20, 30)
    plain = JobConfig(cron="30 20 * * *", command=("runs", "list"))
    assert next_occurrence(plain, cfg, ny(2026, 11, 25, 21, 0)) == ny(2026, 11, 26, 20, 30)


def test_interval_job_with_start_then_counts_from_start() -> None:
    cfg = ScheduleConfig(jobs={})
    job = JobConfig(every="90d", start=datetime(2026, 1, 1, 7, 0), command=("runs", "list"))
    assert next_occurrence(job, cfg, ny(2026, 2, 1)) == ny(2026, 4, 1, 7, 0)
