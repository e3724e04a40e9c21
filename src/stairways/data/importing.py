"""Import orchestration: read, validate, then write to the bar store in one transaction.

Files: every named file is read and validated first; only when all of them pass (strict
mode) or all their bad rows are known (repair mode) are the bars written, in ONE store
transaction. A multi-file import is therefore all or nothing: if the second of two files is
bad, the store is exactly as it was before.

Remote sources (Polygon): the date range is cut into windows (one month by default). Each
window is fetched, validated and written in its own transaction, so an interrupted import
keeps the windows it finished; a re-run skips windows whose sessions are already complete in
the store (every calendar minute present) and fetches the rest. In strict mode a window with
bad rows stops the import; windows written before it stay.

Repair mode drops exactly the rows that break a rule and writes a CSV report next to the
store listing every dropped row and why. Bars outside regular hours are dropped and counted
in both modes (they are not errors).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Self

import pandas as pd
from pydantic import Field, field_validator, model_validator

from stairways.configbase import Frozen
from stairways.data import calendar as cal
from stairways.data.quality import CompletenessSummary, session_completeness, summarise_completeness
from stairways.data.settings import JumpCheckConfig
from stairways.data.sources import BarSource
from stairways.data.sources.files import (
    CANONICAL_COLUMNS,
    Layout,
    expand_inputs,
    read_bar_file,
)
from stairways.data.store import BarStore, WriteResult
from stairways.data.validation import (
    RULES,
    RowIssue,
    SourceStats,
    check_timezone,
    describe_issues,
    is_symbol,
    merge_validated,
    validate_frame,
)
from stairways.errors import DataValidationError, InputError

log = logging.getLogger(__name__)


class ImportMode(StrEnum):
    """What to do with rows that break a validation rule."""

    STRICT = "strict"  # refuse the whole import
    REPAIR = "repair"  # drop those rows and write a report listing each one


class ImportOptions(Frozen):
    """How to read and validate the sources of one import."""

    mode: ImportMode = Field(default=ImportMode.STRICT, description="strict or repair")
    replace: bool = Field(default=False, description="Overwrite stored bars that differ")
    tz: str | None = Field(default=None, description="Zone of timestamps without an offset")
    layout: Layout = Field(default=Layout.AUTO, description="File column layout")
    mapping: dict[str, str] = Field(default_factory=dict, description="canonical -> source")
    symbol: str | None = Field(default=None, description="Symbol of single-symbol files")
    calendar: str = Field(default="XNYS", description="Exchange calendar")
    jumps: JumpCheckConfig = Field(
        default_factory=JumpCheckConfig, description="Per-bar jump check (data.jumps)"
    )

    @field_validator("tz")
    @classmethod
    def _known_tz(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_timezone(value)
            except InputError as err:
                raise ValueError(str(err)) from None
        return value

    @field_validator("symbol")
    @classmethod
    def _ticker(cls, value: str | None) -> str | None:
        if value is not None and not is_symbol(value):
            raise ValueError(f"{value!r} is not an upper-case ticker such as NVDA")
        return value

    @model_validator(mode="after")
    def _known_columns(self) -> Self:
        unknown = sorted(set(self.mapping) - set(CANONICAL_COLUMNS))
        if unknown:
            raise ValueError(
                f"mapping names unknown canonical column(s) {', '.join(unknown)}; "
                f"use {', '.join(CANONICAL_COLUMNS)}"
            )
        return self


@dataclass(frozen=True)
class ImportSummary:
    """What an import read, dropped and wrote."""

    store: Path
    sources: tuple[SourceStats, ...]
    issues: tuple[RowIssue, ...]
    written: WriteResult
    gaps: list[CompletenessSummary]
    report_path: Path | None = None
    skipped_windows: tuple[str, ...] = field(default=())

    @property
    def rejected_rows(self) -> int:
        """Rows dropped because they broke a rule (repair mode)."""
        return sum(s.rejected for s in self.sources)

    @property
    def out_of_hours(self) -> int:
        """Bars dropped because they lie outside regular trading hours."""
        return sum(s.out_of_hours for s in self.sources)


def default_report_path(store_path: Path, stamp: datetime) -> Path:
    """Where a repair report goes: next to the store, named after it and the import time."""
    base = f"{store_path.stem}-import-report-{stamp:%Y%m%dT%H%M%SZ}"
    candidate = store_path.parent / f"{base}.csv"
    n = 1
    while candidate.exists():
        candidate = store_path.parent / f"{base}-{n}.csv"
        n += 1
    return candidate


def write_issue_report(issues: Sequence[RowIssue], path: Path) -> Path:
    """Write every dropped row (source, row, rule, why) to a CSV file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", "row_kind", "row", "rule", "rule_text", "detail"])
        for i in issues:
            writer.writerow([i.origin, i.row_label, i.row, i.rule, RULES.get(i.rule, ""), i.detail])
    log.info("wrote a report of %d dropped rows to %s", len(issues), path)
    return path


