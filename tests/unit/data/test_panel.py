"""The panel builder: shapes, half days, padding, exclusions, errors and the fingerprint."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stairways.data import calendar as cal
from stairways.data.features import FEATURE_NAMES, OnlineFeatures
from stairways.data.panel_builder import build_panel, fit_normaliser, panel_from_bars
from stairways.data.settings import DataConfig, DateRange, SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from stairways.errors import ConfigError, MissingResourceError

SYN = SyntheticConfig(start=date(2023, 11, 1), end=date(2023, 12, 29))


def _cfg(store: Path, **splits: DateRange) -> DataConfig:
    return DataConfig(
        store_path=store,
        splits=splits
        or {
            "train": DateRange(start=date(2023, 11, 1), end=date(2023, 11, 30)),
            "test": DateRange(start=date(2023, 12, 1), end=date(2023, 12, 29)),
        },
    )


def _day(frame: pd.DataFrame) -> pd.Series:
    return frame["ts"].dt.tz_convert(cal.EXCHANGE_TZ).dt.date


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate(SYN)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory, bars: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("panel") / "bars.duckdb"
    with BarStore(path) as store:
        store.write_bars(bars, source="synthetic", synthetic=True, details=generator_details(SYN))
    return path


def test_train_panel_has_the_contract_shapes_and_a_210_minute_half_day(store_path: Path) -> None:
    cfg = _cfg(store_path)
    with BarStore(store_path, read_only=True) as store:
        panel = build_panel(cfg, "train", store)
    n_sessions = len(cal.sessions("2023-11-01", "2023-11-30")) - 1  # the first has no warm-up
    assert panel.n_sessions == n_sessions
    assert panel.features.shape == (n_sessions, 390, 2, len(FEATURE_NAMES))
    assert panel.features.dtype == np.float32 and panel.close.dtype == np.float64
    assert panel.symbols == ("NVDA", "MSFT") and panel.feature_names == FEATURE_NAMES
    assert panel.synthetic is True and panel.split == "train"
    lengths = dict(zip(panel.dates.astype(str), panel.lengths.tolist(), strict=True))
    assert lengths["2023-11-24"] == 210 and lengths["2023-11-22"] == 390
    assert panel.excluded_sessions == (
        ("2023-11-01", f"fewer than {cfg.features.warmup_bars} bars of earlier history"),
    )
    assert panel.normaliser is not None and panel.normaliser.split == "train"
    assert np.abs(panel.features).max() <= cfg.features.clip


def test_padding_repeats_the_last_real_minute_and_timestamps_match_the_calendar(
    store_path: Path, bars: pd.DataFrame
) -> None:
    with BarStore(store_path, read_only=True) as store:
        panel = build_panel(_cfg(store_path), "train", store)
    s = int(np.nonzero(panel.dates == np.datetime64("2023-11-24"))[0][0])
    expected_ts = cal.session_minutes("2023-11-24", "2023-11-24").as_unit("ns").asi8
    assert np.array_equal(panel.ts[s, :210], expected_ts)
    assert np.all(panel.ts[s, 210:] == expected_ts[-1])
    for arr in (panel.close, panel.volume, panel.features):
        assert np.array_equal(arr[s, 210:], np.broadcast_to(arr[s, 209], arr[s, 210:].shape))
    nvda = bars[(bars["symbol"] == "NVDA") & (_day(bars) == date(2023, 11, 24))]
    assert np.array_equal(panel.close[s, :210, 0], nvda["close"].to_numpy())


def test_panel_features_are_the_normalised_online_features(
    store_path: Path, bars: pd.DataFrame
) -> None:
    with BarStore(store_path, read_only=True) as store:
        panel = build_panel(_cfg(store_path), "test", store)
    assert panel.n_sessions == len(cal.sessions("2023-12-01", "2023-12-29"))
    assert panel.excluded_sessions == ()  # the warm-up session comes from November
    assert panel.normaliser is not None
    msft = bars[bars["symbol"] == "MSFT"]
    online = OnlineFeatures("MSFT")
    raw = np.stack([online.update(b) for b in msft.to_dict("records")])
    day = _day(msft).to_numpy()
    s = 3
    rows = raw[day == panel.dates[s].astype(object)]
    expected = panel.normaliser.transform_ticker("MSFT", rows)
    assert np.array_equal(panel.features[s, : panel.lengths[s], 1], expected)


def test_incomplete_session_is_excluded_counted_and_logged(
    tmp_path: Path, store_path: Path, bars: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    holes = (bars["symbol"] == "NVDA") & (_day(bars) == date(2023, 11, 15))
    drop = bars.index[holes][100:105]
    path = tmp_path / "holes.duckdb"
    with BarStore(path) as store:
        store.write_bars(bars.drop(drop), source="synthetic", synthetic=True)
        with caplog.at_level(logging.WARNING, logger="stairways.data.panel_builder"):
            panel = build_panel(_cfg(path), "train", store)
    assert np.datetime64("2023-11-15") not in panel.dates
    assert ("2023-11-15", "incomplete bars: NVDA 385/390") in panel.excluded_sessions
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("excluded 1 of 21 sessions" in m and "2023-11-15" in m for m in warning)
    with BarStore(store_path, read_only=True) as full_store:
        complete = build_panel(_cfg(store_path), "train", full_store)
    assert panel.n_sessions == complete.n_sessions - 1


def test_split_without_bars_names_split_range_store_and_how_to_create_them(
    store_path: Path,
) -> None:
    cfg = _cfg(
        store_path,
        train=DateRange(start=date(2023, 11, 1), end=date(2023, 11, 30)),
        test=DateRange(start=date(2024, 1, 2), end=date(2024, 12, 31)),
    )
    with BarStore(store_path, read_only=True) as store:
        norm = fit_normaliser(cfg, store)
        with pytest.raises(MissingResourceError) as err:
            build_panel(cfg, "test", store, norm)
    message = str(err.value)
    assert "split 'test' (2024-01-02..2024-12-31)" in message
    assert str(store_path) in message and "stairways data synth" in message


def test_normaliser_comes_from_train_and_test_panel_reuses_it(store_path: Path) -> None:
    cfg = _cfg(store_path)
    with BarStore(store_path, read_only=True) as store:
        norm = fit_normaliser(cfg, store)
        test = build_panel(cfg, "test", store, norm)
        implicit = build_panel(cfg, "test", store)
    assert test.normaliser is norm and implicit.normaliser == norm
    assert np.array_equal(test.features, implicit.features)
    sub = test.subset(np.array([0, 2]))
    assert sub.normaliser is norm and sub.n_sessions == 2


def test_mismatched_normaliser_or_clip_is_refused(store_path: Path, bars: pd.DataFrame) -> None:
    cfg = _cfg(store_path)
    with BarStore(store_path, read_only=True) as store:
        norm = fit_normaliser(cfg, store)
    other = cfg.model_copy(update={"features": cfg.features.model_copy(update={"clip": 3.0})})
    with pytest.raises(ConfigError, match=r"clips at 5.0"):
        panel_from_bars(bars, other, "test", norm)
    nvda_only = cfg.model_copy(update={"symbols": ("NVDA",)})
    with pytest.raises(ConfigError, match=r"cannot be used for tickers"):
        panel_from_bars(bars, nvda_only, "test", norm)


def test_fingerprint_is_stable_and_changes_when_a_bar_changes(
    store_path: Path, bars: pd.DataFrame
) -> None:
    cfg = _cfg(store_path)
    with BarStore(store_path, read_only=True) as store:
        norm = fit_normaliser(cfg, store)
        first = build_panel(cfg, "test", store, norm)
        again = build_panel(cfg, "test", store, norm)
    assert first.fingerprint == again.fingerprint and len(first.fingerprint) == 16
    changed = bars.copy()
    row = changed.index[(_day(changed) == date(2023, 12, 12)) & (changed["symbol"] == "MSFT")][7]
    changed.loc[row, "volume"] += 1.0
    other = panel_from_bars(changed, cfg, "test", norm, synthetic=True)
    assert other.fingerprint != first.fingerprint
    assert other.synthetic is True and np.array_equal(other.close, first.close)


def test_split_with_no_sessions_is_a_config_error(store_path: Path) -> None:
    cfg = _cfg(
        store_path,
        train=DateRange(start=date(2023, 11, 1), end=date(2023, 11, 30)),
        test=DateRange(start=date(2023, 12, 1), end=date(2023, 12, 29)),
        holiday=DateRange(start=date(2023, 12, 25), end=date(2023, 12, 25)),
    )
    with BarStore(store_path, read_only=True) as store:
        norm = fit_normaliser(cfg, store)
        with pytest.raises(ConfigError, match=r"'holiday' .* contains no XNYS sessions"):
            build_panel(cfg, "holiday", store, norm)
