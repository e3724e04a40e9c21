"""The live observation's hot path gives the values of the slower general code, to the bit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.data.features import OnlineFeatures, time_ns
from stairways.errors import DataValidationError
from stairways.live import observe
from stairways.live.observe import session_minutes
from stairways.market import costs

NY = ZoneInfo("America/New_York")


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2040, 1, 1),
        timezones=st.sampled_from([UTC, NY, ZoneInfo("Asia/Tokyo")]),
    )
)
def test_time_ns_equals_pandas_for_aware_datetimes(ts: datetime) -> None:
    assert time_ns(ts) == int(pd.Timestamp(ts).tz_convert("UTC").as_unit("ns").value)
    assert time_ns(pd.Timestamp(ts)) == time_ns(ts)


def test_time_ns_refuses_a_naive_time() -> None:
    with pytest.raises(DataValidationError, match="no time zone"):
        time_ns(datetime(2024, 1, 3, 9, 30), "NVDA")


@pytest.mark.parametrize(
    "day",
    [date(2024, 3, 8), date(2024, 3, 11), date(2024, 11, 1), date(2024, 11, 4), date(2023, 11, 24)],
)
def test_bar_start_equals_pandas_arithmetic_around_clock_changes_and_half_days(day: date) -> None:
    open_, n = session_minutes(day)
    start = open_.to_pydatetime()
    for k in range(n):
        want = (open_ + pd.Timedelta(minutes=k)).to_pydatetime()
        got = start + timedelta(minutes=k)
        assert got == want and got.isoformat() == want.isoformat()


def test_the_observers_sigma_divisor_is_the_cost_models() -> None:
    assert observe._LN2_FACTOR == costs._LN2_FACTOR


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_advance_equals_update_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    by_dict, by_floats = OnlineFeatures("NVDA"), OnlineFeatures("NVDA")
    t = datetime(2024, 1, 3, 9, 30, tzinfo=NY)
    close = 100.0
    for k in range(60):
        close *= float(np.exp(rng.normal(0, 0.002)))
        high, low = close * (1 + abs(rng.normal(0, 0.001))), close * (1 - abs(rng.normal(0, 0.001)))
        vol = float(rng.integers(0, 5000))
        vwap = None if k % 7 == 3 else (high + low + close) / 3.0
        ts = t + timedelta(minutes=k)
        a = by_dict.update(
            {"ts": ts, "high": high, "low": low, "close": close, "volume": vol, "vwap": vwap}
        )
        b = by_floats.advance(
            time_ns(ts), high, low, close, vol, float("nan") if vwap is None else vwap
        )
        assert a.tobytes() == b.tobytes()
    assert by_dict.state.tobytes() == by_floats.state.tobytes()


def test_advance_refuses_a_bad_price_naming_the_field() -> None:
    f = OnlineFeatures("MSFT")
    ts = time_ns(datetime(2024, 1, 3, 9, 30, tzinfo=NY))
    with pytest.raises(DataValidationError, match=r"MSFT: row 0 .* has low -1\.0"):
        f.advance(ts, 10.0, -1.0, 10.0, 5.0, float("nan"))
    with pytest.raises(DataValidationError, match="has volume nan"):
        f.advance(ts, 10.0, 9.0, 10.0, float("nan"), float("nan"))