def _add(a: WriteResult, b: WriteResult) -> WriteResult:
    return WriteResult(
        rows_in=a.rows_in + b.rows_in,
        rows_inserted=a.rows_inserted + b.rows_inserted,
        rows_replaced=a.rows_replaced + b.rows_replaced,
        rows_unchanged=a.rows_unchanged + b.rows_unchanged,
    )


_NOTHING = WriteResult(rows_in=0, rows_inserted=0, rows_replaced=0, rows_unchanged=0)


def import_files(
    inputs: Sequence[str | Path],
    store_path: Path,
    options: ImportOptions | None = None,
    *,
    report_path: Path | None = None,
) -> ImportSummary:
    """Import CSV/Parquet files into the store: validate all, then write once.

    :param inputs: files, directories and glob patterns
    :param store_path: the DuckDB bar store (created when missing)
    :param options: modes and layout options
    :param report_path: where repair mode writes its report (default: next to the store)
    :raises DataValidationError: strict mode with bad rows, or no regular-hours bars at all
    """
    opts = options or ImportOptions()
    paths = expand_inputs(inputs)
    parts = [
        validate_frame(
            read_bar_file(p, layout=opts.layout, mapping=opts.mapping, symbol=opts.symbol),
            tz=opts.tz,
            calendar=opts.calendar,
        )
        for p in paths
    ]
    report = merge_validated(parts, opts.calendar, opts.jumps)
    if opts.mode == ImportMode.STRICT:
        report.raise_if_invalid()
    if report.bars.empty:
        raise DataValidationError(
            f"no regular-hours bars to import from {len(paths)} file(s) "
            f"({report.out_of_hours} bars outside regular hours, {report.rejected_rows} rows "
            "rejected); nothing was written"
        )
    written_report: Path | None = None
    if opts.mode == ImportMode.REPAIR:
        # The report exists before the bars do, so dropped rows are never stored unreported.
        written_report = write_issue_report(
            report.issues, report_path or default_report_path(store_path, datetime.now(UTC))
        )
    source = f"file:{paths[0]}" if len(paths) == 1 else f"files:{len(paths)} files"
    details = {
        "files": [str(p) for p in paths],
        "mode": opts.mode.value,
        "rows_dropped": report.rejected_rows,
        "out_of_hours_dropped": report.out_of_hours,
        "tz": opts.tz,
    }
    try:
        with BarStore(store_path) as store:
            written = store.write_bars(
                report.bars, source=source, synthetic=False, details=details, replace=opts.replace
            )
    except BaseException:
        if written_report is not None:
            written_report.unlink(missing_ok=True)
        raise
    return ImportSummary(
        store=store_path,
        sources=report.sources,
        issues=report.issues,
        written=written,
        gaps=report.gaps(),
        report_path=written_report,
    )


def month_windows(start: date, end: date, months: int = 1) -> list[tuple[date, date]]:
    """Cut ``start``..``end`` into windows of ``months`` calendar months (the last is partial)."""
    if start > end:
        raise InputError(f"--from {start} is after --to {end}")
    if months < 1:
        raise InputError(f"window length must be at least one month, got {months}")
    out: list[tuple[date, date]] = []
    lo = start
    while lo <= end:
        first = pd.Timestamp(lo.year, lo.month, 1)
        hi = (first + pd.DateOffset(months=months) - pd.Timedelta(days=1)).date()
        out.append((lo, min(hi, end)))
        lo = (first + pd.DateOffset(months=months)).date()
    return out


