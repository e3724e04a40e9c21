"""Validation of imported bars: pure functions from a raw frame (plus its origin) to checked bars.

Every importer hands over a :class:`RawBars`: the source's rows with columns already renamed to
the canonical names, values still as read (text, numbers or typed timestamps) and the row
numbers as the user sees them in the source. :func:`validate_frame` checks one source and
:func:`merge_validated` checks several together (duplicates across files) and counts gaps.

Problems come in two kinds:

- a whole source is unusable (a required column is missing, timestamps carry no timezone and
  none was given, integer timestamps without a known unit): :class:`DataValidationError` at
  once, whatever the mode, because dropping rows cannot fix it;
- single rows break a rule (:data:`RULES`, including the per-bar jump check of
  :mod:`stairways.data.jumps`, which judges each bar against its neighbours): each becomes a
  :class:`RowIssue` naming the source, the row and the rule. The caller decides: strict
  imports refuse everything (:meth:`ValidationReport.raise_if_invalid`), repair imports drop
  exactly those rows and write every issue to a report.

Bars outside regular trading hours are not an error: they are dropped and counted. The rules
on values apply to the bars that are kept, so a vendor's odd pre-market print does not fail a
file. Nothing is ever changed silently: a row is either kept as it was, or reported.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from stairways.data import calendar as cal
from stairways.data.jumps import JUMP_RULES, describe_jump, find_price_jumps
from stairways.data.quality import CompletenessSummary, session_completeness, summarise_completeness
from stairways.data.schema import BAR_COLUMNS, PRICE_COLUMNS, conform
from stairways.data.settings import JumpCheckConfig
from stairways.errors import DataValidationError, InputError

log = logging.getLogger(__name__)

ROW_COLUMN = "_row"
"""Column of a raw frame holding each row's number as the user sees it in the source."""

