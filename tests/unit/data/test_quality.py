"""Per-session completeness against the calendar, and the store overview."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.data import calendar as cal
from stairways.data.quality import (
    session_completeness,
    store_completeness,
    store_overview,
    summarise_completeness,
)
from stairways.data.store import BarStore


def bars(symbol: str, start: str, end: str, drop: slice | None = None) -> pd.DataFrame:
    ts = cal.session_minutes(start, end)
    if drop is not None:
        ts = ts.delete(drop)
    n = len(ts)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": ts,
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
            "volume": 1.0,
            "vwap": np.nan,
            "trade_count": pd.array([None] * n, dtype="Int64"),
        }
    )


def test_half_day_expects_210_and_full_day_390() -> None:
    table = session_completeness(bars("NVDA", "2023-11-22", "2023-11-24"))
    assert table["session"].tolist() == [date(2023, 11, 22), date(2023, 11, 24)]
    assert table["expected"].tolist() == [390, 210]
    assert table["complete"].all()


def test_missing_minutes_and_empty_sessions_are_counted() -> None:
    frame = pd.concat(
        [bars("NVDA", "2023-11-20", "2023-11-20"), bars("NVDA", "2023-11-24", "2023-11-24")]
    )
    frame = frame.iloc[5:]  # first five minutes of 2023-11-20 missing
    table = session_completeness(frame)
    assert table[["present", "missing"]].values.tolist() == [
        [385, 5],
        [0, 390],  # 2023-11-21
        [0, 390],  # 2023-11-22
        [210, 0],  # 2023-11-24 (2023-11-23 is Thanksgiving: no session)
    ]
    (summary,) = summarise_completeness(table)
    assert (summary.incomplete_sessions, summary.empty_sessions, summary.missing_bars) == (
        3,
        2,
        785,
    )
    assert summary.completeness == (385 + 210) / (390 * 3 + 210)


def test_bars_outside_regular_hours_are_not_counted_as_present() -> None:
    frame = bars("MSFT", "2023-11-22", "2023-11-22")
    extra = frame.iloc[:1].assign(ts=pd.Timestamp("2023-11-22 21:00", tz="UTC"))
    table = session_completeness(pd.concat([frame.iloc[1:], extra]))
    assert table[["present", "missing"]].values.tolist() == [[389, 1]]


def test_requested_symbol_without_bars_is_listed_when_the_range_is_given() -> None:
    table = session_completeness(
        bars("NVDA", "2023-11-22", "2023-11-22"),
        start=date(2023, 11, 22),
        end=date(2023, 11, 22),
        symbols=["MSFT", "NVDA"],
    )
    assert table[["symbol", "present"]].values.tolist() == [["MSFT", 0], ["NVDA", 390]]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=599), unique=True, max_size=60))
def test_present_plus_missing_equals_calendar_minutes(drop: list[int]) -> None:
    frame = bars("NVDA", "2023-11-22", "2023-11-24")
    kept = frame.drop(index=drop)
    if kept.empty:
        return
    table = session_completeness(kept, start=date(2023, 11, 22), end=date(2023, 11, 24))
    assert (table["present"] + table["missing"]).tolist() == [390, 210]
    assert int(table["missing"].sum()) == len(drop)


def test_store_overview_flags_synthetic_symbols_and_counts_gaps(tmp_path: Path) -> None:
    with BarStore(tmp_path / "s.duckdb") as store:
        store.write_bars(
            bars("NVDA", "2023-11-22", "2023-11-24", drop=slice(0, 10)),
            source="synthetic",
            synthetic=True,
        )
        store.write_bars(bars("MSFT", "2023-11-22", "2023-11-22"), source="csv", synthetic=False)
        overview = {o.info.symbol: o for o in store_overview(store)}
        table = store_completeness(store, symbols=["NVDA"], start=date(2023, 11, 21))
    nvda, msft = overview["NVDA"], overview["MSFT"]
    assert nvda.info.synthetic and not msft.info.synthetic
    assert nvda.completeness.missing_bars == 10
    assert nvda.first_local.strftime("%H:%M %Z") == "09:40 EST"
    assert (msft.info.rows, msft.completeness.missing_bars) == (390, 0)
    assert table[["session", "present"]].values.tolist() == [
        [date(2023, 11, 21), 0],
        [date(2023, 11, 22), 380],
        [date(2023, 11, 24), 210],
    ]
