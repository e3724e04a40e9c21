"""Data quality: per-session completeness against the exchange calendar, price jumps, overviews.

Completeness is counted per (symbol, session): the bars present versus the regular-hours
minutes the calendar expects (390 on a normal day, 210 on a half day). Sessions between a
symbol's first and last stored bar that hold no bars at all are listed too, with zero present.
The importers use :func:`session_completeness` to report gaps; ``stairways data info`` and
``stairways data quality`` use it on the store. ``data quality`` also lists the stored bars that
break the jump rules of :mod:`stairways.data.jumps` (:func:`store_price_jumps`), the same check
imports apply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from stairways.data import calendar as cal
from stairways.data.jumps import find_price_jumps
from stairways.data.settings import JumpCheckConfig
from stairways.data.store import BarStore, SymbolInfo

log = logging.getLogger(__name__)

COMPLETENESS_COLUMNS: tuple[str, ...] = (
    "symbol",
    "session",
    "expected",
    "present",
    "missing",
    "complete",
)


def _empty_completeness() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series([], dtype=str),
            "session": pd.Series([], dtype=object),
            "expected": pd.Series([], dtype="int64"),
            "present": pd.Series([], dtype="int64"),
            "missing": pd.Series([], dtype="int64"),
            "complete": pd.Series([], dtype=bool),
        }
    )


def _exchange_date(ts: pd.Timestamp) -> date:
    return ts.tz_convert(cal.EXCHANGE_TZ).date()


def session_completeness(
    bars: pd.DataFrame,
    calendar: str = "XNYS",
    start: date | None = None,
    end: date | None = None,
    symbols: list[str] | None = None,
) -> pd.DataFrame:
    """Bars present versus calendar minutes for every (symbol, session).

    :param bars: frame with at least ``symbol`` and ``ts`` (UTC); other columns are ignored
    :param calendar: exchange calendar name
    :param start: first session to list (default: each symbol's first bar)
    :param end: last session to list (default: each symbol's last bar)
    :param symbols: symbols to list even without bars (needs both ``start`` and ``end``)
    :return: one row per (symbol, session) with columns :data:`COMPLETENESS_COLUMNS`; bars
        outside regular hours are not counted as present
    """
    groups: dict[str, pd.DatetimeIndex] = {
        str(symbol): pd.DatetimeIndex(group["ts"]).as_unit("ns")
        for symbol, group in bars.groupby("symbol", sort=True, observed=True)
    }
    if symbols is not None and start is not None and end is not None:
        for symbol in symbols:
            groups.setdefault(symbol, pd.DatetimeIndex([], tz="UTC").as_unit("ns"))
    parts: list[pd.DataFrame] = []
    for symbol in sorted(groups):
        idx = groups[symbol]
        if len(idx) == 0 and (start is None or end is None):
            continue
        first = start or _exchange_date(idx.min())
        last = end or _exchange_date(idx.max())
        if first > last:
            continue
        s = cal.sessions(first, last, calendar)
        if len(s) == 0:
            continue
        values = np.sort(idx.asi8)
        opens = s.opens.as_unit("ns").asi8
        closes = s.closes.as_unit("ns").asi8
        pos = np.searchsorted(opens, values, side="right") - 1
        inside = pos >= 0
        inside[inside] = values[inside] < closes[pos[inside]]
        present = np.bincount(pos[inside], minlength=len(s)).astype(np.int64)
        expected = s.minutes.astype(np.int64)
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "session": [d.date() for d in s.dates],
                    "expected": expected,
                    "present": present,
                    "missing": np.maximum(expected - present, 0),
                    "complete": present >= expected,
                }
            )
        )
    if not parts:
        return _empty_completeness()
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class CompletenessSummary:
    """Completeness of one symbol over a range of sessions."""

    symbol: str
    sessions: int
    complete_sessions: int
    incomplete_sessions: int
    empty_sessions: int
    expected_bars: int
    present_bars: int
    missing_bars: int

    @property
    def completeness(self) -> float:
        """Fraction of expected bars that are present (1.0 when nothing is expected)."""
        return self.present_bars / self.expected_bars if self.expected_bars else 1.0


def summarise_completeness(table: pd.DataFrame) -> list[CompletenessSummary]:
    """Per-symbol totals of a :func:`session_completeness` table."""
    out: list[CompletenessSummary] = []
    for symbol, group in table.groupby("symbol", sort=True):
        complete = int(group["complete"].sum())
        out.append(
            CompletenessSummary(
                symbol=str(symbol),
                sessions=len(group),
                complete_sessions=complete,
                incomplete_sessions=len(group) - complete,
                empty_sessions=int((group["present"] == 0).sum()),
                expected_bars=int(group["expected"].sum()),
                present_bars=int(group["present"].sum()),
                missing_bars=int(group["missing"].sum()),
            )
        )
    return out


@dataclass(frozen=True)
class SymbolOverview:
    """What the store holds for one symbol, with its completeness against the calendar."""

    info: SymbolInfo
    first_local: pd.Timestamp
    last_local: pd.Timestamp
    completeness: CompletenessSummary


def store_overview(store: BarStore, calendar: str = "XNYS") -> list[SymbolOverview]:
    """Per-symbol range, provenance and gaps of everything in ``store``."""
    infos = store.symbols()
    if not infos:
        return []
    table = session_completeness(store.read_bars([i.symbol for i in infos]), calendar)
    by_symbol = {s.symbol: s for s in summarise_completeness(table)}
    return [
        SymbolOverview(
            info=i,
            first_local=i.first_ts.tz_convert(cal.EXCHANGE_TZ),
            last_local=i.last_ts.tz_convert(cal.EXCHANGE_TZ),
            completeness=by_symbol[i.symbol],
        )
        for i in infos
    ]


def store_completeness(
    store: BarStore,
    calendar: str = "XNYS",
    symbols: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    """Per-session completeness of stored bars (see :func:`session_completeness`).

    :param store: an open bar store
    :param symbols: restrict to these symbols (default: all stored)
    :param start: first session (default: each symbol's first stored bar)
    :param end: last session (default: each symbol's last stored bar)
    """
    bars = store.read_bars(symbols, start, end)
    table = session_completeness(bars, calendar, start, end, symbols)
    log.debug("completeness of %d sessions computed from %d bars", len(table), len(bars))
    return table


def store_price_jumps(
    store: BarStore,
    jumps: JumpCheckConfig | None = None,
    calendar: str = "XNYS",
    symbols: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    """Stored bars that break the jump rules (see :func:`stairways.data.jumps.find_price_jumps`).

    :param store: an open bar store
    :param jumps: limits (``data.jumps``; the defaults when None)
    :param symbols: restrict to these symbols (default: all stored)
    :param start: first session (default: each symbol's first stored bar)
    :param end: last session (default: each symbol's last stored bar)
    """
    bars = store.read_bars(symbols, start, end)
    found = find_price_jumps(bars, jumps, calendar)
    log.debug("jump check of %d stored bars: %d flagged", len(bars), len(found))
    return found.drop(columns=["position"])
