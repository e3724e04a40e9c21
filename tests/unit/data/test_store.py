from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stairways.data import calendar as cal
from stairways.data.store import BarStore
from stairways.errors import DataValidationError, MissingResourceError, StoreError


def _bars(symbol: str, day: str, close: float = 1.5) -> pd.DataFrame:
    ts = cal.session_minutes(day, day)
    n = len(ts)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": ts,
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": close,
            "volume": 100.0,
            "vwap": np.nan,
            "trade_count": pd.array([None] * n, dtype="Int64"),
        }
    )


def test_rewriting_the_same_bars_changes_nothing(tmp_path: Path) -> None:
    with BarStore(tmp_path / "s.duckdb") as store:
        first = store.write_bars(_bars("NVDA", "2023-11-22"), source="t", synthetic=False)
        second = store.write_bars(_bars("NVDA", "2023-11-22"), source="t", synthetic=False)
        assert (first.rows_inserted, second.rows_inserted, second.rows_unchanged) == (390, 0, 390)
        assert store.count() == 390


def test_differing_values_are_refused_without_replace_and_store_is_unchanged(
    tmp_path: Path,
) -> None:
    with BarStore(tmp_path / "s.duckdb") as store:
        store.write_bars(_bars("NVDA", "2023-11-22"), source="t", synthetic=False)
        changed = pd.concat([_bars("NVDA", "2023-11-22", close=1.6), _bars("NVDA", "2023-11-24")])
        with pytest.raises(DataValidationError, match="different values"):
            store.write_bars(changed, source="t", synthetic=False)
        assert store.count() == 390
        assert (store.read_bars(["NVDA"])["close"] == 1.5).all()
        result = store.write_bars(changed, source="t", synthetic=False, replace=True)
        assert (result.rows_replaced, result.rows_inserted) == (390, 210)


def test_synthetic_and_real_bars_are_not_mixed_for_one_symbol(tmp_path: Path) -> None:
    with BarStore(tmp_path / "s.duckdb") as store:
        store.write_bars(_bars("NVDA", "2023-11-22"), source="synthetic", synthetic=True)
        with pytest.raises(StoreError, match="refusing to mix"):
            store.write_bars(_bars("NVDA", "2023-11-24"), source="csv", synthetic=False)


def test_read_filters_by_exchange_date_and_symbol(tmp_path: Path) -> None:
    with BarStore(tmp_path / "s.duckdb") as store:
        store.write_bars(
            pd.concat([_bars("NVDA", "2023-11-22"), _bars("MSFT", "2023-11-24")]),
            source="t",
            synthetic=False,
        )
        got = store.read_bars(["NVDA", "MSFT"], "2023-11-24", "2023-11-24")
        assert set(got["symbol"]) == {"MSFT"} and len(got) == 210
        assert str(got["ts"].dtype) == "datetime64[ns, UTC]"


def test_opening_a_missing_store_read_only_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MissingResourceError, match="stairways data synth"):
        BarStore(tmp_path / "nope.duckdb", read_only=True)
