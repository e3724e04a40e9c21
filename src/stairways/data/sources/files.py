"""Bar files: CSV (plain or compressed), Parquet and saved Polygon aggregates responses (JSON).

Layouts (auto-detected from the header; ambiguous files need ``--layout``):

- ``canonical``: our column names (case-insensitive): ``symbol`` (or ``ticker``), one of
  ``ts``/``timestamp``/``datetime`` with a timezone offset, ``open, high, low, close,
  volume`` and optional ``vwap, trade_count``;
- ``polygon``: Polygon aggregate fields ``t, o, h, l, c, v`` and optional ``vw, n``, with
  ``t`` in epoch milliseconds (UTC) and an optional ``symbol``/``ticker`` column;
- anything else through ``--map canonical=source`` (applied on top of either layout), with
  ``--symbol`` for single-symbol files without a symbol column.

A ``.json`` (or ``.json.gz``) file is one Polygon v2 aggregates response as the API returned
it (``{"status": "OK", "ticker": ..., "results": [{"t", "o", "h", "l", "c", "v", "vw", "n"},
...]}``); it is read by :func:`stairways.data.sources.polygon.read_aggs_file`, the same code that
reads live responses, and its rows are numbered by 1-based result.

Readers only rename and number rows; every check lives in :mod:`stairways.data.validation`.
CSV rows are numbered by physical line (the header is line 1); Parquet rows by 1-based data
row. CSV values may not span lines.
"""

from __future__ import annotations

import bz2
import csv
import glob
import gzip
import logging
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from stairways.data.sources.polygon import AGGS_SUFFIXES, read_aggs_file
from stairways.data.validation import (
    MALFORMED_ROW,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    ROW_COLUMN,
    RawBars,
    RowIssue,
    is_symbol,
)
from stairways.errors import DataValidationError, InputError

log = logging.getLogger(__name__)

CSV_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".csv.bz2")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
DATA_SUFFIXES: tuple[str, ...] = CSV_SUFFIXES + PARQUET_SUFFIXES + AGGS_SUFFIXES
CANONICAL_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


class Layout(StrEnum):
    """Column layout of a bar file."""

    AUTO = "auto"
    CANONICAL = "canonical"
    POLYGON = "polygon"


# Names each layout recognises for every canonical column.
_NAMES: dict[Layout, dict[str, tuple[str, ...]]] = {
    Layout.CANONICAL: {
        "symbol": ("symbol", "ticker"),
        "ts": ("ts", "timestamp", "datetime"),
        "open": ("open",),
        "high": ("high",),
        "low": ("low",),
        "close": ("close",),
        "volume": ("volume",),
        "vwap": ("vwap",),
        "trade_count": ("trade_count",),
    },
    Layout.POLYGON: {
        "symbol": ("symbol", "ticker"),
        "ts": ("t",),
        "open": ("o",),
        "high": ("h",),
        "low": ("l",),
        "close": ("c",),
        "volume": ("v",),
        "vwap": ("vw",),
        "trade_count": ("n",),
    },
}
# Canonical names match case-insensitively (Open, HIGH); Polygon's one-letter names do not,
# because other Polygon payloads use upper-case letters for other fields (T is the ticker).
_CASE_INSENSITIVE = {Layout.CANONICAL: True, Layout.POLYGON: False}


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """Parse ``--map canonical=source`` items; unknown canonical names are an InputError."""
    out: dict[str, str] = {}
    for item in items:
        target, sep, source = item.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise InputError(f"--map {item!r}: expected canonical=source, for example open=Open")
        if target not in CANONICAL_COLUMNS:
            raise InputError(
                f"--map {item!r}: {target!r} is not a canonical column; "
                f"use one of {', '.join(CANONICAL_COLUMNS)}"
            )
        if target in out:
            raise InputError(f"--map names {target!r} twice")
        out[target] = source
    return out


