"""Throughput of the data path (``stairways bench data``): CSV import, store read, features.

The input is realistic: the seeded synthetic market (NVDA and MSFT, 2022-01-03..2024-12-31 by
default, about 585k regular-hours bars) written as one canonical CSV file per symbol per year,
UTC timestamps with an offset. Generating and writing the CSVs is setup and is reported but not
counted. The counted stages, each wall clock on this machine:

- ``import``: :func:`stairways.data.importing.import_files` on the directory into a fresh store
  (read with pyarrow, every validation rule, gap counting, one transactional write);
- ``read``: all bars back from the store (what training reads);
- ``features``: :func:`stairways.data.features.compute_features` per symbol, after a warm-up
  call on a few bars so the figure excludes numba compilation (reported separately).

The issue's goal is import plus featurisation of the whole set in under 15 seconds.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pv

from stairways.data.features import compute_features
from stairways.data.importing import import_files
from stairways.data.settings import SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate
from stairways.errors import InputError

log = logging.getLogger(__name__)

GOAL_SECONDS = 15.0


@dataclass(frozen=True)
class Stage:
    """One timed stage: name, seconds, bars handled, and whether it counts toward the goal."""

    name: str
    seconds: float
    bars: int
    counted: bool

    @property
    def bars_per_second(self) -> float:
        """Throughput of the stage."""
        return self.bars / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class DataBenchResult:
    """Figures of one data benchmark run."""

    symbols: tuple[str, ...]
    start: date
    end: date
    files: int
    csv_bytes: int
    bars: int
    stages: tuple[Stage, ...]

    @property
    def counted_seconds(self) -> float:
        """Import, read and features: the time the goal is about."""
        return sum(s.seconds for s in self.stages if s.counted)

    @property
    def meets_goal(self) -> bool:
        """Whether the counted stages took less than :data:`GOAL_SECONDS`."""
        return self.counted_seconds < GOAL_SECONDS

    def stage(self, name: str) -> Stage:
        """The stage called ``name``."""
        return next(s for s in self.stages if s.name == name)


def write_csv_set(bars: pd.DataFrame, directory: Path) -> list[Path]:
    """Write canonical bars as one CSV per symbol per year (``NVDA_2022.csv``...)."""
    directory.mkdir(parents=True, exist_ok=True)
    years = bars["ts"].dt.tz_convert("America/New_York").dt.year
    paths: list[Path] = []
    for (symbol, year), part in bars.groupby([bars["symbol"], years], sort=True):
        path = directory / f"{symbol}_{year}.csv"
        table = pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)
        pv.write_csv(table, path)
        paths.append(path)
    return paths


def _timed(name: str, counted: bool, bars: int, started: float) -> Stage:
    stage = Stage(name, time.perf_counter() - started, bars, counted)
    log.info("bench data: %s took %.3f s for %d bars", name, stage.seconds, bars)
    return stage


def run_data_bench(
    workdir: Path | None = None,
    *,
    symbols: Sequence[str] = ("NVDA", "MSFT"),
    start: date = date(2022, 1, 3),
    end: date = date(2024, 12, 31),
    seed: int = 20220103,
) -> DataBenchResult:
    """Generate, write, import and featurise the CSV set; return the timed stages.

    :param workdir: where CSVs and the store go (a temporary directory, removed, when None)
    :param symbols: tickers of the synthetic market to use
    :param start: first session
    :param end: last session
    :param seed: synthetic market seed
    """
    if start > end:
        raise InputError(f"--start {start} is after --end {end}")
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="stairways-bench-") as tmp:
            return _run(Path(tmp), tuple(symbols), start, end, seed)
    if workdir.exists() and any(workdir.iterdir()):
        raise InputError(f"benchmark directory {workdir} is not empty; name a new or empty one")
    return _run(workdir, tuple(symbols), start, end, seed)


def _run(
    workdir: Path, symbols: tuple[str, ...], start: date, end: date, seed: int
) -> DataBenchResult:
    stages: list[Stage] = []
    t = time.perf_counter()
    bars = generate(SyntheticConfig(seed=seed, start=start, end=end), symbols)
    n = len(bars)
    stages.append(_timed("generate synthetic bars (setup)", False, n, t))

    t = time.perf_counter()
    paths = write_csv_set(bars, workdir / "csv")
    stages.append(_timed("write CSV set (setup)", False, n, t))
    del bars

    store_path = workdir / "bench.duckdb"
    t = time.perf_counter()
    summary = import_files([workdir / "csv"], store_path)
    stages.append(_timed("import CSV -> store", True, summary.written.rows_inserted, t))
    if summary.written.rows_inserted != n:
        raise RuntimeError(
            f"benchmark import stored {summary.written.rows_inserted} of {n} generated bars"
        )

    t = time.perf_counter()
    with BarStore(store_path, read_only=True) as store:
        stored = store.read_bars(list(symbols))
    stages.append(_timed("read store", True, len(stored), t))

    t = time.perf_counter()
    first = stored.loc[stored["symbol"] == stored["symbol"].iloc[0]].head(30)
    compute_features(first)
    stages.append(_timed("feature kernel warm-up (not counted)", False, len(first), t))

    t = time.perf_counter()
    featurised = 0
    for _, group in stored.groupby("symbol", sort=True):
        values, _ = compute_features(group)
        featurised += len(values)
    stages.append(_timed("features", True, featurised, t))

    return DataBenchResult(
        symbols=symbols,
        start=start,
        end=end,
        files=len(paths),
        csv_bytes=sum(p.stat().st_size for p in paths),
        bars=n,
        stages=tuple(stages),
    )
