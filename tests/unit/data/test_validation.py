"""Validation rules, each proven with a small bad file, plus property tests of the arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.data import calendar as cal
from stairways.data.sources.files import read_bar_file
from stairways.data.validation import (
    DUPLICATE_BAR,
    MALFORMED_ROW,
    OHLC_INCONSISTENT,
    PRICE_INVALID,
    ROW_COLUMN,
    SYMBOL_INVALID,
    TIMESTAMP_LOCAL_AMBIGUOUS,
    TIMESTAMP_MISSING,
    TIMESTAMP_NOT_ON_MINUTE,
    TIMESTAMP_UNPARSEABLE,
    TRADE_COUNT_INVALID,
    VOLUME_INVALID,
    VWAP_INVALID,
    RawBars,
    ValidationReport,
    merge_validated,
    validate_frame,
    validate_one,
)
from stairways.errors import DataValidationError

HEADER = "symbol,ts,open,high,low,close,volume,vwap,trade_count"


def good_lines(day: str = "2023-11-22", n: int = 6, symbol: str = "NVDA") -> list[str]:
    """``n`` valid regular-hours CSV rows (no header) starting at the session open."""
    minutes = cal.session_minutes(day, day)[:n]
    return [
        f"{symbol},{ts.strftime('%Y-%m-%dT%H:%M:%SZ')},10.0,10.5,9.5,10.2,100,10.1,7"
        for ts in minutes
    ]


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def validate_file(path: Path, tz: str | None = None) -> ValidationReport:
    return validate_one(read_bar_file(path), tz=tz)


def only_issue(report: ValidationReport) -> tuple[int, str, str]:
    assert len(report.issues) == 1, [i.describe() for i in report.issues]
    issue = report.issues[0]
    return issue.row, issue.rule, issue.describe()


def test_good_file_keeps_every_row_and_reports_no_issue(tmp_path: Path) -> None:
    report = validate_file(write_csv(tmp_path / "ok.csv", good_lines()))
    assert report.issues == ()
    assert len(report.bars) == 6
    assert report.bars["ts"].iloc[0] == pd.Timestamp("2023-11-22 14:30", tz="UTC")
    assert report.bars["trade_count"].dtype == "Int64"


def test_missing_column_fails_the_whole_file_naming_file_and_column(tmp_path: Path) -> None:
    lines = [",".join(line.split(",")[:5] + line.split(",")[6:]) for line in good_lines()]
    path = write_csv(tmp_path / "noclose.csv", lines, "symbol,ts,open,high,low,volume,vwap,n")
    with pytest.raises(
        DataValidationError, match=r"noclose\.csv: missing required column\(s\) close"
    ):
        validate_file(path)


def test_unparseable_timestamp_names_line_and_rule(tmp_path: Path) -> None:
    lines = good_lines()
    lines[1] = lines[1].replace("2023-11-22T14:31:00Z", "22/11/2023 9:31")
    row, rule, text = only_issue(validate_file(write_csv(tmp_path / "badts.csv", lines)))
    assert (row, rule) == (3, TIMESTAMP_UNPARSEABLE)
    assert "badts.csv, line 3" in text and "'22/11/2023 9:31'" in text


def test_empty_timestamp_is_reported_as_missing(tmp_path: Path) -> None:
    lines = good_lines()
    lines[2] = lines[2].replace("2023-11-22T14:32:00Z", "")
    assert only_issue(validate_file(write_csv(tmp_path / "e.csv", lines)))[:2] == (
        4,
        TIMESTAMP_MISSING,
    )


def test_naive_timestamps_without_tz_reject_the_file(tmp_path: Path) -> None:
    lines = [line.replace("T14:3", " 09:3").replace(":00Z", ":00") for line in good_lines()]
    path = write_csv(tmp_path / "naive.csv", lines)
    with pytest.raises(DataValidationError, match=r"naive\.csv: timestamps have no timezone.*--tz"):
        validate_file(path)


def test_naive_timestamps_with_tz_are_localised_to_that_zone(tmp_path: Path) -> None:
    lines = [line.replace("T14:3", " 09:3").replace(":00Z", ":00") for line in good_lines()]
    report = validate_file(write_csv(tmp_path / "naive.csv", lines), tz="America/New_York")
    assert report.issues == ()
    assert report.bars["ts"].iloc[0] == pd.Timestamp("2023-11-22 14:30", tz="UTC")


def test_offsets_other_than_utc_give_the_same_instant(tmp_path: Path) -> None:
    lines = good_lines(n=1)
    lines[0] = lines[0].replace("2023-11-22T14:30:00Z", "2023-11-22T09:30:00-05:00")
    report = validate_file(write_csv(tmp_path / "off.csv", lines))
    assert report.bars["ts"].iloc[0] == pd.Timestamp("2023-11-22 14:30", tz="UTC")


def test_nonexistent_local_time_at_dst_change_is_rejected_not_guessed() -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["NVDA"],
            "ts": ["2023-03-12 02:30:00"],  # skipped by the spring-forward change
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [1.0],
            ROW_COLUMN: [2],
        }
    )
    report = validate_one(RawBars("dst.csv", frame, "line"), tz="America/New_York")
    assert only_issue(report)[:2] == (2, TIMESTAMP_LOCAL_AMBIGUOUS)


@pytest.mark.parametrize("price", ["0", "-1.5"])
def test_non_positive_price_is_rejected_with_its_value(tmp_path: Path, price: str) -> None:
    lines = good_lines()
    fields = lines[3].split(",")
    fields[4] = price  # low
    lines[3] = ",".join(fields)
    row, rule, text = only_issue(validate_file(write_csv(tmp_path / "p.csv", lines)))
    assert (row, rule) == (5, PRICE_INVALID)
    assert f"low={float(price)!r}" in text


@pytest.mark.parametrize("value", ["nan", "", "inf", "abc"])
def test_nan_missing_infinite_or_text_price_is_rejected(tmp_path: Path, value: str) -> None:
    lines = good_lines()
    fields = lines[0].split(",")
    fields[5] = value  # close
    lines[0] = ",".join(fields)
    row, rule, text = only_issue(validate_file(write_csv(tmp_path / "nan.csv", lines)))
    assert (row, rule) == (2, PRICE_INVALID)
    assert "close" in text


def test_text_in_price_column_names_the_value_and_line(tmp_path: Path) -> None:
    lines = good_lines(n=6)
    lines[4] = lines[4].replace(",10.2,", ",ten,")
    row, rule, text = only_issue(validate_file(write_csv(tmp_path / "t.csv", lines)))
    assert (row, rule) == (6, PRICE_INVALID)
    assert "close='ten'" in text


def test_high_below_close_breaks_the_ohlc_rule(tmp_path: Path) -> None:
    lines = good_lines()
    lines[2] = lines[2].replace(",10.0,10.5,9.5,10.2,", ",10.0,10.1,9.5,10.2,")
    row, rule, text = only_issue(validate_file(write_csv(tmp_path / "ohlc.csv", lines)))
    assert (row, rule) == (4, OHLC_INCONSISTENT)
    assert "high=10.1" in text


def test_low_above_open_breaks_the_ohlc_rule(tmp_path: Path) -> None:
    lines = good_lines()
    lines[1] = lines[1].replace(",10.0,10.5,9.5,10.2,", ",10.0,10.5,10.05,10.2,")
    assert only_issue(validate_file(write_csv(tmp_path / "ohlc.csv", lines)))[:2] == (
        3,
        OHLC_INCONSISTENT,
    )


@pytest.mark.parametrize("volume", ["-1", "inf", ""])
def test_negative_or_missing_volume_is_rejected(tmp_path: Path, volume: str) -> None:
    lines = good_lines()
    fields = lines[5].split(",")
    fields[6] = volume
    lines[5] = ",".join(fields)
    assert only_issue(validate_file(write_csv(tmp_path / "v.csv", lines)))[:2] == (
        7,
        VOLUME_INVALID,
    )


def test_zero_volume_is_allowed(tmp_path: Path) -> None:
    lines = [line.replace(",100,", ",0,") for line in good_lines()]
    assert validate_file(write_csv(tmp_path / "z.csv", lines)).issues == ()


def test_optional_vwap_and_trade_count_may_be_empty_but_not_wrong(tmp_path: Path) -> None:
    lines = good_lines()
    lines[0] = lines[0].rsplit(",", 2)[0] + ",,"
    lines[1] = lines[1].rsplit(",", 2)[0] + ",-3,7"
    lines[2] = lines[2].rsplit(",", 2)[0] + ",10.1,2.5"
    report = validate_file(write_csv(tmp_path / "opt.csv", lines))
    assert [(i.row, i.rule) for i in report.issues] == [
        (3, VWAP_INVALID),
        (4, TRADE_COUNT_INVALID),
    ]
    first = report.bars.iloc[0]
    assert np.isnan(first["vwap"]) and first["trade_count"] is pd.NA


def test_lower_case_symbol_is_rejected_not_upper_cased(tmp_path: Path) -> None:
    lines = good_lines()
    lines[0] = lines[0].replace("NVDA", "nvda")
    assert only_issue(validate_file(write_csv(tmp_path / "s.csv", lines)))[:2] == (
        2,
        SYMBOL_INVALID,
    )


def test_bar_not_on_a_whole_minute_is_rejected(tmp_path: Path) -> None:
    lines = good_lines()
    lines[1] = lines[1].replace("14:31:00Z", "14:31:30Z")
    assert only_issue(validate_file(write_csv(tmp_path / "m.csv", lines)))[:2] == (
        3,
        TIMESTAMP_NOT_ON_MINUTE,
    )


def test_duplicate_symbol_ts_rejects_every_copy_and_names_the_other(tmp_path: Path) -> None:
    lines = good_lines()
    lines.append(lines[1].replace(",10.2,", ",10.3,"))
    report = validate_file(write_csv(tmp_path / "dup.csv", lines))
    assert [(i.row, i.rule) for i in report.issues] == [(3, DUPLICATE_BAR), (8, DUPLICATE_BAR)]
    assert "appears again at" in report.issues[0].detail and "line 8" in report.issues[0].detail
    assert len(report.bars) == 5


def test_duplicates_across_two_files_are_found(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "a.csv", good_lines(n=3))
    b = write_csv(tmp_path / "b.csv", good_lines(n=3)[2:])
    report = merge_validated([validate_frame(read_bar_file(a)), validate_frame(read_bar_file(b))])
    assert [(i.origin, i.row) for i in report.issues] == [(str(a), 4), (str(b), 2)]
    assert [s.rejected for s in report.sources] == [1, 1]


def test_bars_outside_regular_hours_are_dropped_and_counted_not_rejected(tmp_path: Path) -> None:
    lines = good_lines(n=3)
    lines.insert(0, "NVDA,2023-11-22T14:29:00Z,10.0,10.5,9.5,10.2,100,10.1,7")  # 09:29 ET
    lines.append("NVDA,2023-11-22T21:00:00Z,10.0,10.5,9.5,10.2,100,10.1,7")  # 16:00 ET
    lines.append("NVDA,2023-11-23T15:00:00Z,10.0,10.5,9.5,10.2,100,10.1,7")  # Thanksgiving
    lines.append("NVDA,2023-11-23T15:01:00Z,-1,10.5,9.5,10.2,100,10.1,7")  # bad but closed
    report = validate_file(write_csv(tmp_path / "hours.csv", lines))
    assert report.issues == ()
    assert report.out_of_hours == 4
    assert report.sources[0].kept == 3


def test_half_day_gap_count_uses_210_calendar_minutes(tmp_path: Path) -> None:
    lines = good_lines(day="2023-11-24", n=390)  # first 210 fit the half day
    assert len(lines) == 210
    full = validate_file(write_csv(tmp_path / "full.csv", lines))
    assert full.completeness[["expected", "present", "missing"]].iloc[0].tolist() == [210, 210, 0]
    del lines[100:110]
    gappy = validate_file(write_csv(tmp_path / "gappy.csv", lines))
    (gap,) = gappy.gaps()
    assert (gap.sessions, gap.incomplete_sessions, gap.missing_bars) == (1, 1, 10)


def test_full_day_file_on_half_day_keeps_210_and_drops_the_afternoon(tmp_path: Path) -> None:
    ts = pd.date_range("2023-11-24 14:30", periods=390, freq="min", tz="UTC")
    lines = [f"NVDA,{t.strftime('%Y-%m-%dT%H:%M:%SZ')},10,10.5,9.5,10.2,100,10.1,7" for t in ts]
    report = validate_file(write_csv(tmp_path / "half.csv", lines))
    assert (report.sources[0].kept, report.out_of_hours) == (210, 180)
    assert report.gaps()[0].missing_bars == 0


def test_malformed_row_and_blank_line_keep_line_numbers_exact(tmp_path: Path) -> None:
    lines = good_lines()
    lines.insert(2, "")  # line 4 blank
    lines[4] = "NVDA,2023-11-22T14:33:00Z,10.0,10.5"  # line 6 has too few fields
    lines[5] = lines[5].replace(",10.5,", ",9.0,")  # line 7 breaks OHLC
    path = write_csv(tmp_path / "mal.csv", lines)
    raw = read_bar_file(path)
    assert raw.blank_rows == 1
    report = validate_one(raw)
    assert [(i.row, i.rule) for i in report.issues] == [(6, MALFORMED_ROW), (7, OHLC_INCONSISTENT)]
    # 7 lines after the header: 1 blank, 6 rows of which 2 are bad.
    assert (report.sources[0].rows_read, report.sources[0].kept) == (6, 4)


def test_strict_message_lists_file_line_and_rule_and_suggests_repair(tmp_path: Path) -> None:
    lines = good_lines()
    lines[0] = lines[0].replace(",100,", ",-5,")
    report = validate_file(write_csv(tmp_path / "strict.csv", lines))
    with pytest.raises(DataValidationError) as err:
        report.raise_if_invalid()
    text = str(err.value)
    assert "strict.csv, line 2" in text and VOLUME_INVALID in text and "--repair" in text


def _one_bar(o: float, h: float, low: float, c: float) -> RawBars:
    frame = pd.DataFrame(
        {
            "symbol": ["NVDA"],
            "ts": ["2023-11-22T14:30:00Z"],
            "open": [o],
            "high": [h],
            "low": [low],
            "close": [c],
            "volume": [1.0],
            ROW_COLUMN: [1],
        }
    )
    return RawBars("mem", frame)


prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(prices, prices, prices, prices)
def test_ohlc_rule_accepts_exactly_the_consistent_bars(
    o: float, h: float, low: float, c: float
) -> None:
    report = validate_one(_one_bar(o, h, low, c))
    consistent = h >= max(o, c) and min(o, c) >= low
    assert (report.issues == ()) == consistent
    if not consistent:
        assert report.issues[0].rule == OHLC_INCONSISTENT


@settings(max_examples=30, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=389), max_size=390))
def test_missing_minutes_equal_calendar_minutes_minus_bars_present(dropped: set[int]) -> None:
    minutes = cal.session_minutes("2023-11-22", "2023-11-22")
    keep = [t for k, t in enumerate(minutes) if k not in dropped]
    if not keep:
        return
    frame = pd.DataFrame(
        {
            "symbol": "MSFT",
            "ts": pd.DatetimeIndex(keep),
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
            "volume": 1.0,
            ROW_COLUMN: np.arange(1, len(keep) + 1),
        }
    )
    (gap,) = validate_one(RawBars("mem", frame)).gaps()
    assert gap.missing_bars == len(dropped)
    assert gap.incomplete_sessions == (1 if dropped else 0)
