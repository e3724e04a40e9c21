"""Feature normalisation: fitted on the training split only, clipped, safe with zero std."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stairways.data import calendar as cal
from stairways.data.features import FEATURE_NAMES
from stairways.data.normalise import Normaliser
from stairways.data.panel_builder import fit_normaliser_from_bars
from stairways.data.settings import DataConfig, DateRange, SyntheticConfig
from stairways.data.synthetic import generate
from stairways.errors import ConfigError, MissingResourceError, SplitOverlapError

NAMES = ("a", "b", "c")


def _fit(samples: dict[str, np.ndarray], clip: float = 5.0) -> Normaliser:
    return Normaliser.fit(
        samples, NAMES, clip=clip, split="train", start="2022-01-03", end="2023-12-29"
    )


def _cfg(**features: object) -> DataConfig:
    return DataConfig(
        splits={
            "train": DateRange(start=date(2023, 11, 1), end=date(2023, 11, 30)),
            "test": DateRange(start=date(2023, 12, 1), end=date(2023, 12, 29)),
        },
        features=features or {},
    )


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate(SyntheticConfig(start=date(2023, 11, 1), end=date(2023, 12, 29)))


def test_fit_stores_mean_and_population_std_per_ticker_and_feature() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (500, 3))
    y = rng.normal(-1.0, 0.5, (400, 3))
    norm = _fit({"NVDA": x, "MSFT": y})
    assert norm.symbols == ("NVDA", "MSFT") and norm.n_obs == (500, 400)
    np.testing.assert_array_equal(norm.mean, np.stack([x.mean(0), y.mean(0)]))
    np.testing.assert_array_equal(norm.std, np.stack([x.std(0), y.std(0)]))
    out = norm.transform(np.stack([x[:400], y], axis=1))
    assert out.dtype == np.float32 and out.shape == (400, 2, 3)
    np.testing.assert_allclose(out[:, 1, :].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[:, 1, :].std(axis=0), 1.0, rtol=1e-5)


def test_transform_standardises_then_clips_at_the_configured_bound() -> None:
    x = np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    norm = _fit({"NVDA": x}, clip=1.5)  # mean 1, std 1
    z = norm.transform(np.array([[[1.5, 100.0, -100.0]]]))
    np.testing.assert_array_equal(z, np.array([[[0.5, 1.5, -1.5]]], dtype=np.float32))


@settings(max_examples=60, deadline=None)
@given(
    train=hnp.arrays(np.float64, (30, 3), elements=st.floats(-1e6, 1e6)),
    values=hnp.arrays(np.float64, (7, 1, 3), elements=st.floats(-1e9, 1e9)),
    clip=st.floats(0.1, 50.0),
)
def test_normalised_values_are_finite_bounded_and_equal_the_clipped_z_score(
    train: np.ndarray, values: np.ndarray, clip: float
) -> None:
    norm = _fit({"NVDA": train}, clip=clip)
    z = norm.transform(values)
    assert np.all(np.isfinite(z)) and np.all(np.abs(z) <= np.float32(clip))
    expected = np.clip((values - norm.mean) / norm.scale, -clip, clip).astype(np.float32)
    np.testing.assert_array_equal(z, expected)


def test_constant_feature_becomes_zero_not_nan_and_is_reported() -> None:
    x = np.column_stack([np.full(50, 7.0), np.arange(50.0), np.full(50, 0.0)])
    norm = _fit({"NVDA": x})
    z = norm.transform(np.array([[[7.0, 10.0, 0.0]]]))
    assert np.all(np.isfinite(z)) and z[0, 0, 0] == 0.0 and z[0, 0, 2] == 0.0
    assert norm.constant_features == [("NVDA", "a"), ("NVDA", "c")]


def test_save_and_load_round_trip_exactly(tmp_path: Path) -> None:
    norm = _fit({"NVDA": np.random.default_rng(1).normal(size=(20, 3))})
    path = norm.save(tmp_path / "run" / "normaliser.json")
    again = Normaliser.load(path)
    assert again == norm
    assert np.array_equal(again.mean, norm.mean) and np.array_equal(again.std, norm.std)
    assert json.loads(path.read_text())["split"] == "train"


def test_loading_a_missing_or_broken_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(MissingResourceError, match=r"nope.json does not exist"):
        Normaliser.load(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"format_version": 1, "symbols": ["NVDA"]}')
    with pytest.raises(
        ConfigError, match=r"broken.json: normaliser is missing key 'feature_names'"
    ):
        Normaliser.load(broken)


def test_normaliser_for_other_tickers_is_refused() -> None:
    norm = _fit({"NVDA": np.ones((3, 3)) * np.arange(3)})
    with pytest.raises(ConfigError, match=r"cannot be used for tickers"):
        norm.check_compatible(("MSFT",), NAMES)


def test_normaliser_is_fitted_on_the_training_split_only(bars: pd.DataFrame) -> None:
    cfg = _cfg()
    norm = fit_normaliser_from_bars(bars, cfg)
    assert (norm.split, norm.start, norm.end) == ("train", "2023-11-01", "2023-11-30")
    assert norm.feature_names == FEATURE_NAMES
    # November minus its first session (no earlier history for warm-up).
    minutes = cal.sessions("2023-11-02", "2023-11-30").minutes.sum()
    assert norm.n_obs == (minutes, minutes)
    day = bars["ts"].dt.tz_convert(cal.EXCHANGE_TZ).dt.date
    december = (day >= date(2023, 12, 1)).to_numpy()
    changed_test = bars.copy()
    for col in ("open", "high", "low", "close", "vwap"):
        changed_test.loc[december, col] *= 3.0
    assert fit_normaliser_from_bars(changed_test, cfg) == norm
    changed_train = bars.copy()
    changed_train.loc[~december, "volume"] *= np.linspace(1, 5, int((~december).sum()))
    assert fit_normaliser_from_bars(changed_train, cfg) != norm


def test_fitting_on_a_split_overlapping_test_is_refused_unless_allowed(bars: pd.DataFrame) -> None:
    cfg = _cfg(normalisation_split="test")
    with pytest.raises(SplitOverlapError, match=r"'test'"):
        fit_normaliser_from_bars(bars, cfg)
    norm = fit_normaliser_from_bars(bars, cfg, allow_test_overlap=True)
    assert norm.test_overlap_override and norm.to_dict()["test_overlap_override"] is True