REQUIRED_COLUMNS: tuple[str, ...] = ("symbol", "ts", "open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS: tuple[str, ...] = ("vwap", "trade_count")
EPOCH_UNITS: tuple[str, ...] = ("s", "ms", "us", "ns")

# The window the exchange calendar covers (see stairways.data.calendar); bars outside it
# cannot be placed in a session, so they are rejected instead of guessed about.
TS_MIN = pd.Timestamp("2000-01-03", tz=cal.EXCHANGE_TZ).tz_convert("UTC")
TS_MAX = pd.Timestamp("2031-01-01", tz=cal.EXCHANGE_TZ).tz_convert("UTC")

TIMESTAMP_MISSING = "timestamp_missing"
TIMESTAMP_UNPARSEABLE = "timestamp_unparseable"
TIMESTAMP_LOCAL_AMBIGUOUS = "timestamp_local_time_ambiguous_or_nonexistent"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
TIMESTAMP_NOT_ON_MINUTE = "timestamp_not_on_minute"
SYMBOL_INVALID = "symbol_invalid"
PRICE_INVALID = "price_not_positive_finite"
OHLC_INCONSISTENT = "ohlc_inconsistent"
VOLUME_INVALID = "volume_negative_or_not_finite"
VWAP_INVALID = "vwap_not_positive_finite"
TRADE_COUNT_INVALID = "trade_count_not_a_non_negative_integer"
DUPLICATE_BAR = "duplicate_symbol_ts"
MALFORMED_ROW = "malformed_row"

RULES: dict[str, str] = {
    TIMESTAMP_MISSING: "the timestamp is empty",
    TIMESTAMP_UNPARSEABLE: "the timestamp is not an ISO 8601 date-time (or epoch number)",
    TIMESTAMP_LOCAL_AMBIGUOUS: "a local time that is ambiguous or skipped at a DST change",
    TIMESTAMP_OUT_OF_RANGE: "the timestamp lies outside 2000-01-03..2030-12-31",
    TIMESTAMP_NOT_ON_MINUTE: "1-minute bars start on a whole minute",
    SYMBOL_INVALID: "the symbol is empty or not an upper-case ticker",
    PRICE_INVALID: "open, high, low and close must be finite and above zero",
    OHLC_INCONSISTENT: "high >= max(open, close) >= min(open, close) >= low",
    VOLUME_INVALID: "volume must be finite and not negative",
    VWAP_INVALID: "vwap, when given, must be finite and above zero",
    TRADE_COUNT_INVALID: "trade_count, when given, must be a whole number not below zero",
    DUPLICATE_BAR: "each (symbol, ts) appears once",
    MALFORMED_ROW: "the row could not be parsed (wrong number of fields)",
    **JUMP_RULES,
}

_SYMBOL_RE = r"[A-Z0-9][A-Z0-9.\-/]{0,14}"
_OFFSET_RE = r"(?:[Zz]|[+-]\d{2}:?\d{2})$"
_NS_PER_MINUTE = 60_000_000_000
_MAX_LISTED = 20


@dataclass(frozen=True)
class RowIssue:
    """One row that breaks one rule.

    :param origin: the file (or request) the row came from
    :param row_label: what ``row`` counts: ``line`` (physical line, header is line 1),
        ``data row`` (1-based, header excluded) or ``result`` (1-based position in a response)
    :param row: the row number, as the user sees it in the source
    :param rule: rule identifier (a key of :data:`RULES`)
    :param detail: the offending values in words
    """

    origin: str
    row_label: str
    row: int
    rule: str
    detail: str

    def describe(self) -> str:
        """One line naming the source, row, problem and rule."""
        return f"{self.origin}, {self.row_label} {self.row}: {self.detail} [rule {self.rule}]"


@dataclass(frozen=True)
class RawBars:
    """Rows of one source, renamed to canonical columns but not yet checked or converted.

    :param origin: the file or request, used in every message
    :param frame: canonical column names with raw values, plus :data:`ROW_COLUMN`
    :param row_label: what the row numbers count (see :class:`RowIssue`)
    :param epoch_unit: unit of numeric ``ts`` values (``ms`` for Polygon); None rejects them
    :param blank_rows: empty lines the reader skipped (reported, not errors)
    :param reader_issues: rows the reader could not parse at all
    """

    origin: str
    frame: pd.DataFrame
    row_label: str = "data row"
    epoch_unit: str | None = None
    blank_rows: int = 0
    reader_issues: tuple[RowIssue, ...] = ()


@dataclass(frozen=True)
class ValidatedFrame:
    """One source after the per-row rules: regular-hours bars that passed, and the issues."""

    origin: str
    row_label: str
    bars: pd.DataFrame  # canonical columns plus ROW_COLUMN
    issues: tuple[RowIssue, ...]
    rows_read: int
    blank_rows: int
    out_of_hours: int


@dataclass(frozen=True)
class SourceStats:
    """Row counts of one source: read, blank, outside regular hours, rejected, kept."""

    origin: str
    rows_read: int
    blank_rows: int
    out_of_hours: int
    rejected: int
    kept: int


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one or more sources together."""

    bars: pd.DataFrame
    issues: tuple[RowIssue, ...]
    sources: tuple[SourceStats, ...]
    completeness: pd.DataFrame = field(repr=False)

    @property
    def rejected_rows(self) -> int:
        """Rows that broke at least one rule."""
        return sum(s.rejected for s in self.sources)

    @property
    def out_of_hours(self) -> int:
        """Bars dropped because they lie outside regular trading hours."""
        return sum(s.out_of_hours for s in self.sources)

    def gaps(self) -> list[CompletenessSummary]:
        """Per-symbol completeness of the kept bars against the calendar."""
        return summarise_completeness(self.completeness)

    def raise_if_invalid(self) -> None:
        """Strict mode: raise DataValidationError listing the issues when there are any."""
        if self.issues:
            raise DataValidationError(describe_issues(self.issues, self.rejected_rows))


def describe_issues(issues: Sequence[RowIssue], rejected_rows: int) -> str:
    """A multi-line message listing the first issues, for a strict import that refuses all."""
    origins = sorted({i.origin for i in issues})
    lines = [
        f"{rejected_rows} {'row' if rejected_rows == 1 else 'rows'} in {len(origins)} "
        "source(s) break validation rules; nothing was written:"
    ]
    lines.extend(f"  {i.describe()}" for i in issues[:_MAX_LISTED])
    if len(issues) > _MAX_LISTED:
        lines.append(f"  ... and {len(issues) - _MAX_LISTED} more issues")
    if any(i.rule in JUMP_RULES for i in issues):
        lines.append(
            "Price jumps are judged against the previous good close of the session; the limits "
            "are data.jumps in the config (max_log_return, scale_multiple, min_log_return)."
        )
    lines.append(
        "Fix the source, or re-run with --repair to drop exactly these rows "
        "(a report lists every dropped row and why)."
    )
    return "\n".join(lines)


def check_timezone(tz: str) -> str:
    """Return ``tz`` if it is a known IANA zone name, else raise InputError."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown timezone {tz!r}; use an IANA name such as America/New_York or UTC"
        ) from None
    return tz


