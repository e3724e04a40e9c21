"""Journal output for people and tools: tail lines, time bounds, and Parquet or CSV export."""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from stairways.errors import InputError
from stairways.journal.store import EXCHANGE_TZ, JournalReader, JournalRecord

__all__ = [
    "COLUMNS",
    "ExportFormat",
    "export_format",
    "export_records",
    "format_record",
    "parse_bound",
]

ExportFormat = Literal["parquet", "csv"]
COLUMNS = ("seq", "ts", "kind", "payload", "prev_mac", "mac")
_SUFFIXES: dict[str, ExportFormat] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_ROW_GROUP = 10_000


def format_record(record: JournalRecord) -> str:
    """One line for ``journal tail``: seq, exchange time, kind, payload."""
    stamp = record.ts.strftime("%Y-%m-%d %H:%M:%S.%f %Z")
    return f"{record.seq:>8}  {stamp}  {record.kind:<15}  {record.payload_json}"


def parse_bound(text: str, *, option: str, end: bool) -> datetime:
    """A time bound in exchange time: a date (the whole day) or an ISO date-time.

    A date as an end bound means the end of that day; a date-time without a zone is taken in
    exchange time (America/New_York).
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(0), EXCHANGE_TZ)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{option} must be a date (2025-03-03) or a date-time (2025-03-03T09:30), got {text!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=EXCHANGE_TZ)
    return parsed


def export_format(out: Path, requested: str | None) -> ExportFormat:
    """The export format from ``--format`` or the file's suffix; a disagreement is refused."""
    by_suffix = _SUFFIXES.get(out.suffix.lower())
    if requested is None:
        if by_suffix is None:
            raise InputError(
                f"cannot tell the export format of {out}: name it .parquet or .csv, or pass "
                "--format parquet|csv"
            )
        return by_suffix
    if requested not in ("parquet", "csv"):
        raise InputError(f"--format must be parquet or csv, got {requested!r}")
    fmt: ExportFormat = "parquet" if requested == "parquet" else "csv"
    if by_suffix is not None and by_suffix != fmt:
        raise InputError(f"--format {fmt} disagrees with the file name {out}")
    return fmt


def _batches(records: Iterable[JournalRecord], size: int) -> Iterator[list[JournalRecord]]:
    batch: list[JournalRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_parquet(records: Iterable[JournalRecord], tmp: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("seq", pa.int64()),
            ("ts", pa.timestamp("us", tz=str(EXCHANGE_TZ))),
            ("kind", pa.string()),
            ("payload", pa.string()),
            ("prev_mac", pa.string()),
            ("mac", pa.string()),
        ]
    )
    count = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for batch in _batches(records, _ROW_GROUP):
            columns: dict[str, list[Any]] = {
                "seq": [r.seq for r in batch],
                "ts": [r.ts for r in batch],
                "kind": [r.kind for r in batch],
                "payload": [r.payload_json for r in batch],
                "prev_mac": [r.prev_mac for r in batch],
                "mac": [r.mac for r in batch],
            }
            writer.write_table(pa.table(columns, schema=schema))
            count += len(batch)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


def _write_csv(records: Iterable[JournalRecord], tmp: Path) -> int:
    count = 0
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in records:
            writer.writerow([r.seq, r.ts.isoformat(), r.kind, r.payload_json, r.prev_mac, r.mac])
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    return count


def export_records(
    reader: JournalReader,
    out: Path,
    fmt: ExportFormat,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    kinds: Iterable[str] | None = None,
) -> int:
    """Write the records with ``start <= ts < end`` to ``out``; returns how many.

    The file appears whole or not at all (written beside it, then renamed).
    """
    if start is not None and end is not None and end <= start:
        raise InputError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    records = reader.records(start=start, end=end, kinds=list(kinds) if kinds else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        count = _write_parquet(records, tmp) if fmt == "parquet" else _write_csv(records, tmp)
        tmp.replace(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return count
