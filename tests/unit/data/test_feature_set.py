"""OnlineFeatureSet (every ticker's bar in one kernel call) gives, to the bit, each ticker's
OnlineFeatures.advance followed by the normaliser's arithmetic, and refuses what it refuses."""

from __future__ import annotations

import copy
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.data import calendar as cal
from stairways.data.features import N_FEATURES, OnlineFeatures, OnlineFeatureSet
from stairways.errors import DataValidationError

DAYS = (date(2023, 11, 24), date(2024, 1, 3), date(2024, 1, 4))  # a half day, two full days


def _minutes(rng: np.random.Generator, per_day: int) -> list[int]:
    """Start times (UTC ns) of some bars of each day, in order, with random gaps."""
    out: list[int] = []
    for day in DAYS:
        ts = cal.session_minutes(day, day).as_unit("ns").asi8
        keep = np.sort(rng.choice(len(ts), size=min(per_day, len(ts)), replace=False))
        out.extend(int(x) for x in ts[keep])
    return out


def _values(rng: np.random.Generator, closes: np.ndarray) -> np.ndarray:
    """One bar of every ticker: high, low, close, volume, vwap (rows), closes moved in place."""
    t = len(closes)
    closes *= np.exp(rng.normal(0.0, 0.003, t))
    high = closes * (1.0 + np.abs(rng.normal(0.0, 0.002, t)))
    low = closes * (1.0 - np.abs(rng.normal(0.0, 0.002, t)))
    volume = np.where(rng.random(t) < 0.15, 0.0, rng.integers(1, 5000, t).astype(np.float64))
    vwap = np.where(rng.random(t) < 0.3, np.nan, (high + low + closes) / 3.0)
    return np.array([high, low, closes.copy(), volume, vwap])


def _reference(
    tickers: list[OnlineFeatures],
    ts: int,
    values: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    clip: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Ticker by ticker: OnlineFeatures.advance, then Normaliser.transform_ticker's arithmetic."""
    raw = np.zeros((len(tickers), N_FEATURES))
    z = np.zeros((len(tickers), N_FEATURES), dtype=np.float32)
    for j, f in enumerate(tickers):
        h, lo, c, v, w = (float(x) for x in values[:, j])
        raw[j] = f.advance(ts, h, lo, c, v, w)
        z[j] = np.clip((raw[j] - mean[j]) / scale[j], -clip, clip).astype(np.float32)
    return raw, z


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.booleans())
def test_the_set_equals_each_tickers_advance_and_the_normaliser_bit_for_bit(
    seed: int, n_tickers: int, primed: bool
) -> None:
    rng = np.random.default_rng(seed)
    symbols = ["NVDA", "MSFT", "AAPL"][:n_tickers]
    fset = OnlineFeatureSet(symbols)
    ref = [OnlineFeatures(s) for s in symbols]
    minutes = _minutes(rng, per_day=int(rng.integers(20, 60)))
    if primed:
        fset.enter_session(minutes[0])
    mean = rng.normal(0.0, 0.01, (n_tickers, N_FEATURES))
    scale = np.abs(rng.normal(0.0, 0.01, (n_tickers, N_FEATURES))) + 1e-4
    clip = float(rng.choice([0.5, 3.0, 10.0]))  # small clips clip many values
    closes = rng.uniform(20.0, 500.0, n_tickers)
    for ts in minutes:
        values = _values(rng, closes)
        raw = np.full((n_tickers, N_FEATURES), np.nan)
        z = np.full((n_tickers, N_FEATURES), np.nan, dtype=np.float32)
        fset.advance(ts, values, mean, scale, clip, raw, z)
        want_raw, want_z = _reference(ref, ts, values, mean, scale, clip)
        assert raw.tobytes() == want_raw.tobytes()
        assert z.tobytes() == want_z.tobytes()
    for mine, theirs in zip(fset.tickers, ref, strict=True):
        assert mine.state.tobytes() == theirs.state.tobytes()
        assert mine.bars_seen == theirs.bars_seen == len(minutes)


