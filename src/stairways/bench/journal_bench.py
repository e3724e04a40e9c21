"""Journal throughput and latency (``stairways bench journal``).

Appends live-loop-like events (decision, intent, verdict, fill) one transaction at a time, then
the same number in batches of one bar's events (``append_many``), then verifies the whole chain
and reads the tail. Every append is timed alone with ``time.perf_counter_ns``. Each append is
durable when it returns (SQLite ``synchronous=FULL``: an fsync per transaction), so the figures
are mostly the disk's fsync latency; they are wall clock on this machine, with the load average.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from stairways.errors import StairwaysError
from stairways.journal import Journal, JournalLocation, JournalReader, MacKey, verify_journal

__all__ = ["JournalBench", "run_journal_bench"]

_T0 = datetime(2025, 3, 3, 9, 30, tzinfo=ZoneInfo("America/New_York"))


@dataclass(frozen=True)
class JournalBench:
    """What ``stairways bench journal`` prints."""

    location: str
    load: str
    appends: int
    append_p50_ms: float
    append_p99_ms: float
    append_max_ms: float
    appends_per_s: float
    batch_size: int
    batched_events_per_s: float
    verify_records: int
    verify_records_per_s: float
    tail_ms: float


def _event(i: int) -> tuple[str, dict[str, Any], datetime]:
    ts = _T0 + timedelta(milliseconds=250 * i)
    kind = ("decision", "intent", "verdict", "fill")[i % 4]
    payload: dict[str, Any] = {
        "decision_id": f"d{i // 4:08d}",
        "symbol": "NVDA" if i % 8 < 4 else "MSFT",
        "quantity": (i % 7) - 3,
        "price": 100.0 + (i % 97) * 0.01,
    }
    if kind == "decision":
        payload["observation_hash"] = f"{i:064x}"
    if kind == "fill":
        payload["fee"] = 0.35
    return kind, payload, ts


def run_journal_bench(
    *,
    appends: int,
    batch_size: int,
    url: str | None = None,
    directory: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> JournalBench:
    """Time appends, batched appends, verification and a tail read on a new journal.

    :param appends: events appended one per transaction (and again in batches)
    :param batch_size: events per ``append_many`` transaction
    :param url: a PostgreSQL URL to measure (an empty database); an SQLite file otherwise
    :param directory: where the SQLite file goes (a removed temporary directory by default)
    """
    key = MacKey(secrets.token_bytes(32))
    with tempfile.TemporaryDirectory(prefix="stairways-journal-bench-", dir=directory) as tmp:
        location = (
            JournalLocation.parse(url)
            if url
            else JournalLocation.sqlite(Path(tmp) / "journal.sqlite")
        )
        with Journal.open(location, key) as journal:
            journal.append("config", {"bench": True}, _T0)  # creates the tables
            times = np.empty(appends, dtype=np.int64)
            start = time.perf_counter()
            for i in range(appends):
                kind, payload, ts = _event(i)
                t = time.perf_counter_ns()
                journal.append(kind, payload, ts)
                times[i] = time.perf_counter_ns() - t
            single_s = time.perf_counter() - start
            if progress:
                progress(f"{appends:,} single appends in {single_s:.1f} s")
            events = [_event(appends + i) for i in range(appends)]
            start = time.perf_counter()
            for k in range(0, appends, batch_size):
                journal.append_many(events[k : k + batch_size])
            batched_s = time.perf_counter() - start
        with JournalReader.open(location) as reader:
            start = time.perf_counter()
            report = verify_journal(reader, key)
            verify_s = time.perf_counter() - start
            if not report.ok:
                raise StairwaysError(f"the benchmark's own journal failed verification: {report}")
            t = time.perf_counter_ns()
            reader.tail(50)
            tail_ms = (time.perf_counter_ns() - t) / 1e6
    ms = times / 1e6
    return JournalBench(
        location="PostgreSQL" if url else "SQLite (WAL, synchronous=FULL)",
        load="load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        appends=appends,
        append_p50_ms=float(np.percentile(ms, 50)),
        append_p99_ms=float(np.percentile(ms, 99)),
        append_max_ms=float(ms.max()),
        appends_per_s=appends / single_s,
        batch_size=batch_size,
        batched_events_per_s=appends / batched_s,
        verify_records=report.records,
        verify_records_per_s=report.records / verify_s,
        tail_ms=tail_ms,
    )
