"""File imports: layouts, inputs, strict versus repair, idempotence and transactions."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

from stairways.data import calendar as cal
from stairways.data.importing import ImportMode, ImportOptions, import_files
from stairways.data.sources.files import Layout, expand_inputs, parse_mapping, read_bar_file
from stairways.data.store import BarStore
from stairways.data.validation import OHLC_INCONSISTENT, VOLUME_INVALID
from stairways.errors import DataValidationError, InputError, StoreError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CANONICAL = FIXTURES / "bars_canonical.csv"
POLYGON = FIXTURES / "bars_polygon_nvda.csv"


def _break_line(src: Path, dst: Path, line: int, old: str, new: str) -> Path:
    """Copy ``src`` to ``dst`` replacing ``old`` by ``new`` on physical line ``line``."""
    lines = src.read_text().splitlines()
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    dst.write_text("\n".join(lines) + "\n")
    return dst


def _negative_volume(src: Path, dst: Path, line: int) -> Path:
    lines = src.read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[6] = "-" + fields[6]
    lines[line - 1] = ",".join(fields)
    dst.write_text("\n".join(lines) + "\n")
    return dst


def _store_rows(path: Path) -> pd.DataFrame:
    with BarStore(path, read_only=True) as store:
        return store.read_bars()


def test_canonical_fixture_imports_both_symbols_and_both_sessions(tmp_path: Path) -> None:
    summary = import_files([CANONICAL], tmp_path / "s.duckdb")
    assert summary.written.rows_inserted == 1200
    assert [(g.symbol, g.sessions, g.missing_bars) for g in summary.gaps] == [
        ("MSFT", 2, 0),
        ("NVDA", 2, 0),
    ]
    bars = _store_rows(tmp_path / "s.duckdb")
    first = pd.read_csv(CANONICAL, nrows=1).iloc[0]
    stored = bars.loc[bars["symbol"] == "NVDA"].iloc[0]
    assert stored["close"] == first["close"] and stored["trade_count"] == first["trade_count"]


def test_polygon_layout_is_detected_and_needs_a_symbol(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) symbol.*--symbol"):
        import_files([POLYGON], tmp_path / "s.duckdb")
    assert not (tmp_path / "s.duckdb").exists()
    summary = import_files([POLYGON], tmp_path / "s.duckdb", ImportOptions(symbol="NVDA"))
    assert (summary.written.rows_inserted, summary.out_of_hours) == (390, 90)
    stored = _store_rows(tmp_path / "s.duckdb")
    raw = pd.read_csv(POLYGON)
    # t is epoch milliseconds: the first regular-hours bar is 09:30 New York.
    assert stored["ts"].iloc[0] == pd.Timestamp("2023-11-22 14:30", tz="UTC")
    assert stored["vwap"].iloc[0] == raw.loc[raw["t"] == 1700663400000, "vw"].iloc[0]


def test_file_fitting_both_layouts_is_ambiguous(tmp_path: Path) -> None:
    path = tmp_path / "both.csv"
    path.write_text(
        "symbol,ts,open,high,low,close,volume,t,o,h,l,c,v\n"
        "NVDA,2023-11-22T14:30:00Z,1,1,1,1,1,1700663400000,1,1,1,1,1\n"
    )
    with pytest.raises(DataValidationError, match="--layout canonical or --layout polygon"):
        read_bar_file(path)
    assert read_bar_file(path, layout=Layout.POLYGON).epoch_unit == "ms"


def test_generic_layout_with_map_symbol_and_tz(tmp_path: Path) -> None:
    path = tmp_path / "vendor.csv"
    minutes = cal.session_minutes("2023-11-22", "2023-11-22")[:3].tz_convert(cal.EXCHANGE_TZ)
    rows = [f"{t:%Y-%m-%d %H:%M},10,11,9,10.5,1000" for t in minutes]
    path.write_text("Date,Open,High,Low,Last,Vol\n" + "\n".join(rows) + "\n")
    options = ImportOptions(
        symbol="MSFT",
        tz="America/New_York",
        mapping=parse_mapping(["ts=Date", "close=Last", "volume=Vol"]),
    )
    summary = import_files([path], tmp_path / "s.duckdb", options)
    assert summary.written.rows_inserted == 3
    stored = _store_rows(tmp_path / "s.duckdb")
    assert stored["symbol"].tolist() == ["MSFT"] * 3
    assert stored["ts"].iloc[0] == pd.Timestamp("2023-11-22 14:30", tz="UTC")
    assert stored["close"].tolist() == [10.5] * 3


def test_map_naming_a_column_the_file_lacks_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has no column 'Last'"):
        read_bar_file(CANONICAL, mapping={"close": "Last"})
    with pytest.raises(InputError, match="not a canonical column"):
        parse_mapping(["price=Last"])


def test_symbol_option_on_a_file_with_symbols_is_refused() -> None:
    with pytest.raises(InputError, match="--symbol is only for files without one"):
        read_bar_file(CANONICAL, symbol="NVDA")


def test_directory_glob_and_gzip_inputs_are_expanded_once(tmp_path: Path) -> None:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    shutil.copy(CANONICAL, d / "a.csv")
    with gzip.open(d / "sub" / "b.csv.gz", "wb") as fh:
        fh.write(POLYGON.read_bytes())
    (d / "notes.txt").write_text("not data")
    assert expand_inputs([d]) == [d / "a.csv", d / "sub" / "b.csv.gz"]
    assert expand_inputs([str(d / "*.csv"), d / "a.csv"]) == [d / "a.csv"]
    assert len(read_bar_file(d / "sub" / "b.csv.gz", symbol="NVDA").frame) == 480
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([tmp_path / "missing.csv"])
    with pytest.raises(InputError, match="matches no bar files"):
        expand_inputs([str(tmp_path / "*.parquet")])
    with pytest.raises(InputError, match="unknown file type"):
        expand_inputs([d / "notes.txt"])


def test_parquet_with_timezone_imports_and_naive_parquet_needs_tz(tmp_path: Path) -> None:
    frame = pd.read_csv(CANONICAL)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame.to_parquet(tmp_path / "bars.parquet")
    summary = import_files([tmp_path / "bars.parquet"], tmp_path / "s.duckdb")
    assert summary.written.rows_inserted == 1200
    frame["ts"] = frame["ts"].dt.tz_convert(cal.EXCHANGE_TZ).dt.tz_localize(None)
    frame.to_parquet(tmp_path / "naive.parquet")
    with pytest.raises(DataValidationError, match="without a timezone"):
        import_files([tmp_path / "naive.parquet"], tmp_path / "s.duckdb")
    again = import_files(
        [tmp_path / "naive.parquet"], tmp_path / "s.duckdb", ImportOptions(tz="America/New_York")
    )
    assert (again.written.rows_inserted, again.written.rows_unchanged) == (0, 1200)


def test_parquet_issue_names_the_data_row(tmp_path: Path) -> None:
    frame = pd.read_csv(CANONICAL)
    frame.loc[9, "high"] = frame.loc[9, "low"] - 1.0
    frame.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(
        DataValidationError, match=r"bad\.parquet, data row 10: .*ohlc_inconsistent"
    ):
        import_files([tmp_path / "bad.parquet"], tmp_path / "s.duckdb")


def test_reimporting_the_same_file_inserts_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    first = import_files([CANONICAL], store)
    second = import_files([CANONICAL], store)
    assert (first.written.rows_inserted, second.written.rows_inserted) == (1200, 0)
    assert second.written.rows_unchanged == 1200
    assert len(_store_rows(store)) == 1200


def test_strict_mode_rejects_the_file_and_creates_no_store(tmp_path: Path) -> None:
    bad = _negative_volume(CANONICAL, tmp_path / "bad.csv", line=42)
    with pytest.raises(DataValidationError, match=r"bad\.csv, line 42: volume"):
        import_files([bad], tmp_path / "s.duckdb")
    assert not (tmp_path / "s.duckdb").exists()


def test_repair_drops_bad_rows_and_reports_every_one(tmp_path: Path) -> None:
    bad = _negative_volume(CANONICAL, tmp_path / "bad.csv", line=42)
    bad = _negative_volume(bad, tmp_path / "bad.csv", line=700)
    line = bad.read_text().splitlines()[99].split(",")
    bad = _break_line(bad, tmp_path / "bad.csv", 100, f",{line[3]},", f",{float(line[4]) - 1},")
    summary = import_files(
        [bad], tmp_path / "data" / "s.duckdb", ImportOptions(mode=ImportMode.REPAIR)
    )
    assert summary.rejected_rows == 3
    assert summary.written.rows_inserted == 1197
    assert summary.report_path is not None
    assert summary.report_path.parent == tmp_path / "data"
    with summary.report_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["rule"]) for r in rows] == [
        ("42", VOLUME_INVALID),
        ("100", OHLC_INCONSISTENT),
        ("700", VOLUME_INVALID),
    ]
    assert all(r["source"] == str(bad) and r["row_kind"] == "line" for r in rows)
    stored = _store_rows(tmp_path / "data" / "s.duckdb")
    assert len(stored) == 1197 and (stored["volume"] >= 0).all()


def test_two_file_import_with_bad_second_file_leaves_store_unchanged(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    import_files([POLYGON], store, ImportOptions(symbol="NVDA"))
    before = _store_rows(store)
    good = tmp_path / "good.csv"
    shutil.copy(CANONICAL, good)
    other = tmp_path / "other.csv"
    other.write_text(CANONICAL.read_text().replace("NVDA", "AMD").replace("MSFT", "INTC"))
    bad = _negative_volume(other, tmp_path / "z_bad.csv", line=900)
    with pytest.raises(DataValidationError, match=r"(?s)^1 row in 1 source.*z_bad\.csv, line 900"):
        import_files([good, bad], store)
    pd.testing.assert_frame_equal(_store_rows(store), before)


def test_failure_inside_the_store_write_leaves_store_and_no_report(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    frame = pd.read_csv(CANONICAL)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["trade_count"] = frame["trade_count"].astype("Int64")
    with BarStore(store) as s:
        s.write_bars(frame.loc[frame["symbol"] == "MSFT"], source="synthetic", synthetic=True)
    before = _store_rows(store)
    with pytest.raises(StoreError, match="refusing to mix"):
        import_files([CANONICAL], store, ImportOptions(mode=ImportMode.REPAIR))
    pd.testing.assert_frame_equal(_store_rows(store), before)
    assert list(tmp_path.glob("*import-report*")) == []


def test_changed_values_need_replace(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    import_files([CANONICAL], store)
    line = CANONICAL.read_text().splitlines()[1].split(",")
    changed = _break_line(CANONICAL, tmp_path / "changed.csv", 2, f",{line[6]},", ",1.0,")
    with pytest.raises(DataValidationError, match="--replace"):
        import_files([changed], store)
    result = import_files([changed], store, ImportOptions(replace=True))
    assert (result.written.rows_replaced, result.written.rows_inserted) == (1, 0)


def test_file_with_only_out_of_hours_bars_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "night.csv"
    path.write_text("symbol,ts,open,high,low,close,volume\nNVDA,2023-11-22T03:00:00Z,1,1,1,1,1\n")
    with pytest.raises(DataValidationError, match=r"no regular-hours bars.*1 bars outside"):
        import_files([path], tmp_path / "s.duckdb")
    assert not (tmp_path / "s.duckdb").exists()