@pytest.mark.parametrize(
    ("bad", "field", "text"),
    [(1, 2, "close -1.0"), (0, 1, "low 0.0"), (1, 3, "volume nan"), (0, 0, "high inf")],
)
def test_a_refused_value_names_the_ticker_and_leaves_the_earlier_tickers_advanced(
    bad: int, field: int, text: str
) -> None:
    symbols = ["NVDA", "MSFT"]
    fset = OnlineFeatureSet(symbols)
    day = DAYS[0]
    ts = cal.session_minutes(day, day).as_unit("ns").asi8
    fset.enter_session(int(ts[0]))
    ref = [OnlineFeatures(s) for s in symbols]
    mean, scale = np.zeros((2, N_FEATURES)), np.ones((2, N_FEATURES))
    raw = np.zeros((2, N_FEATURES))
    z = np.zeros((2, N_FEATURES), dtype=np.float32)
    good = np.array([[10.5, 10.5], [9.5, 9.5], [10.0, 10.0], [100.0, 100.0], [np.nan, np.nan]])
    fset.advance(int(ts[0]), good, mean, scale, 3.0, raw, z)
    _reference(ref, int(ts[0]), good, mean, scale, 3.0)
    broken = good.copy()
    broken[field, bad] = {0: np.inf, 1: 0.0, 2: -1.0, 3: np.nan}[field]
    with pytest.raises(DataValidationError) as got:
        fset.advance(int(ts[1]), broken, mean, scale, 3.0, raw, z)
    with pytest.raises(DataValidationError) as want:
        _reference(ref, int(ts[1]), broken, mean, scale, 3.0)
    assert str(got.value) == str(want.value)
    assert f"{symbols[bad]}: row 0" in str(got.value) and text in str(got.value)
    for mine, theirs in zip(fset.tickers, ref, strict=True):
        assert mine.state.tobytes() == theirs.state.tobytes()
    assert fset.tickers[0].bars_seen == (2 if bad == 1 else 1)
    assert fset.tickers[1].bars_seen == 1


def test_bars_out_of_order_off_the_minute_or_off_session_are_refused_as_by_each_ticker() -> None:
    fset = OnlineFeatureSet(["NVDA", "MSFT"])
    day = DAYS[0]
    ts = cal.session_minutes(day, day).as_unit("ns").asi8
    mean, scale = np.zeros((2, N_FEATURES)), np.ones((2, N_FEATURES))
    raw = np.zeros((2, N_FEATURES))
    z = np.zeros((2, N_FEATURES), dtype=np.float32)
    vals = np.array([[10.5, 10.5], [9.5, 9.5], [10.0, 10.0], [100.0, 100.0], [np.nan, np.nan]])
    fset.advance(int(ts[5]), vals, mean, scale, 3.0, raw, z)
    with pytest.raises(DataValidationError, match=r"NVDA: bar at .* is not after the previous"):
        fset.advance(int(ts[5]), vals, mean, scale, 3.0, raw, z)
    with pytest.raises(DataValidationError, match=r"NVDA: .* not on a minute"):
        fset.advance(int(ts[6]) + 1_000_000_000, vals, mean, scale, 3.0, raw, z)
    saturday = int(ts[0]) + 86_400_000_000_000  # DAYS[0] is a Friday
    with pytest.raises(DataValidationError, match=r"NVDA: bar at .* which is not a XNYS session"):
        fset.advance(saturday, vals, mean, scale, 3.0, raw, z)
    assert [f.bars_seen for f in fset.tickers] == [1, 1]


def test_a_deep_copy_advances_its_own_states_only() -> None:
    fset = OnlineFeatureSet(["NVDA", "MSFT"])
    day = DAYS[0]
    ts = cal.session_minutes(day, day).as_unit("ns").asi8
    fset.enter_session(int(ts[0]))
    twin = copy.deepcopy(fset)
    mean, scale = np.zeros((2, N_FEATURES)), np.ones((2, N_FEATURES))
    raw = np.zeros((2, N_FEATURES))
    z = np.zeros((2, N_FEATURES), dtype=np.float32)
    vals = np.array([[10.5, 10.5], [9.5, 9.5], [10.0, 10.0], [100.0, 100.0], [np.nan, np.nan]])
    twin.advance(int(ts[0]), vals, mean, scale, 3.0, raw, z)
    assert [f.bars_seen for f in twin.tickers] == [1, 1]
    assert [f.bars_seen for f in fset.tickers] == [0, 0]
    assert twin["MSFT"] is twin.tickers[1]
