"""The VWAP of a 1-minute bar built from IB's 5-second bars: the volume-weighted mean of their
``wap`` (the rule the bar store's ``vwap`` and IB's historical bars follow)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.brokers.bars import MinuteAggregator, minute_vwap

NY = ZoneInfo("America/New_York")
OPEN = datetime(2024, 3, 4, 9, 30, tzinfo=NY)


def _minute(
    agg: MinuteAggregator,
    lows: list[float],
    spans: list[float],
    fracs: list[float],
    volumes: list[float],
    waps_known: bool = True,
) -> list:  # type: ignore[type-arg]
    out = []
    for k, (lo, span, frac, v) in enumerate(zip(lows, spans, fracs, volumes, strict=True)):
        hi = lo + span
        wap = lo + frac * span if waps_known else None
        out += agg.add(OPEN + timedelta(seconds=5 * k), lo, hi, lo, hi, v, wap)
    return out


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(10, 1000), min_size=12, max_size=12),
    st.lists(st.floats(0, 5), min_size=12, max_size=12),
    st.lists(st.floats(0, 1), min_size=12, max_size=12),
    st.lists(st.floats(0, 1e5), min_size=12, max_size=12),
)
def test_minute_vwap_when_built_from_five_second_waps_then_equals_direct_computation(
    lows: list[float], spans: list[float], fracs: list[float], volumes: list[float]
) -> None:
    (bar,) = _minute(MinuteAggregator("NVDA"), lows, spans, fracs, volumes)
    waps = np.array([lo + f * s for lo, s, f in zip(lows, spans, fracs, strict=True)])
    vols = np.array(volumes)
    if vols.sum() == 0.0:
        assert bar.vwap is None
        return
    direct = float(np.dot(waps, vols) / vols.sum())
    assert bar.vwap == pytest.approx(direct, rel=1e-12)
    # a volume-weighted mean of prices inside the minute's range stays inside it
    assert bar.low - 1e-9 <= bar.vwap <= bar.high + 1e-9
    # and it is not the typical price the live side used before (unless the waps make it so)
    assert math.isfinite(bar.vwap)


def test_minute_vwap_differs_from_the_typical_price_when_trades_cluster() -> None:
    lows = [100.0] * 12
    spans = [1.0] * 12
    fracs = [0.0] * 11 + [1.0]  # every trade at the low, then one at the high
    volumes = [1000.0] * 11 + [10.0]
    (bar,) = _minute(MinuteAggregator("NVDA"), lows, spans, fracs, volumes)
    assert bar.vwap == pytest.approx((11 * 1000 * 100.0 + 10 * 101.0) / 11010.0)
    typical = (bar.high + bar.low + bar.close) / 3
    assert abs(bar.vwap - typical) > 0.5


def test_minute_without_volume_or_with_an_unknown_wap_has_no_vwap() -> None:
    zero = _minute(MinuteAggregator("NVDA"), [100.0] * 12, [1.0] * 12, [0.5] * 12, [0.0] * 12)
    assert zero[0].vwap is None
    unknown = _minute(
        MinuteAggregator("NVDA"),
        [100.0] * 12,
        [1.0] * 12,
        [0.5] * 12,
        [5.0] * 12,
        waps_known=False,
    )
    assert unknown[0].vwap is None
    assert minute_vwap(0.0, 0.0) is None
    assert minute_vwap(1010.0, 10.0) == pytest.approx(101.0)
