"""The in-process panel cache: a hit equals a fresh build, and no change can leave it stale."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.data.panel import SessionPanel
from stairways.data.panel_builder import (
    PANEL_CACHE_SIZE,
    build_panel,
    clear_panel_cache,
    fit_normaliser,
    panel_cache_key,
    panel_cache_size,
)
from stairways.data.settings import DataConfig, DateRange, SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details

SYN = SyntheticConfig(start=date(2023, 11, 1), end=date(2023, 12, 29))
ARRAYS = ("dates", "lengths", "ts", "open", "high", "low", "close", "volume", "features")


def _cfg(store: Path, clip: float | None = None) -> DataConfig:
    data = {
        "store_path": store,
        "splits": {
            "train": DateRange(start=date(2023, 11, 1), end=date(2023, 11, 30)),
            "test": DateRange(start=date(2023, 12, 1), end=date(2023, 12, 29)),
        },
    }
    if clip is not None:
        data["features"] = {"clip": clip}
    return DataConfig.model_validate(data)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "bars.duckdb"
    with BarStore(path) as store:
        store.write_bars(
            generate(SYN), source="synthetic", synthetic=True, details=generator_details(SYN)
        )
    clear_panel_cache()
    return path


def _build(cfg: DataConfig, split: str = "test") -> SessionPanel:
    with BarStore(cfg.store_path, read_only=True) as store:
        norm = fit_normaliser(cfg, store)
        return build_panel(cfg, split, store, norm)


def _cold(cfg: DataConfig, split: str = "test") -> SessionPanel:
    clear_panel_cache()
    return _build(cfg, split)


def _assert_same(a: SessionPanel, b: SessionPanel) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.fingerprint, a.synthetic, a.excluded_sessions, a.split) == (
        b.fingerprint,
        b.synthetic,
        b.excluded_sessions,
        b.split,
    )


def test_a_hit_equals_the_build_and_owns_its_arrays(store_path: Path) -> None:
    cfg = _cfg(store_path)
    first = _build(cfg)
    assert panel_cache_size() == 1
    second = _build(cfg)
    assert panel_cache_size() == 1
    _assert_same(first, second)
    for name in ARRAYS:
        assert not np.shares_memory(getattr(first, name), getattr(second, name)), name
    # A caller that writes into its panel cannot change the next one.
    second.close[0, 0, 0] = -1.0
    second.features[:] = 0.0
    _assert_same(first, _build(cfg))


def test_a_hit_logs_the_left_out_sessions_as_the_build_does(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _cfg(store_path)
    with caplog.at_level(logging.INFO, logger="stairways.data.panel_builder"):
        _build(cfg, "train")
        built = [r.getMessage() for r in caplog.records if r.getMessage().startswith("split ")]
        caplog.clear()
        _build(cfg, "train")
        hit = [r.getMessage() for r in caplog.records if r.getMessage().startswith("split ")]
    assert built and hit == built


def test_changing_the_config_the_split_or_the_normaliser_is_another_key(
    store_path: Path,
) -> None:
    cfg = _cfg(store_path)
    with BarStore(store_path, read_only=True) as store:
        norm = fit_normaliser(cfg, store)
        key = panel_cache_key(cfg, "test", store, norm)
        assert panel_cache_key(cfg, "test", store, norm) == key
        assert panel_cache_key(cfg, "train", store, norm) != key
        clipped = _cfg(store_path, clip=3.0)
        assert panel_cache_key(clipped, "test", store, norm) != key
        other = fit_normaliser(_cfg(store_path, clip=3.0), store)
        assert panel_cache_key(cfg, "test", store, other) != key
        moved = cfg.model_copy(update={"symbols": ("MSFT", "NVDA")})
        assert panel_cache_key(moved, "test", store, norm) != key
        # The store's path is not part of the key: the same bars elsewhere are the same panel.
        elsewhere = cfg.model_copy(update={"store_path": Path("/elsewhere.duckdb")})
        assert panel_cache_key(elsewhere, "test", store, norm) == key


def test_the_cache_keeps_a_bounded_number_of_panels(store_path: Path) -> None:
    for k in range(PANEL_CACHE_SIZE + 2):
        _build(_cfg(store_path, clip=4.0 + k))
    assert panel_cache_size() == PANEL_CACHE_SIZE


FIELDS = ("open", "high", "low", "close", "volume", "vwap")


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    symbol=st.sampled_from(["NVDA", "MSFT"]),
    where=st.floats(min_value=0.0, max_value=0.999),
    field=st.sampled_from(FIELDS),
    factor=st.sampled_from([0.999, 1.0001, 1.01]),
)
def test_no_change_to_the_bars_read_leaves_a_stale_panel(
    store_path: Path, symbol: str, where: float, field: str, factor: float
) -> None:
    """Change one stored value of any bar the build reads (split or warm-up): the next build
    is a fresh one, equal to a build with an empty cache."""
    cfg = _cfg(store_path)
    before = _build(cfg)
    with BarStore(store_path) as store:
        bars = store.read_bars([symbol], date(2023, 11, 1), date(2023, 12, 29))
        row = bars.iloc[[int(where * len(bars))]].copy()
        if field in ("open", "close"):
            # keep the bar valid: move the whole bar by the factor
            for name in ("open", "high", "low", "close"):
                row[name] = row[name] * factor
        elif field == "high":
            row["high"] = row["high"] * max(factor, 1.0001)
        elif field == "low":
            row["low"] = row["low"] * min(factor, 0.999)
        else:
            row[field] = row[field] * factor + (1.0 if field == "volume" else 0.0)
        store.write_bars(
            row.reset_index(drop=True),
            source="synthetic",
            synthetic=True,
            details=generator_details(SYN),
            replace=True,
        )
    after = _build(cfg)
    _assert_same(after, _cold(cfg))
    changed = any(
        not np.array_equal(getattr(before, n), getattr(after, n)) for n in ARRAYS
    ) or not np.array_equal(before.features, after.features)
    day = pd.Timestamp(row["ts"].iloc[0]).tz_convert("America/New_York").date()
    if day >= date(2023, 12, 1):
        # a bar of the split itself: its panel must show the change
        assert changed


def test_a_store_whose_symbols_change_provenance_is_another_key(store_path: Path) -> None:
    cfg = _cfg(store_path)
    with BarStore(store_path, read_only=True) as store:
        norm = fit_normaliser(cfg, store)
        key = panel_cache_key(cfg, "test", store, norm)
    with BarStore(store_path) as store:
        store.write_bars(
            generate(SYN).head(1),
            source="synthetic",
            synthetic=True,
            details={"note": "another generator run"},
            replace=True,
        )
        assert panel_cache_key(cfg, "test", store, norm) != key
