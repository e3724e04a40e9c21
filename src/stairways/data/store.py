"""The bar store: one DuckDB file holding 1-minute bars and where they came from.

Writes are transactional (a failing write leaves the store exactly as it was) and idempotent
(writing the same bars twice changes nothing). Bars that already exist with different values
are never overwritten silently: the write is refused unless ``replace=True``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from stairways.data.schema import BAR_COLUMNS, conform, empty_bars
from stairways.errors import DataValidationError, MissingResourceError, StoreError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bars (
    symbol VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    volume DOUBLE NOT NULL,
    vwap DOUBLE,
    trade_count BIGINT,
    PRIMARY KEY (symbol, ts)
);
CREATE TABLE IF NOT EXISTS symbol_sources (
    symbol VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL,
    synthetic BOOLEAN NOT NULL,
    details VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS imports (
    imported_at TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL,
    synthetic BOOLEAN NOT NULL,
    rows_in BIGINT NOT NULL,
    rows_inserted BIGINT NOT NULL,
    rows_replaced BIGINT NOT NULL,
    details VARCHAR NOT NULL
);
"""
_VALUE_COLUMNS = ("open", "high", "low", "close", "volume", "vwap", "trade_count")


@dataclass(frozen=True)
class WriteResult:
    """What a write did: rows offered, inserted as new, replaced, and left unchanged."""

    rows_in: int
    rows_inserted: int
    rows_replaced: int
    rows_unchanged: int


@dataclass(frozen=True)
class SymbolInfo:
    """Stored range and provenance of one symbol."""

    symbol: str
    rows: int
    first_ts: pd.Timestamp
    last_ts: pd.Timestamp
    sessions: int
    source: str
    synthetic: bool
    details: dict[str, Any] = field(default_factory=dict)