def window_complete(store: BarStore, symbol: str, start: date, end: date, calendar: str) -> bool:
    """Whether every session of ``start``..``end`` has all its calendar minutes stored."""
    table = session_completeness(
        store.read_bars([symbol], start, end), calendar, start, end, [symbol]
    )
    return bool(len(table)) and bool(table["complete"].all())


def import_from_source(
    source: BarSource,
    symbols: Sequence[str],
    start: date,
    end: date,
    store_path: Path,
    options: ImportOptions | None = None,
    *,
    months_per_window: int = 1,
    skip_complete: bool = True,
    report_path: Path | None = None,
) -> ImportSummary:
    """Import ``symbols`` from a remote source window by window, resuming where it stopped.

    :param source: where bars come from (for example :class:`PolygonAggregates`)
    :param symbols: tickers to import
    :param start: first session date
    :param end: last session date
    :param store_path: the DuckDB bar store (created when missing)
    :param options: mode, replace and calendar (file layout options are ignored)
    :param months_per_window: calendar months fetched and written per transaction
    :param skip_complete: skip windows whose sessions are complete in the store
    :param report_path: where repair mode writes its report (default: next to the store)
    """
    opts = options or ImportOptions()
    if not symbols:
        raise InputError("name at least one symbol to import")
    bad = [s for s in symbols if not is_symbol(s)]
    if bad:
        raise InputError(f"not upper-case tickers: {', '.join(bad)}")
    windows = month_windows(start, end, months_per_window)
    stats: list[SourceStats] = []
    issues: list[RowIssue] = []
    skipped: list[str] = []
    written = _NOTHING
    kept: list[pd.DataFrame] = []
    written_report: Path | None = None
    with BarStore(store_path) as store:
        try:
            for symbol in symbols:
                for lo, hi in windows:
                    label = f"{symbol} {lo}..{hi}"
                    if len(cal.sessions(lo, hi, opts.calendar)) == 0:
                        log.info("%s holds no sessions; nothing to fetch", label)
                        continue
                    if skip_complete and window_complete(store, symbol, lo, hi, opts.calendar):
                        log.info("%s is complete in %s; skipped", label, store_path)
                        skipped.append(label)
                        continue
                    part = validate_frame(
                        source.fetch(symbol, lo, hi), tz=None, calendar=opts.calendar
                    )
                    report = merge_validated([part], opts.calendar, opts.jumps)
                    if opts.mode == ImportMode.STRICT and report.issues:
                        done = len(kept)
                        raise DataValidationError(
                            f"window {label}: "
                            + describe_issues(report.issues, report.rejected_rows)
                            + (
                                f"\n{done} earlier window(s) were written and are kept; a "
                                "re-run skips the complete ones."
                                if done
                                else ""
                            )
                        )
                    stats.extend(report.sources)
                    issues.extend(report.issues)
                    if report.bars.empty:
                        log.warning("%s: no regular-hours bars returned", label)
                        continue
                    result = store.write_bars(
                        report.bars,
                        source=source.name,
                        synthetic=False,
                        details={**source.describe(), "window": label, "mode": opts.mode.value},
                        replace=opts.replace,
                    )
                    written = _add(written, result)
                    kept.append(report.bars.loc[:, ["symbol", "ts"]])
            stored = store.read_bars(list(symbols), start, end)
            gaps = summarise_completeness(
                session_completeness(stored, opts.calendar, start, end, list(symbols))
            )
        finally:
            # Windows already written stay written; their dropped rows must be reported even
            # when a later window fails.
            if opts.mode == ImportMode.REPAIR and stats:
                written_report = write_issue_report(
                    issues, report_path or default_report_path(store_path, datetime.now(UTC))
                )
    return ImportSummary(
        store=store_path,
        sources=tuple(stats),
        issues=tuple(issues),
        written=written,
        gaps=gaps,
        report_path=written_report,
        skipped_windows=tuple(skipped),
    )
