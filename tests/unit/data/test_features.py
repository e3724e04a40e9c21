"""Causal features: hand-computed values, causality, offline/online identity, half days."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stairways.data import calendar as cal
from stairways.data.features import (
    FEATURE_NAMES,
    OnlineFeatures,
    benchmark_features,
    compute_features,
    feature_frame,
)
from stairways.data.settings import SyntheticConfig
from stairways.data.synthetic import generate
from stairways.errors import DataValidationError

COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _frame(day: str, closes: np.ndarray, volumes: np.ndarray, vwap: np.ndarray | None = None):
    ts = cal.session_minutes(day, day)[: len(closes)]
    n = len(closes)
    return pd.DataFrame(
        {
            "symbol": "NVDA",
            "ts": ts,
            "open": closes,
            "high": closes + 0.5,
            "low": closes - 0.5,
            "close": closes,
            "volume": volumes,
            "vwap": np.full(n, np.nan) if vwap is None else vwap,
            "trade_count": pd.array([None] * n, dtype="Int64"),
        }
    )


@pytest.fixture(scope="module")
def days() -> pd.DataFrame:
    """NVDA bars of 2023-11-22 (full day) and 2023-11-24 (half day), 600 bars."""
    bars = generate(SyntheticConfig(start=date(2023, 11, 20), end=date(2023, 11, 24)), ("NVDA",))
    day = bars["ts"].dt.tz_convert(cal.EXCHANGE_TZ).dt.date
    return bars[day >= date(2023, 11, 22)].reset_index(drop=True)


# ---------------------------------------------------------------- hand-computed values
def test_returns_momentum_time_of_day_and_warm_up_values_match_hand_computation() -> None:
    closes = 100.0 + np.arange(30, dtype=float) * 0.5
    f, names = compute_features(_frame("2023-11-22", closes, np.full(30, 100.0)))
    assert names == FEATURE_NAMES and f.shape == (30, 12)
    assert f[3, COL["ret_1"]] == pytest.approx(np.log(101.5 / 101.0), rel=1e-12)
    assert f[5, COL["ret_5"]] == pytest.approx(np.log(102.5 / 100.0), rel=1e-12)
    assert f[4, COL["ret_5"]] == 0.0  # not enough history yet
    assert f[15, COL["ret_15"]] == pytest.approx(np.log(107.5 / 100.0), rel=1e-12)
    assert f[10, COL["mom_10"]] == pytest.approx(105.0 / 100.0 - 1.0, rel=1e-12)
    assert f[9, COL["mom_10"]] == 0.0
    assert f[0, COL["tod"]] == pytest.approx(1 / 390)
    assert f[29, COL["tod"]] == pytest.approx(30 / 390)
    # Constant volume: ratio 1; steadily rising closes: RSI 100 once 14 changes are seen.
    assert np.all(f[:, COL["vol_ratio"]] == 1.0)
    assert f[13, COL["rsi_14"]] == 50.0 and f[14, COL["rsi_14"]] == 100.0


def test_ema_gaps_follow_the_recursion_seeded_with_the_first_close() -> None:
    closes = np.array([10.0, 11.0, 12.0, 10.0])
    f, _ = compute_features(_frame("2023-11-22", closes, np.full(4, 1.0)))
    ema12, ema26 = 10.0, 10.0
    for t, c in enumerate(closes):
        if t:
            ema12 += 2 / 13 * (c - ema12)
            ema26 += 2 / 27 * (c - ema26)
        assert f[t, COL["ema12_gap"]] == pytest.approx(c / ema12 - 1, rel=1e-12)
        assert f[t, COL["ema26_gap"]] == pytest.approx(c / ema26 - 1, rel=1e-12)


def test_wilder_rsi_matches_hand_computation_on_alternating_changes() -> None:
    # Changes +2, -1, +2, -1, ...: after 14 changes avg gain 1.0, avg loss 0.5, RS 2.
    closes = np.cumsum(np.r_[100.0, np.tile([2.0, -1.0], 8)])
    f, _ = compute_features(_frame("2023-11-22", closes, np.full(len(closes), 1.0)))
    assert f[14, COL["rsi_14"]] == pytest.approx(100 - 100 / 3, rel=1e-12)
    # Bar 15 gains 2: avg gain (13 + 2) / 14, avg loss 6.5 / 14.
    assert f[15, COL["rsi_14"]] == pytest.approx(100 - 100 / (1 + 15 / 6.5), rel=1e-12)


def test_vwap_volume_ratio_bollinger_and_realised_vol_match_hand_computation() -> None:
    rng = np.random.default_rng(3)
    closes = 50 + np.cumsum(rng.normal(0, 0.3, 25))
    volumes = rng.integers(100, 1000, 25).astype(float)
    f, _ = compute_features(_frame("2023-11-22", closes, volumes))
    typical = (closes + 0.5 + closes - 0.5 + closes) / 3
    vwap_4 = np.sum(typical[:5] * volumes[:5]) / np.sum(volumes[:5])
    assert f[4, COL["vwap_gap"]] == pytest.approx(closes[4] / vwap_4 - 1, rel=1e-12)
    assert f[21, COL["vol_ratio"]] == pytest.approx(volumes[21] / volumes[2:22].mean(), rel=1e-12)
    assert f[18, COL["vol_ratio"]] == 1.0
    window = closes[2:22]
    mid, sd = window.mean(), window.std()
    assert f[21, COL["bb_pctb"]] == pytest.approx(
        (closes[21] - (mid - 2 * sd)) / (4 * sd), rel=1e-9
    )
    assert f[18, COL["bb_pctb"]] == 0.5
    r = np.diff(np.log(closes))
    assert f[22, COL["rvol_20"]] == pytest.approx(np.sqrt(np.mean(r[2:22] ** 2)), rel=1e-12)
    assert f[19, COL["rvol_20"]] == 0.0


def test_session_vwap_restarts_at_the_open_and_uses_the_bar_vwap_when_present(
    days: pd.DataFrame,
) -> None:
    f, _ = compute_features(days)
    day = days["ts"].dt.tz_convert(cal.EXCHANGE_TZ).dt.date
    first = int(np.argmax((day == date(2023, 11, 24)).to_numpy()))
    expected = days["close"].iloc[first] / days["vwap"].iloc[first] - 1
    assert f[first, COL["vwap_gap"]] == pytest.approx(expected, rel=1e-12)
    # Rolling windows do not restart: ret_1 at the open spans the overnight gap.
    gap = np.log(days["close"].iloc[first] / days["close"].iloc[first - 1])
    assert f[first, COL["ret_1"]] == pytest.approx(gap, rel=1e-12)


def test_time_of_day_uses_the_half_day_length_on_2023_11_24(days: pd.DataFrame) -> None:
    f, _ = compute_features(days)
    local = days["ts"].dt.tz_convert(cal.EXCHANGE_TZ)
    half = (local.dt.date == date(2023, 11, 24)).to_numpy()
    full = ~half
    assert half.sum() == 210 and full.sum() == 390
    np.testing.assert_allclose(f[half, COL["tod"]], np.arange(1, 211) / 210, rtol=1e-15)
    np.testing.assert_allclose(f[full, COL["tod"]], np.arange(1, 391) / 390, rtol=1e-15)
    at_ten = ((local.dt.hour == 10) & (local.dt.minute == 0)).to_numpy() & half
    assert f[at_ten, COL["tod"]][0] == pytest.approx(31 / 210)


# ---------------------------------------------------------------- arithmetic properties
def _pctb_reference(c: pd.Series) -> pd.Series:
    """Bollinger %B(20, 2); a window flat to rounding error (std <= 1e-9 x mean) counts 0.5.

    Each window's mean and std are computed from its own values (two passes), not by pandas'
    rolling sums: those keep the earlier bars' rounding after the prices go flat (a constant
    window's std came out 2e-8 x mean, over the flat threshold, and %B 0.49999999 for 0.5).
    """
    windows = c.rolling(20)
    mean = windows.apply(np.mean, raw=True)
    sd = windows.apply(np.std, raw=True)
    pctb = (c - (mean - 2 * sd)) / (4 * sd)
    return pctb.mask(sd <= 1e-9 * mean.abs(), 0.5)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.floats(-0.02, 0.02), min_size=40, max_size=120),
    vols=st.integers(0, 2**31),
)
# Found in CI: a window flat to rounding error once made %B float noise (0.25 against 0.5).
@example(steps=[0.0] * 4 + [0.015625, 0.0078125] + [0.0] * 34, vols=0)
# Found in a full run: a constant window after moves, flat to pandas' rolling std only to 2e-8.
@example(steps=[0.0] * 5 + [0.015625, 0.01953125, 0.0, 0.00582414551075883] + [0.0] * 31, vols=0)
def test_features_equal_a_rolling_pandas_reference_on_random_series(
    steps: list[float], vols: int
) -> None:
    n = len(steps)
    closes = 100 * np.exp(np.cumsum(steps))
    volumes = np.random.default_rng(vols).integers(1, 10_000, n).astype(float)
    f, _ = compute_features(_frame("2023-11-22", closes, volumes))
    c = pd.Series(closes)
    r = np.log(c).diff()
    ref = {
        "ret_5": np.log(c / c.shift(5)),
        "mom_10": c / c.shift(10) - 1,
        "rvol_20": np.sqrt((r**2).rolling(20).mean()),
        "vol_ratio": pd.Series(volumes) / pd.Series(volumes).rolling(20).mean(),
        "bb_pctb": _pctb_reference(c),
    }
    for name, series in ref.items():
        warm = series.notna().to_numpy()
        np.testing.assert_allclose(f[warm, COL[name]], series[warm], rtol=1e-8, atol=1e-12)


# ---------------------------------------------------------------- causality
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    t=st.integers(0, 598),
    seed=st.integers(0, 2**31),
    column=st.sampled_from(["open", "high", "low", "close", "volume", "vwap"]),
)
def test_changing_bars_after_t_never_changes_features_at_or_before_t(
    days: pd.DataFrame, t: int, seed: int, column: str
) -> None:
    before, _ = compute_features(days)
    changed = days.copy()
    rng = np.random.default_rng(seed)
    later = np.arange(t + 1, len(days))
    factor = rng.uniform(0.5, 2.0, len(later))
    values = changed[column].to_numpy(copy=True)
    values[later] *= factor
    changed[column] = values
    if column in ("close", "open"):
        changed["high"] = np.maximum(changed["high"], changed[["open", "close"]].max(axis=1))
        changed["low"] = np.minimum(changed["low"], changed[["open", "close"]].min(axis=1))
    after, _ = compute_features(changed)
    assert np.array_equal(before[: t + 1], after[: t + 1])
    if column in ("close", "volume"):
        assert not np.array_equal(before[t + 1 :], after[t + 1 :])


# ---------------------------------------------------------------- offline == online
def test_online_bar_by_bar_equals_offline_whole_history_exactly(days: pd.DataFrame) -> None:
    offline, _ = compute_features(days)
    online = OnlineFeatures("NVDA")
    rows = np.stack([online.update(bar) for bar in days.to_dict("records")])
    assert np.array_equal(offline, rows)
    assert online.bars_seen == len(days)


def test_online_after_a_warm_up_chunk_continues_exactly_like_offline(days: pd.DataFrame) -> None:
    offline, _ = compute_features(days)
    online = OnlineFeatures("NVDA")
    head = online.warm_up(days.iloc[:400])
    tail = np.stack([online.update(bar) for bar in days.iloc[400:].to_dict("records")])
    assert np.array_equal(offline, np.vstack([head, tail]))


def test_online_refuses_old_bars_and_bars_outside_sessions(days: pd.DataFrame) -> None:
    online = OnlineFeatures("NVDA")
    bar = days.iloc[5].to_dict()
    online.update(bar)
    with pytest.raises(DataValidationError, match=r"not after the previous bar"):
        online.update(days.iloc[4].to_dict())
    holiday = dict(bar, ts=pd.Timestamp("2023-11-23 15:00", tz="UTC"))
    with pytest.raises(DataValidationError, match=r"not a XNYS session"):
        online.update(holiday)


# ---------------------------------------------------------------- input checks
def test_bars_outside_regular_hours_are_refused_with_the_row_named(days: pd.DataFrame) -> None:
    bad = days.copy()
    bad.loc[0, "ts"] = pd.Timestamp("2023-11-22 13:00", tz="UTC")  # 08:00 New York
    with pytest.raises(DataValidationError, match=r"row 0 .* outside regular trading hours"):
        compute_features(bad)


def test_unsorted_bars_and_non_positive_prices_are_refused(days: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match=r"strictly increasing"):
        compute_features(days.iloc[::-1])
    bad = days.copy()
    bad.loc[7, "close"] = 0.0
    with pytest.raises(DataValidationError, match=r"row 7 .* close 0.0"):
        compute_features(bad)


def test_feature_frame_handles_several_symbols_and_compute_refuses_them() -> None:
    bars = generate(SyntheticConfig(start=date(2023, 11, 22), end=date(2023, 11, 22)))
    frame = feature_frame(bars)
    assert list(frame.columns) == ["symbol", "ts", *FEATURE_NAMES]
    assert len(frame) == 780
    nvda, _ = compute_features(bars[bars["symbol"] == "NVDA"])
    assert np.array_equal(frame.loc[frame["symbol"] == "NVDA", list(FEATURE_NAMES)], nvda)
    with pytest.raises(DataValidationError, match=r"one symbol at a time"):
        compute_features(bars)


def test_benchmark_reports_a_positive_throughput(days: pd.DataFrame) -> None:
    assert benchmark_features(days) > 0