class BarStore:
    """A DuckDB file of 1-minute bars. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path | str, *, read_only: bool = False, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            if read_only or not create:
                raise MissingResourceError(
                    f"bar store {self.path} does not exist; create it with "
                    "`stairways data synth` or `stairways data import ...`"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as err:
            raise StoreError(f"cannot open bar store {self.path}: {err}") from None
        self._con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            self._con.execute(_SCHEMA)

    def __enter__(self) -> BarStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._con.close()

    # ---------------------------------------------------------------- writing
    def write_bars(
        self,
        bars: pd.DataFrame,
        *,
        source: str,
        synthetic: bool,
        details: dict[str, Any] | None = None,
        replace: bool = False,
    ) -> WriteResult:
        """Write validated canonical bars in one transaction.

        :param bars: canonical bar frame (see :mod:`stairways.data.schema`), already validated
        :param source: where the bars came from (``csv:path``, ``polygon``, ``synthetic``)
        :param synthetic: whether the bars are generated, recorded per symbol
        :param details: provenance recorded with the symbols (for example generator parameters)
        :param replace: allow overwriting stored bars whose values differ
        """
        frame = conform(bars)
        info = json.dumps(details or {}, sort_keys=True, default=str)
        symbols = sorted(frame["symbol"].unique())
        self._check_provenance(symbols, synthetic, source)
        now = datetime.now(UTC)
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("incoming", frame)
            differing = con.execute(
                "SELECT count(*) FROM incoming i JOIN bars b USING (symbol, ts) WHERE "
                + " OR ".join(f"i.{c} IS DISTINCT FROM b.{c}" for c in _VALUE_COLUMNS)
            ).fetchone()
            n_diff = int(differing[0]) if differing else 0
            if n_diff and not replace:
                example = con.execute(
                    "SELECT i.symbol, i.ts FROM incoming i JOIN bars b USING (symbol, ts) WHERE "
                    + " OR ".join(f"i.{c} IS DISTINCT FROM b.{c}" for c in _VALUE_COLUMNS)
                    + " ORDER BY 1, 2 LIMIT 1"
                ).fetchone()
                raise DataValidationError(
                    f"{n_diff} bars already stored in {self.path} have different values "
                    f"(first: {example[0]} {example[1]}); nothing was written. Re-run with "
                    "--replace to overwrite them"
                    if example
                    else f"{n_diff} stored bars differ; nothing was written"
                )
            before = self._count(con)
            if n_diff:
                con.execute(
                    "DELETE FROM bars USING incoming i "
                    "WHERE bars.symbol = i.symbol AND bars.ts = i.ts"
                )
                inserted_sql = "SELECT * FROM incoming"
            else:
                inserted_sql = "SELECT * FROM incoming ANTI JOIN bars USING (symbol, ts)"
            con.execute(f"INSERT INTO bars SELECT {', '.join(BAR_COLUMNS)} FROM ({inserted_sql})")
            new_rows = self._count(con) - before
            for sym in symbols:
                con.execute(
                    "INSERT OR REPLACE INTO symbol_sources VALUES (?, ?, ?, ?, ?)",
                    [sym, source, synthetic, info, now],
                )
            con.execute(
                "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?)",
                [now, source, synthetic, len(frame), new_rows, n_diff, info],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("incoming")
        result = WriteResult(
            rows_in=len(frame),
            rows_inserted=new_rows,
            rows_replaced=n_diff,
            rows_unchanged=len(frame) - new_rows - n_diff,
        )
        log.info("wrote bars to %s from %s: %s", self.path, source, result)
        return result

    @staticmethod
    def _count(con: duckdb.DuckDBPyConnection) -> int:
        row = con.execute("SELECT count(*) FROM bars").fetchone()
        return int(row[0]) if row else 0

    def _check_provenance(self, symbols: Sequence[str], synthetic: bool, source: str) -> None:
        """Refuse to mix generated and real bars for one symbol in one store."""
        for sym in symbols:
            row = self._con.execute(
                "SELECT synthetic, source FROM symbol_sources WHERE symbol = ?", [sym]
            ).fetchone()
            if row is not None and bool(row[0]) != synthetic:
                kind = "synthetic" if row[0] else "real"
                raise StoreError(
                    f"bar store {self.path} already holds {kind} bars for {sym} (from {row[1]}); "
                    f"refusing to mix them with bars from {source}. Use another store "
                    "(--store PATH) or delete this one"
                )

    # ---------------------------------------------------------------- reading
    def read_bars(
        self,
        symbols: Sequence[str] | None = None,
        start: date | str | None = None,
        end: date | str | None = None,
    ) -> pd.DataFrame:
        """Bars for ``symbols`` whose exchange-local date lies in [start, end], sorted."""
        clauses: list[str] = []
        params: list[Any] = []
        if symbols is not None:
            clauses.append(f"symbol IN ({', '.join('?' for _ in symbols)})")
            params.extend(symbols)
        if start is not None:
            clauses.append("CAST(timezone('America/New_York', ts) AS DATE) >= ?")
            params.append(pd.Timestamp(start).date())
        if end is not None:
            clauses.append("CAST(timezone('America/New_York', ts) AS DATE) <= ?")
            params.append(pd.Timestamp(end).date())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {', '.join(BAR_COLUMNS)} FROM bars {where} ORDER BY symbol, ts"
        frame = self._con.execute(sql, params).fetch_df()
        if frame.empty:
            return empty_bars()
        return conform(frame)

    def content_digest(self, symbols: Sequence[str], start: date, end: date) -> str:
        """A digest of every stored value of ``symbols`` around [start, end] and their sources.

        It covers the bars from ``start`` 00:00 UTC to ``end`` + 2 days 00:00 UTC (a superset of
        the exchange-local dates ``start..end``): the row count and the sum of a hash of every
        column of every row, plus the symbols' provenance rows. Any write that changes a bar in
        the range (a value, a new or a removed row) or a symbol's provenance changes it. Caches of
        what is computed from these bars key on it (the panel cache of
        :mod:`stairways.data.panel_builder`); it costs a scan of the range, not a read.
        """
        syms = sorted(symbols)
        marks = ", ".join("?" for _ in syms)
        lo = pd.Timestamp(start, tz="UTC")
        hi = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=2)
        row = self._con.execute(
            f"SELECT count(*), sum(hash({', '.join(BAR_COLUMNS)})::HUGEINT) FROM bars "
            f"WHERE symbol IN ({marks}) AND ts >= ? AND ts < ?",
            [*syms, lo.to_pydatetime(), hi.to_pydatetime()],
        ).fetchone()
        sources = self._con.execute(
            f"SELECT symbol, source, synthetic, details FROM symbol_sources "
            f"WHERE symbol IN ({marks}) ORDER BY symbol",
            syms,
        ).fetchall()
        return json.dumps(
            {"rows": [str(v) for v in (row or ())], "sources": [list(map(str, r)) for r in sources]}
        )

    def symbols(self) -> list[SymbolInfo]:
        """What is stored, per symbol."""
        rows = self._con.execute(
            """
            SELECT b.symbol, count(*), min(b.ts), max(b.ts),
                   count(DISTINCT CAST(timezone('America/New_York', b.ts) AS DATE)),
                   s.source, s.synthetic, s.details
            FROM bars b LEFT JOIN symbol_sources s USING (symbol)
            GROUP BY b.symbol, s.source, s.synthetic, s.details ORDER BY b.symbol
            """
        ).fetchall()
        return [
            SymbolInfo(
                symbol=r[0],
                rows=int(r[1]),
                first_ts=pd.Timestamp(r[2]).tz_convert("UTC"),
                last_ts=pd.Timestamp(r[3]).tz_convert("UTC"),
                sessions=int(r[4]),
                source=r[5] or "unknown",
                synthetic=bool(r[6]),
                details=json.loads(r[7]) if r[7] else {},
            )
            for r in rows
        ]

    def is_synthetic(self, symbols: Sequence[str]) -> bool:
        """True when any of ``symbols`` holds generated bars."""
        return any(s.synthetic for s in self.symbols() if s.symbol in symbols)

    def count(self) -> int:
        """Number of stored bars."""
        return self._count(self._con)
