"""Five-second bars into 1-minute bars on the XNYS calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.brokers.bars import MinuteAggregator
from stairways.errors import InputError

NY = ZoneInfo("America/New_York")
OPEN = datetime(2024, 3, 4, 9, 30, tzinfo=NY)


def five(
    start: datetime, k: int, base: float
) -> tuple[datetime, float, float, float, float, float]:
    t = start + timedelta(seconds=5 * k)
    return (t, base + k, base + k + 0.5, base + k - 0.5, base + k + 0.25, 100.0 + k)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(10, 1000), min_size=12, max_size=12),
    st.lists(st.floats(0, 1e4), min_size=12, max_size=12),
    st.integers(0, 389),
)
def test_full_minute_when_aggregated_then_ohlcv_of_its_parts(
    prices: list[float], volumes: list[float], minute_index: int
) -> None:
    agg = MinuteAggregator("NVDA")
    start = OPEN + timedelta(minutes=minute_index)
    out = []
    for k, (p, v) in enumerate(zip(prices, volumes, strict=True)):
        out += agg.add(start + timedelta(seconds=5 * k), p, p * 1.01, p * 0.99, p, v)
    assert len(out) == 1
    bar = out[0]
    assert bar.start == start and bar.start.tzinfo is not None
    assert bar.open == prices[0] and bar.close == prices[-1]
    assert bar.high == max(p * 1.01 for p in prices) and bar.low == min(p * 0.99 for p in prices)
    assert bar.volume == pytest.approx(sum(volumes))
    assert agg.incomplete_minutes == 0


def test_minute_with_missing_parts_closes_when_next_minute_starts() -> None:
    agg = MinuteAggregator("NVDA")
    assert agg.add(*five(OPEN, 0, 100)) == []
    assert agg.add(*five(OPEN, 3, 100)) == []
    out = agg.add(*five(OPEN + timedelta(minutes=1), 0, 200))
    assert [b.start for b in out] == [OPEN]
    assert (out[0].open, out[0].close, out[0].volume) == (100, 103.25, 203.0)
    assert agg.incomplete_minutes == 1


def test_minutes_outside_the_session_are_never_delivered() -> None:
    agg = MinuteAggregator("NVDA")
    pre = OPEN - timedelta(minutes=1)
    assert [agg.add(*five(pre, k, 10)) for k in range(12)][-1] == []
    assert agg.dropped_outside_session == 1
    half_day_last = datetime(2024, 11, 29, 12, 59, tzinfo=NY)
    got = [b for k in range(24) for b in agg.add(*five(half_day_last, k, 10))]
    assert [(b.start.hour, b.start.minute) for b in got] == [(12, 59)]  # 13:00 is after close
    holiday = datetime(2024, 11, 28, 10, 0, tzinfo=NY)
    assert [b for k in range(12) for b in agg.add(*five(holiday, k, 10))] == []


def test_flush_before_closes_a_minute_whose_last_part_never_came() -> None:
    agg = MinuteAggregator("NVDA")
    agg.add(*five(OPEN, 0, 100))
    assert agg.flush_before(OPEN + timedelta(seconds=59)) == []
    assert [b.start for b in agg.flush_before(OPEN + timedelta(minutes=1))] == [OPEN]


def test_bar_off_the_five_second_grid_or_without_zone_is_refused() -> None:
    agg = MinuteAggregator("NVDA")
    with pytest.raises(InputError, match="5-second boundary"):
        agg.add(OPEN + timedelta(seconds=3), 1, 1, 1, 1, 1)
    with pytest.raises(InputError, match="no timezone"):
        agg.add(datetime(2024, 3, 4, 14, 30), 1, 1, 1, 1, 1)
    assert agg.add(OPEN.astimezone(UTC), 1, 1, 1, 1, 1) == []


def test_feeds_satisfy_the_bar_feed_protocol() -> None:
    from stairways.brokers.base import BarFeed, MinuteBar
    from stairways.brokers.ibkr.adapter import IbkrBroker
    from stairways.brokers.ibkr.feed import IbkrBarFeed
    from stairways.brokers.settings import BrokerConfig
    from stairways.brokers.sim import ReplayBarFeed

    bar = MinuteBar("NVDA", OPEN, 1, 1, 1, 1, 1)
    assert isinstance(ReplayBarFeed([[bar]]), BarFeed)
    unconnected = IbkrBroker(BrokerConfig(kind="ibkr"))
    assert isinstance(IbkrBarFeed(unconnected, ["NVDA"]), BarFeed)