def _shown(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "missing"
    if value is pd.NaT:
        return "missing"
    return repr(value.item() if isinstance(value, np.generic) else value)


class _Collector:
    """Builds RowIssue objects for masked rows only (bad rows are few; good rows cost nothing)."""

    def __init__(self, origin: str, row_label: str, rows: np.ndarray) -> None:
        self.origin = origin
        self.row_label = row_label
        self.rows = rows
        self.issues: list[RowIssue] = []
        self.bad = np.zeros(len(rows), dtype=bool)

    def add(self, mask: np.ndarray, rule: str, detail: Callable[[int], str]) -> None:
        positions = np.flatnonzero(mask)
        if len(positions) == 0:
            return
        self.bad[positions] = True
        self.issues.extend(
            RowIssue(self.origin, self.row_label, int(self.rows[i]), rule, detail(int(i)))
            for i in positions
        )


def _given(values: pd.Series) -> np.ndarray:
    """Mask of values that are present (not null and, for text, not blank)."""
    present = values.notna().to_numpy(dtype=bool, copy=True)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return present
    blank = values.astype("string").str.strip().eq("").fillna(False).to_numpy(dtype=bool, copy=True)
    return present & ~blank


def _numeric(values: pd.Series) -> np.ndarray:
    """Float64 values; text that is not a number becomes NaN (and is reported by the rules)."""
    if pd.api.types.is_bool_dtype(values):
        return np.full(len(values), np.nan)
    converted = pd.to_numeric(values, errors="coerce")
    return np.asarray(converted.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)


def _parse_epoch(values: pd.Series, unit: str, col: _Collector) -> tuple[np.ndarray, np.ndarray]:
    numbers = _numeric(values)
    present = ~np.isnan(numbers)
    col.add(~present & values.isna().to_numpy(), TIMESTAMP_MISSING, lambda i: "ts is empty")
    col.add(
        ~present & values.notna().to_numpy(),
        TIMESTAMP_UNPARSEABLE,
        lambda i: f"ts {_shown(values.iloc[i])} is not an epoch number in {unit}",
    )
    scale = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[unit]
    lo = TS_MIN.value // scale
    hi = TS_MAX.value // scale
    with np.errstate(invalid="ignore"):
        integral = present & (np.floor(numbers) == numbers)
        in_range = integral & (numbers >= lo) & (numbers < hi)
    col.add(
        present & ~integral,
        TIMESTAMP_UNPARSEABLE,
        lambda i: f"ts {_shown(values.iloc[i])} is not a whole number of {unit}",
    )
    col.add(
        integral & ~in_range,
        TIMESTAMP_OUT_OF_RANGE,
        lambda i: (
            f"ts {_shown(values.iloc[i])} ({unit} since 1970) lies outside 2000-01-03..2030-12-31;"
            f" is the unit {unit} right?"
        ),
    )
    ints = np.where(in_range, numbers, 0).astype(np.int64)
    return ints * scale, in_range


def _localize(naive: pd.Series, tz: str) -> pd.Series:
    local = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    return local.dt.tz_convert("UTC")


def _parse_text(
    values: pd.Series, tz: str | None, col: _Collector, raw: RawBars
) -> tuple[np.ndarray, np.ndarray]:
    text = values.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy(dtype=bool, copy=True)
    col.add(~present, TIMESTAMP_MISSING, lambda i: "ts is empty")
    has_offset = (
        text.str.contains(_OFFSET_RE, regex=True).fillna(False).to_numpy(dtype=bool, copy=True)
    )
    has_offset &= present
    naive_mask = present & ~has_offset
    if tz is not None and has_offset.any():
        log.info(
            "%s: timestamps with an offset keep it; --tz %s applies to the others", raw.origin, tz
        )
    out = np.zeros(len(values), dtype=np.int64)
    ok = np.zeros(len(values), dtype=bool)
    if has_offset.any():
        parsed = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce")
        good = parsed.notna().to_numpy()
        idx = np.flatnonzero(has_offset)
        out[idx[good]] = pd.DatetimeIndex(parsed[good]).as_unit("ns").asi8
        ok[idx[good]] = True
    if naive_mask.any():
        parsed = pd.to_datetime(text[naive_mask], format="ISO8601", errors="coerce")
        good = parsed.notna().to_numpy()
        idx = np.flatnonzero(naive_mask)
        if good.any():
            if tz is None:
                first = int(idx[good][0])
                raise DataValidationError(
                    f"{raw.origin}: timestamps have no timezone (first: {raw.row_label} "
                    f"{int(col.rows[first])}, ts {_shown(values.iloc[first])}); timezones are "
                    "never guessed. Pass --tz with the zone they are in (for example "
                    "--tz America/New_York), or write them with an offset such as +00:00"
                )
            local = _localize(parsed[good], tz)
            resolved = local.notna().to_numpy()
            good_idx = idx[good]
            out[good_idx[resolved]] = pd.DatetimeIndex(local[resolved]).as_unit("ns").asi8
            ok[good_idx[resolved]] = True
            unresolved = np.zeros(len(values), dtype=bool)
            unresolved[good_idx[~resolved]] = True
            col.add(
                unresolved,
                TIMESTAMP_LOCAL_AMBIGUOUS,
                lambda i: (
                    f"ts {_shown(values.iloc[i])} is ambiguous or does not exist in {tz} "
                    "(daylight-saving change)"
                ),
            )
    col.add(
        present & ~ok & ~col.bad,
        TIMESTAMP_UNPARSEABLE,
        lambda i: f"ts {_shown(values.iloc[i])} is not an ISO 8601 date-time",
    )
    return out, ok


def _parse_timestamps(
    raw: RawBars, tz: str | None, col: _Collector
) -> tuple[np.ndarray, np.ndarray]:
    """UTC nanoseconds of every row and a mask of rows whose timestamp is usable."""
    values = raw.frame["ts"]
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        idx = pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns")
        ok = ~idx.isna()
        col.add(~ok, TIMESTAMP_MISSING, lambda i: "ts is empty")
        return np.where(ok, idx.asi8, 0), np.asarray(ok)
    if pd.api.types.is_datetime64_dtype(dtype):
        if tz is None:
            raise DataValidationError(
                f"{raw.origin}: the ts column holds timestamps without a timezone; timezones "
                "are never guessed. Pass --tz with the zone they are in (for example "
                "--tz America/New_York)"
            )
        present = values.notna().to_numpy()
        col.add(~present, TIMESTAMP_MISSING, lambda i: "ts is empty")
        local = _localize(values, tz)
        ok = local.notna().to_numpy()
        col.add(
            present & ~ok,
            TIMESTAMP_LOCAL_AMBIGUOUS,
            lambda i: f"ts {_shown(values.iloc[i])} is ambiguous or does not exist in {tz}",
        )
        return np.where(ok, pd.DatetimeIndex(local).as_unit("ns").asi8, 0), ok
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        if raw.epoch_unit is None:
            raise DataValidationError(
                f"{raw.origin}: the ts column holds numbers; epoch numbers are read only in the "
                "Polygon layout (milliseconds in column t). Use --layout polygon, or write "
                "ISO 8601 timestamps with an offset"
            )
        return _parse_epoch(values, raw.epoch_unit, col)
    if raw.epoch_unit is not None:
        return _parse_epoch(values, raw.epoch_unit, col)
    return _parse_text(values, tz, col, raw)


def validate_frame(
    raw: RawBars, *, tz: str | None = None, calendar: str = "XNYS"
) -> ValidatedFrame:
    """Apply every per-row rule to one source and drop bars outside regular hours (counted).

    :param raw: the source's rows (see :class:`RawBars`)
    :param tz: zone of timestamps that carry no offset; None rejects such timestamps
    :param calendar: exchange calendar that defines regular hours
    :raises DataValidationError: when the whole source is unusable (missing columns, naive
        timestamps without ``tz``, numeric timestamps without a unit)
    """
    frame = raw.frame
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{raw.origin}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(c for c in frame.columns if c != ROW_COLUMN) or 'none'})"
        )
    if ROW_COLUMN not in frame.columns:
        raise ValueError(f"raw frame of {raw.origin} lacks the {ROW_COLUMN} column")
    if tz is not None:
        check_timezone(tz)
    if raw.epoch_unit is not None and raw.epoch_unit not in EPOCH_UNITS:
        raise ValueError(f"epoch unit must be one of {EPOCH_UNITS}, got {raw.epoch_unit!r}")
    frame = frame.reset_index(drop=True)
    rows = frame[ROW_COLUMN].to_numpy(dtype=np.int64)
    n = len(frame)
    col = _Collector(raw.origin, raw.row_label, rows)

    ts_ns, ts_ok = _parse_timestamps(replace(raw, frame=frame), tz, col)
    in_range = ts_ok & (ts_ns >= TS_MIN.value) & (ts_ns < TS_MAX.value)
    shown_ts = frame["ts"]
    col.add(
        ts_ok & ~in_range,
        TIMESTAMP_OUT_OF_RANGE,
        lambda i: f"ts {_shown(shown_ts.iloc[i])} lies outside 2000-01-03..2030-12-31",
    )
    on_minute = in_range & (ts_ns % _NS_PER_MINUTE == 0)
    col.add(
        in_range & ~on_minute,
        TIMESTAMP_NOT_ON_MINUTE,
        lambda i: f"ts {_shown(shown_ts.iloc[i])} does not start on a whole minute",
    )
    usable_ts = on_minute
    ts_index = pd.DatetimeIndex(pd.to_datetime(ts_ns, utc=True)).as_unit("ns")
    rth = np.zeros(n, dtype=bool)
    if usable_ts.any():
        rth[usable_ts] = cal.rth_mask(ts_index[usable_ts], calendar)
    outside = usable_ts & ~rth
    # Out-of-hours bars are dropped and counted; the value rules apply to everything else.
    checked = ~outside

    # Few distinct symbols: check each once instead of every row.
    codes, uniques = pd.factorize(frame["symbol"], use_na_sentinel=True)
    unique_ok = np.array([isinstance(u, str) and is_symbol(u) for u in uniques], dtype=bool)
    symbol_ok = (codes >= 0) & unique_ok[np.maximum(codes, 0)] if len(uniques) else codes >= 0
    symbol_text = np.array([str(u) for u in uniques], dtype=object)
    col.add(
        checked & ~symbol_ok,
        SYMBOL_INVALID,
        lambda i: f"symbol {_shown(frame['symbol'].iloc[i])} is not an upper-case ticker",
    )

    prices = {c: _numeric(frame[c]) for c in PRICE_COLUMNS}
    with np.errstate(invalid="ignore"):
        price_ok = {c: np.isfinite(v) & (v > 0) for c, v in prices.items()}
    all_prices_ok = np.logical_and.reduce(list(price_ok.values()))

    def price_detail(i: int) -> str:
        bad = [c for c in PRICE_COLUMNS if not price_ok[c][i]]
        shown = ", ".join(f"{c}={_shown(frame[c].iloc[i])}" for c in bad)
        noun = "is" if len(bad) == 1 else "are"
        return f"{', '.join(bad)} {noun} not a positive finite number ({shown})"

    col.add(checked & ~all_prices_ok, PRICE_INVALID, price_detail)
    o, h, lo, c = (prices[k] for k in PRICE_COLUMNS)
    with np.errstate(invalid="ignore"):
        ohlc_ok = (h >= np.maximum(o, c)) & (np.minimum(o, c) >= lo)
    col.add(
        checked & all_prices_ok & ~ohlc_ok,
        OHLC_INCONSISTENT,
        lambda i: (
            f"open={float(o[i])!r}, high={float(h[i])!r}, low={float(lo[i])!r}, "
            f"close={float(c[i])!r} break high >= max(open, close) >= min(open, close) >= low"
        ),
    )

    volume = _numeric(frame["volume"])
    with np.errstate(invalid="ignore"):
        volume_ok = np.isfinite(volume) & (volume >= 0)
    col.add(
        checked & ~volume_ok,
        VOLUME_INVALID,
        lambda i: f"volume {_shown(frame['volume'].iloc[i])} is negative, missing or not finite",
    )

    if "vwap" in frame.columns:
        vwap = _numeric(frame["vwap"])
        given = _given(frame["vwap"])
        with np.errstate(invalid="ignore"):
            vwap_ok = ~given | (np.isfinite(vwap) & (vwap > 0))
        col.add(
            checked & ~vwap_ok,
            VWAP_INVALID,
            lambda i: f"vwap {_shown(frame['vwap'].iloc[i])} is not a positive finite number",
        )
        vwap = np.where(given, vwap, np.nan)
    else:
        vwap = np.full(n, np.nan)

    if "trade_count" in frame.columns:
        counts = _numeric(frame["trade_count"])
        given = _given(frame["trade_count"])
        with np.errstate(invalid="ignore"):
            count_ok = ~given | (np.isfinite(counts) & (counts >= 0) & (np.floor(counts) == counts))
        col.add(
            checked & ~count_ok,
            TRADE_COUNT_INVALID,
            lambda i: (
                f"trade_count {_shown(frame['trade_count'].iloc[i])} is not a whole number >= 0"
            ),
        )
        counts = np.where(given & count_ok, counts, np.nan)
    else:
        counts = np.full(n, np.nan)

    keep = checked & ~col.bad
    trade_count = pd.array(counts[keep], dtype="Float64").astype("Int64")
    bars = pd.DataFrame(
        {
            "symbol": symbol_text[codes[keep]] if keep.any() else np.array([], dtype=object),
            "ts": ts_index[keep],
            "open": o[keep],
            "high": h[keep],
            "low": lo[keep],
            "close": c[keep],
            "volume": volume[keep],
            "vwap": vwap[keep],
            "trade_count": trade_count,
            ROW_COLUMN: rows[keep],
        }
    )
    issues = sorted([*raw.reader_issues, *col.issues], key=lambda i: (i.row, i.rule))
    log.debug(
        "%s: %d rows, %d kept, %d outside regular hours, %d rows rejected",
        raw.origin,
        n,
        int(keep.sum()),
        int(outside.sum()),
        int(col.bad.sum()),
    )
    return ValidatedFrame(
        origin=raw.origin,
        row_label=raw.row_label,
        bars=bars,
        issues=tuple(issues),
        rows_read=n + len(raw.reader_issues),
        blank_rows=raw.blank_rows,
        out_of_hours=int(outside.sum()),
    )


