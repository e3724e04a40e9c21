"""The governor's memory rides the journal's commits: a writer killed with SIGKILL at random
points leaves a memory that counts exactly the records the journal holds (never ahead of a
decision, never behind a fill), every acknowledged decision durable, and a verifiable chain."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from stairways.journal import JournalLocation, JournalReader, MacKey, verify_journal
from tests.integration.memory_writer import MEMORY_KEY

ROOT = Path(__file__).resolve().parents[2]
KEY_TEXT = "memory-process-test-mac-key-0123456789"


def _run_and_kill(path: Path, delay: float) -> tuple[int, int, str]:
    """Start the writer, SIGKILL it ``delay`` s after it is ready; (exit code, highest
    acknowledged seq, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.memory_writer", str(path)],
        cwd=ROOT,
        env={**os.environ, "JOURNAL_TEST_KEY": KEY_TEXT},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == "ready":
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if ready.wait(timeout=60):
            time.sleep(delay)
            acknowledged = max((int(s) for s in list(lines) if s.isdigit()), default=0)
            os.kill(proc.pid, signal.SIGKILL)
        else:
            acknowledged = 0
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    reader.join(timeout=10)
    assert proc.stderr is not None
    return proc.returncode, acknowledged, proc.stderr.read()


def test_a_killed_writer_leaves_the_memory_counting_exactly_the_journals_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    rng = random.Random(20261130)
    kills = 0
    for _ in range(4):
        code, acknowledged, err = _run_and_kill(path, rng.uniform(0.05, 0.4))
        # 3: the restarted writer found a memory that does not count the journal's records
        assert code == -signal.SIGKILL, err
        kills += 1
        with JournalReader.open(JournalLocation.sqlite(path)) as reader:
            report = verify_journal(reader, MacKey(KEY_TEXT.encode()))
            records = reader.count()
        assert report.ok, report
        assert records >= acknowledged  # every acknowledged decision survived
        with sqlite3.connect(path) as db:
            row = db.execute(
                "SELECT document FROM risk_memory WHERE key = ?", (MEMORY_KEY,)
            ).fetchone()
        memory = json.loads(row[0]) if row is not None else {"records": 0}
        assert memory["records"] == records, (kills, memory, records)
    assert kills == 4
