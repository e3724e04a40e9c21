"""The exchange-time clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stairways.clock import EXCHANGE_TZ, ExchangeClock, ManualClock, exchange_time


def test_manual_clock_shows_exchange_time_for_a_utc_instant() -> None:
    clock = ManualClock(datetime(2024, 3, 5, 16, 0, tzinfo=UTC))
    assert clock.now().tzinfo == EXCHANGE_TZ
    assert (clock.now().hour, clock.now().minute) == (11, 0)  # EST is UTC-5 in March


def test_manual_clock_monotonic_follows_advance_and_set() -> None:
    clock = ManualClock(datetime(2024, 3, 5, 11, 0, tzinfo=EXCHANGE_TZ))
    start = clock.monotonic()
    clock.advance(0.012)
    assert clock.monotonic() - start == pytest.approx(0.012)
    clock.advance(timedelta(minutes=1))
    clock.set(datetime(2024, 3, 5, 12, 0, tzinfo=EXCHANGE_TZ))
    assert clock.monotonic() - start == pytest.approx(3600.0)


def test_manual_clock_never_moves_backwards() -> None:
    clock = ManualClock(datetime(2024, 3, 5, 11, 0, tzinfo=EXCHANGE_TZ))
    with pytest.raises(ValueError, match="never moves backwards"):
        clock.advance(-1.0)
    with pytest.raises(ValueError, match="never moves backwards"):
        clock.set(datetime(2024, 3, 5, 10, 59, tzinfo=EXCHANGE_TZ))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        ManualClock(datetime(2024, 3, 5, 11, 0))
    with pytest.raises(ValueError, match="no timezone"):
        exchange_time(datetime(2024, 3, 5, 11, 0))


def test_exchange_clock_is_aware_in_new_york_and_monotonic() -> None:
    clock = ExchangeClock()
    now = clock.now()
    assert now.tzinfo is not None and str(now.tzinfo) == "America/New_York"
    a = clock.monotonic()
    assert clock.monotonic() >= a


def test_dst_change_keeps_utc_arithmetic() -> None:
    # 2024-03-10 02:00 EST -> 03:00 EDT: one real hour from 01:30 is 03:30 on the wall clock.
    clock = ManualClock(datetime(2024, 3, 10, 1, 30, tzinfo=EXCHANGE_TZ))
    clock.advance(timedelta(hours=1))
    assert (clock.now().hour, clock.now().minute) == (3, 30)