def merge_validated(
    parts: Sequence[ValidatedFrame],
    calendar: str = "XNYS",
    jumps: JumpCheckConfig | None = None,
) -> ValidationReport:
    """Check several validated sources together: duplicates, price jumps, then gaps.

    Every row of a duplicated (symbol, ts) is rejected, because nothing says which copy is
    right; the issue names the other rows holding the same key. The jump check
    (:mod:`stairways.data.jumps`, limits ``jumps``, the defaults when None) runs on the rows
    left, across files, so a spike at the boundary of two monthly files is still seen.
    """
    frames = [p.bars.assign(_part=k) for k, p in enumerate(parts)]
    combined = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame({c: [] for c in (*BAR_COLUMNS, ROW_COLUMN, "_part")})
    )
    issues_by_part: list[list[RowIssue]] = [list(p.issues) for p in parts]
    dup = combined.duplicated(["symbol", "ts"], keep=False).to_numpy(dtype=bool, copy=True)
    if dup.any():
        dups = combined.loc[dup, ["symbol", "ts", ROW_COLUMN, "_part"]]
        for (symbol, ts), group in dups.groupby(["symbol", "ts"], sort=True):
            where = [
                (int(part), int(row))
                for part, row in zip(group["_part"], group[ROW_COLUMN], strict=True)
            ]
            for part, row in where:
                others = "; ".join(_where(parts, p, r) for p, r in where if (p, r) != (part, row))
                stamp = pd.Timestamp(ts).strftime("%Y-%m-%dT%H:%M:%SZ")
                issues_by_part[part].append(
                    RowIssue(
                        parts[part].origin,
                        parts[part].row_label,
                        row,
                        DUPLICATE_BAR,
                        f"bar {symbol} {stamp} appears again at {others}",
                    )
                )
    unique = np.flatnonzero(~dup)
    found = find_price_jumps(combined.iloc[unique], jumps, calendar)
    jumped = np.zeros(len(combined), dtype=bool)
    if len(found):
        at = unique[found["position"].to_numpy(dtype=np.int64)]
        jumped[at] = True
        parts_of = combined["_part"].to_numpy()[at]
        rows_of = combined[ROW_COLUMN].to_numpy()[at]
        for finding, part, row in zip(found.to_dict("records"), parts_of, rows_of, strict=True):
            p = parts[int(part)]
            issues_by_part[int(part)].append(
                RowIssue(
                    p.origin, p.row_label, int(row), str(finding["rule"]), describe_jump(finding)
                )
            )
    dropped = dup | jumped
    kept = combined.loc[~dropped]
    part_ids = combined["_part"].to_numpy()
    stats = []
    for k, p in enumerate(parts):
        rejected_rows = {i.row for i in issues_by_part[k]}
        stats.append(
            SourceStats(
                origin=p.origin,
                rows_read=p.rows_read,
                blank_rows=p.blank_rows,
                out_of_hours=p.out_of_hours,
                rejected=len(rejected_rows),
                kept=int(((part_ids == k) & ~dropped).sum()),
            )
        )
    bars = conform(kept.loc[:, list(BAR_COLUMNS)])
    issues = tuple(i for k in range(len(parts)) for i in sorted(issues_by_part[k], key=_issue_key))
    completeness = session_completeness(bars, calendar)
    return ValidationReport(
        bars=bars, issues=issues, sources=tuple(stats), completeness=completeness
    )


def _issue_key(issue: RowIssue) -> tuple[int, str]:
    return (issue.row, issue.rule)


def _where(parts: Sequence[ValidatedFrame], part: int, row: int) -> str:
    p = parts[part]
    return f"{p.origin}, {p.row_label} {row}"


def validate_one(
    raw: RawBars,
    *,
    tz: str | None = None,
    calendar: str = "XNYS",
    jumps: JumpCheckConfig | None = None,
) -> ValidationReport:
    """Validate a single source: :func:`validate_frame` then :func:`merge_validated`."""
    return merge_validated([validate_frame(raw, tz=tz, calendar=calendar)], calendar, jumps)


def is_symbol(value: str) -> bool:
    """Whether ``value`` looks like an upper-case ticker (the rule rows are checked against)."""
    return re.fullmatch(_SYMBOL_RE, value) is not None