def data_file_kind(path: Path) -> str | None:
    """``csv``, ``parquet``, ``polygon_json`` or None, from the file name."""
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(AGGS_SUFFIXES):
        return "polygon_json"
    return None


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files named by paths, directories (searched recursively) and glob patterns, in order.

    A name that matches nothing, a directory without data files and a file with an unknown
    suffix are InputErrors; a file named twice is read once.
    """
    if not inputs:
        raise InputError("name at least one file, directory or glob pattern to import")
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and data_file_kind(p))
            if not files:
                raise InputError(
                    f"directory {path} holds no bar files ({', '.join(DATA_SUFFIXES)})"
                )
            found.extend(files)
        elif path.is_file():
            if data_file_kind(path) is None:
                raise InputError(
                    f"{path}: unknown file type; bar files end in {', '.join(DATA_SUFFIXES)}"
                )
            found.append(path)
        elif glob.has_magic(text):
            # glob.glob, not Path.glob: patterns may be absolute (/data/**/*.csv).
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))  # noqa: PTH207
            files = [m for m in matches if m.is_file() and data_file_kind(m)]
            if not files:
                raise InputError(f"pattern {text!r} matches no bar files")
            found.extend(files)
        else:
            raise InputError(f"{text}: no such file or directory")
    unique: list[Path] = []
    seen: set[Path] = set()
    for p in found:
        key = p.resolve()
        if key in seen:
            log.info("%s is named more than once; reading it once", p)
            continue
        seen.add(key)
        unique.append(p)
    return unique


def _match(
    columns: Sequence[str], layout: Layout, mapping: Mapping[str, str], origin: str
) -> tuple[dict[str, str], list[str]]:
    """Source column for each canonical column under ``layout``, and the required ones missing."""
    resolved: dict[str, str] = {}
    missing: list[str] = []
    taken = set(mapping.values())
    for canonical, names in _NAMES[layout].items():
        if canonical in mapping:
            resolved[canonical] = mapping[canonical]
            continue
        if _CASE_INSENSITIVE[layout]:
            hits = [c for c in columns if c.strip().lower() in names and c not in taken]
        else:
            hits = [c for c in columns if c.strip() in names and c not in taken]
        if len(hits) > 1:
            raise DataValidationError(
                f"{origin}: columns {', '.join(hits)} could each be {canonical}; "
                f"choose one with --map {canonical}=<column>"
            )
        if hits:
            resolved[canonical] = hits[0]
        elif canonical in REQUIRED_COLUMNS:
            missing.append(canonical)
    return resolved, missing


def resolve_columns(
    columns: Sequence[str],
    origin: str,
    *,
    layout: Layout = Layout.AUTO,
    mapping: Mapping[str, str] | None = None,
    symbol: str | None = None,
) -> tuple[Layout, dict[str, str]]:
    """Pick the layout of a file and the source column of each canonical column.

    :param columns: the file's column names
    :param origin: file name for messages
    :param layout: a layout, or AUTO to detect it
    :param mapping: ``--map`` entries (canonical name -> source column), applied first
    :param symbol: the ``--symbol`` given for a single-symbol file
    :return: the layout used and canonical -> source column names
    """
    mapping = dict(mapping or {})
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if list(columns).count(c) > 1})
        raise DataValidationError(f"{origin}: the header names {', '.join(dupes)} twice")
    for canonical, source in mapping.items():
        if source not in columns:
            raise InputError(
                f"--map {canonical}={source}: {origin} has no column {source!r} "
                f"(columns: {', '.join(columns)})"
            )
    candidates = [layout] if layout != Layout.AUTO else [Layout.CANONICAL, Layout.POLYGON]
    results: dict[Layout, tuple[dict[str, str], list[str]]] = {}
    for cand in candidates:
        resolved, missing = _match(columns, cand, mapping, origin)
        if symbol is not None:
            missing = [m for m in missing if m != "symbol"]
        results[cand] = (resolved, missing)
    fitting = [c for c in candidates if not results[c][1]]
    if len(fitting) > 1:
        raise DataValidationError(
            f"{origin}: the columns fit both the canonical and the Polygon layout; "
            "pass --layout canonical or --layout polygon"
        )
    if not fitting:
        best = min(candidates, key=lambda c: len(results[c][1]))
        missing = results[best][1]
        hint = "pass --symbol TICKER for a single-symbol file, or " if missing == ["symbol"] else ""
        raise DataValidationError(
            f"{origin}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(columns) or 'none'}; closest layout: {best.value}); "
            f"{hint}name the source columns with --map {missing[0]}=<column>"
        )
    chosen = fitting[0]
    resolved = results[chosen][0]
    if symbol is not None and "symbol" in resolved:
        raise InputError(
            f"{origin} has a symbol column ({resolved['symbol']}); --symbol is only for "
            "files without one"
        )
    return chosen, resolved


def _epoch_unit(layout: Layout, mapping: Mapping[str, str]) -> str | None:
    # Polygon's t is epoch milliseconds; a ts column named by --map is read as text.
    return "ms" if layout == Layout.POLYGON and "ts" not in mapping else None


def _check_symbol(symbol: str | None) -> None:
    if symbol is not None and not is_symbol(symbol):
        raise InputError(f"--symbol {symbol!r} is not an upper-case ticker such as NVDA")


def _open_text(path: Path) -> IO[str]:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    if name.endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def read_csv_header(path: Path) -> list[str]:
    """Column names from the first line of a CSV file."""
    try:
        with _open_text(path) as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise DataValidationError(f"{path}: cannot read the header line: {err}") from None
    if not first.strip():
        raise DataValidationError(f"{path}: the file is empty or its first line is blank")
    # Names are kept exactly as written: the CSV reader selects columns by these names.
    return next(csv.reader([first.rstrip("\r\n")]))


def _csv_table(
    path: Path, types: dict[str, pa.DataType], threads: bool
) -> tuple[pa.Table, list[Any]]:
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row)
        return "skip"

    table = pv.read_csv(
        path,
        read_options=pv.ReadOptions(use_threads=threads),
        parse_options=pv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=on_invalid),
        convert_options=pv.ConvertOptions(
            column_types=types, include_columns=list(types), strings_can_be_null=False
        ),
    )
    return table, invalid


def _read_csv_bars(
    path: Path, layout: Layout, mapping: dict[str, str], symbol: str | None
) -> RawBars:
    """Read one CSV bar file into :class:`RawBars` numbered by physical line."""
    origin = str(path)
    header = read_csv_header(path)
    chosen, resolved = resolve_columns(
        header, origin, layout=layout, mapping=mapping, symbol=symbol
    )
    unit = _epoch_unit(chosen, mapping)
    fast: dict[str, pa.DataType] = {}
    for canonical, source in resolved.items():
        if canonical == "symbol":
            fast[source] = pa.string()
        elif canonical == "ts":
            fast[source] = pa.int64() if unit else pa.string()
        else:
            fast[source] = pa.float64()
    try:
        table, invalid = _csv_table(path, fast, threads=True)
    except pa.ArrowInvalid as err:
        # Typed parsing failed on some value (text in a number column): read everything as
        # text so that validation can name each offending row and value.
        log.debug("%s: typed read failed (%s); reading values as text", origin, err)
        text_types = {c: pa.string() for c in fast}
        try:
            table, invalid = _csv_table(path, text_types, threads=True)
            fast = text_types
        except pa.ArrowInvalid as err2:
            raise DataValidationError(f"{origin}: cannot be read as CSV: {err2}") from None
    except OSError as err:
        raise DataValidationError(f"{origin}: cannot be read: {err}") from None
    if invalid and any(r.number is None for r in invalid):
        # Multi-threaded reads do not know line numbers; re-read the rare malformed file
        # single-threaded so that every message names its line.
        table, invalid = _csv_table(path, fast, threads=False)
    skipped = sorted(int(r.number) for r in invalid if r.number is not None)
    issues = tuple(
        RowIssue(
            origin,
            "line",
            int(r.number),
            MALFORMED_ROW,
            f"expected {r.expected_columns} fields, found {r.actual_columns}: {r.text[:80]!r}",
        )
        for r in invalid
        if r.number is not None
    )
    n = table.num_rows
    lines = np.arange(2, 2 + n + len(skipped), dtype=np.int64)
    if skipped:
        lines = lines[~np.isin(lines, np.asarray(skipped, dtype=np.int64))]
    frame = table.to_pandas()
    frame = frame.rename(columns={src: canonical for canonical, src in resolved.items()})
    blank = np.ones(n, dtype=bool)
    for canonical in resolved:
        values = frame[canonical]
        empty = values.isna().to_numpy(dtype=bool, copy=True)
        if not pd.api.types.is_numeric_dtype(values.dtype):
            empty |= values.astype("string").eq("").fillna(True).to_numpy(dtype=bool, copy=True)
        blank &= empty
    frame[ROW_COLUMN] = lines
    if blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
    if symbol is not None:
        frame["symbol"] = symbol
    log.debug("%s: %d rows read as %s layout", origin, len(frame), chosen.value)
    return RawBars(
        origin=origin,
        frame=frame,
        row_label="line",
        epoch_unit=unit,
        blank_rows=int(blank.sum()),
        reader_issues=issues,
    )


def _read_parquet_bars(
    path: Path, layout: Layout, mapping: dict[str, str], symbol: str | None
) -> RawBars:
    """Read one Parquet bar file into :class:`RawBars` numbered by 1-based data row."""
    origin = str(path)
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataValidationError(f"{origin}: cannot be read as Parquet: {err}") from None
    # pandas stores its index as an extra column; it is not data.
    columns = [c for c in schema.names if not c.startswith("__index_level_")]
    chosen, resolved = resolve_columns(
        columns, origin, layout=layout, mapping=mapping, symbol=symbol
    )
    try:
        table = pq.read_table(path, columns=list(resolved.values()))
    except (pa.ArrowInvalid, OSError) as err:
        raise DataValidationError(f"{origin}: cannot be read as Parquet: {err}") from None
    frame = table.to_pandas()
    frame = frame.rename(columns={src: canonical for canonical, src in resolved.items()})
    frame[ROW_COLUMN] = np.arange(1, len(frame) + 1, dtype=np.int64)
    if symbol is not None:
        frame["symbol"] = symbol
    return RawBars(
        origin=origin,
        frame=frame,
        row_label="data row",
        epoch_unit=_epoch_unit(chosen, mapping),
    )


def read_bar_file(
    path: Path,
    *,
    layout: Layout = Layout.AUTO,
    mapping: Mapping[str, str] | None = None,
    symbol: str | None = None,
) -> RawBars:
    """Read a CSV, Parquet or saved Polygon JSON file (chosen by suffix) into :class:`RawBars`."""
    kind = data_file_kind(path)
    if kind == "polygon_json":
        if mapping:
            raise InputError(
                f"--map applies to CSV and Parquet files; {path} is a Polygon aggregates "
                "response, whose fields are fixed"
            )
        if layout == Layout.CANONICAL:
            raise InputError(f"--layout canonical does not apply to {path}, a Polygon response")
        _check_symbol(symbol)
        return read_aggs_file(path, symbol)
    if kind == "csv":
        reader = _read_csv_bars
    elif kind == "parquet":
        reader = _read_parquet_bars
    else:
        raise InputError(f"{path}: unknown file type; bar files end in {', '.join(DATA_SUFFIXES)}")
    _check_symbol(symbol)
    return reader(path, layout, dict(mapping or {}), symbol)
