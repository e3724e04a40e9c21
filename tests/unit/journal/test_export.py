"""Export to Parquet and CSV, time bounds in exchange time, and tail lines."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stairways.errors import InputError
from stairways.journal import EXCHANGE_TZ, JournalLocation, JournalReader
from stairways.journal.export import (
    COLUMNS,
    export_format,
    export_records,
    format_record,
    parse_bound,
)
from tests.unit.journal.helpers import T0, make_journal


@pytest.fixture
def reader(tmp_path: Path) -> JournalReader:
    path = make_journal(tmp_path / "j.sqlite", 20)
    return JournalReader.open(JournalLocation.sqlite(path))


def test_parquet_export_of_a_window_keeps_seq_exchange_time_and_payload(
    reader: JournalReader, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "events.parquet"
    start, end = T0 + timedelta(seconds=5), T0 + timedelta(seconds=9)
    count = export_records(reader, out, "parquet", start=start, end=end)
    table = pq.read_table(out)
    assert count == 4 == table.num_rows
    assert tuple(table.column_names) == COLUMNS
    assert table.column("seq").to_pylist() == [6, 7, 8, 9]
    assert table.schema.field("ts").type.tz == "America/New_York"
    first_ts = table.column("ts").to_pylist()[0]
    assert first_ts == start
    records = list(reader.records(after_seq=5))[:4]
    assert table.column("payload").to_pylist() == [r.payload_json for r in records]
    assert table.column("mac").to_pylist() == [r.mac for r in records]


def test_csv_export_filters_kinds_and_writes_iso_times(
    reader: JournalReader, tmp_path: Path
) -> None:
    out = tmp_path / "fills.csv"
    count = export_records(reader, out, "csv", kinds=["fill"])
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert count == len(rows) == 6
    assert [int(r["seq"]) for r in rows] == [3, 6, 9, 12, 15, 18]
    assert rows[0]["ts"] == "2025-03-03T09:30:02-05:00"
    assert {r["kind"] for r in rows} == {"fill"}


def test_empty_window_writes_an_empty_file_with_the_columns(
    reader: JournalReader, tmp_path: Path
) -> None:
    out = tmp_path / "none.parquet"
    later = T0 + timedelta(days=3)
    assert export_records(reader, out, "parquet", start=later) == 0
    assert tuple(pq.read_table(out).column_names) == COLUMNS


def test_reversed_window_is_refused_and_writes_nothing(
    reader: JournalReader, tmp_path: Path
) -> None:
    out = tmp_path / "x.csv"
    with pytest.raises(InputError, match="must be after"):
        export_records(reader, out, "csv", start=T0, end=T0)
    assert list(tmp_path.glob("*x.csv*")) == []


def test_bounds_are_whole_days_or_instants_in_exchange_time() -> None:
    assert parse_bound("2025-03-03", option="--from", end=False) == datetime(
        2025, 3, 3, tzinfo=EXCHANGE_TZ
    )
    assert parse_bound("2025-03-03", option="--to", end=True) == datetime(
        2025, 3, 4, tzinfo=EXCHANGE_TZ
    )
    assert parse_bound("2025-03-03T09:31", option="--from", end=False) == T0 + timedelta(minutes=1)
    assert parse_bound("2025-03-03T14:30:00+00:00", option="--from", end=False) == T0
    with pytest.raises(InputError, match="--to must be a date"):
        parse_bound("yesterday", option="--to", end=True)


def test_format_comes_from_the_flag_or_the_suffix_and_they_must_agree() -> None:
    assert export_format(Path("a.parquet"), None) == "parquet"
    assert export_format(Path("a.CSV"), None) == "csv"
    assert export_format(Path("a.out"), "csv") == "csv"
    with pytest.raises(InputError, match="cannot tell the export format"):
        export_format(Path("a.out"), None)
    with pytest.raises(InputError, match="disagrees"):
        export_format(Path("a.csv"), "parquet")
    with pytest.raises(InputError, match="parquet or csv"):
        export_format(Path("a.csv"), "xlsx")


def test_tail_line_shows_seq_exchange_time_kind_and_payload(reader: JournalReader) -> None:
    record = reader.tail(1)[0]
    line = format_record(record)
    assert line.split()[:4] == ["20", "2025-03-03", "09:30:19.000000", "EST"]
    assert "intent" in line
    assert line.endswith(record.payload_json)
