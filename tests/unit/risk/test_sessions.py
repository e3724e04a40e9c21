"""Trading hours and the phases before the close, from the XNYS calendar (half days too)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from stairways.risk.limits import load_stage
from stairways.risk.sessions import SessionCalendar
from stairways.risk.types import SessionPhase
from tests.unit.risk.helpers import NY

RULES = load_stage("paper").session


def _phase(at: datetime) -> SessionPhase:
    return SessionCalendar(RULES).phase(at.timestamp())


@pytest.mark.parametrize(
    ("close", "before", "phase"),
    [
        (16, timedelta(minutes=10, seconds=1), SessionPhase.OPEN),
        (16, timedelta(minutes=10), SessionPhase.NO_NEW_EXPOSURE),
        (16, timedelta(minutes=5, seconds=1), SessionPhase.NO_NEW_EXPOSURE),
        (16, timedelta(minutes=5), SessionPhase.FLATTEN),
        (16, timedelta(seconds=31), SessionPhase.FLATTEN),
        (16, timedelta(seconds=30), SessionPhase.HARD_CUTOFF),
        (16, timedelta(seconds=1), SessionPhase.HARD_CUTOFF),
        (16, timedelta(0), SessionPhase.CLOSED),
    ],
)
def test_phases_before_a_regular_close(close: int, before: timedelta, phase: SessionPhase) -> None:
    at = datetime(2024, 3, 5, close, 0, tzinfo=NY) - before
    assert _phase(at) is phase


def test_a_half_day_closes_at_13_00() -> None:
    day = datetime(2023, 11, 24, tzinfo=NY)
    assert _phase(day.replace(hour=12, minute=49)) is SessionPhase.OPEN
    assert _phase(day.replace(hour=12, minute=50)) is SessionPhase.NO_NEW_EXPOSURE
    assert _phase(day.replace(hour=12, minute=55)) is SessionPhase.FLATTEN
    assert _phase(day.replace(hour=12, minute=59, second=30)) is SessionPhase.HARD_CUTOFF
    assert _phase(day.replace(hour=13, minute=0)) is SessionPhase.CLOSED
    assert _phase(day.replace(hour=14, minute=0)) is SessionPhase.CLOSED


@pytest.mark.parametrize(
    "at",
    [
        datetime(2024, 3, 5, 9, 29, 59, tzinfo=NY),  # before the open
        datetime(2024, 3, 9, 11, 0, tzinfo=NY),  # Saturday
        datetime(2024, 7, 4, 11, 0, tzinfo=NY),  # Independence Day
        datetime(2024, 12, 25, 11, 0, tzinfo=NY),  # Christmas
    ],
)
def test_outside_a_session_is_closed(at: datetime) -> None:
    assert _phase(at) is SessionPhase.CLOSED


def test_the_open_itself_is_open_and_the_calendar_follows_the_days() -> None:
    cal = SessionCalendar(RULES)
    assert cal.phase(datetime(2024, 3, 5, 9, 30, tzinfo=NY).timestamp()) is SessionPhase.OPEN
    # the cached day changes when the instant moves to the next day
    assert cal.phase(datetime(2024, 3, 9, 9, 30, tzinfo=NY).timestamp()) is SessionPhase.CLOSED
    assert cal.phase(datetime(2024, 3, 11, 9, 30, tzinfo=NY).timestamp()) is SessionPhase.OPEN
    left = cal.seconds_to_close(datetime(2024, 3, 11, 15, 0, tzinfo=NY).timestamp())
    assert left == 3600.0
