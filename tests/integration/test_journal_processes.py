"""The journal across processes: a reader reads while a writer writes, and a writer killed
with SIGKILL at random points leaves no torn record and a chain that verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stairways.journal import Journal, JournalLocation, JournalReader, MacKey, verify_journal

ROOT = Path(__file__).resolve().parents[2]
KEY_TEXT = "process-test-journal-mac-key-0123456789"
KEY = MacKey(KEY_TEXT.encode())


class Writer:
    """A writer subprocess and the seqs it acknowledged (read by a thread)."""

    def __init__(self, path: Path, count: int, pace: float, mode: str = "") -> None:
        env = {**os.environ, "JOURNAL_TEST_KEY": KEY_TEXT}
        args = [str(path), str(count), str(pace), *([mode] if mode else [])]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.journal_writer", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if line.strip() == "ready":
                self.ready.set()

    def acknowledged(self) -> int:
        """The highest seq the writer reported as committed."""
        seqs = [int(s) for s in list(self.lines) if s.isdigit()]
        return max(seqs, default=0)

    def finish(self, timeout: float) -> tuple[int, str]:
        """Wait for exit; (return code, stderr)."""
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._thread.join(timeout=10)
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()


def test_a_reader_process_reads_while_a_writer_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal.open(JournalLocation.sqlite(path), KEY).close()
    total_appends = 150  # 30 of them are batches of three events
    expected = total_appends + 2 * (total_appends // 5)
    writer = Writer(path, total_appends, pace=0.002)
    seen: list[int] = []
    partial_views = 0
    deadline = time.monotonic() + 120
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        while time.monotonic() < deadline:
            batch = [r.seq for r in reader.records(after_seq=seen[-1] if seen else 0)]
            seen.extend(batch)
            if batch and writer.proc.poll() is None:
                partial_views += 1
            if len(seen) >= expected and writer.proc.poll() is not None:
                break
            time.sleep(0.01)
        code, err = writer.finish(timeout=60)
        assert code == 0, err
        seen.extend(r.seq for r in reader.records(after_seq=seen[-1] if seen else 0))
        report = verify_journal(reader, KEY)
    assert seen == list(range(1, expected + 1))
    # The reader saw the journal grow while the writer was still writing.
    assert partial_views >= 2
    assert report.ok
    assert report.records == expected


def _kill_loop(path: Path, max_kills: int, seconds: float, seed: int, mode: str = "") -> int:
    """Start a writer, SIGKILL it after a random delay, check the journal; repeat. Kills done."""
    rng = random.Random(seed)
    kills = 0
    deadline = time.monotonic() + seconds
    while kills < max_kills and time.monotonic() < deadline:
        writer = Writer(path, 0, pace=0.0, mode=mode)
        assert writer.ready.wait(timeout=60), "the writer did not open the journal"
        time.sleep(rng.uniform(0.0, 0.25))
        acknowledged = writer.acknowledged()
        os.kill(writer.proc.pid, signal.SIGKILL)
        code, _err = writer.finish(timeout=30)
        assert code == -signal.SIGKILL
        kills += 1
        # A new writer opens it (no integrity error), and it holds every acknowledged record.
        with Journal.open(JournalLocation.sqlite(path), KEY) as journal:
            report = verify_journal(journal, KEY)
            assert report.ok, report
            assert report.records >= acknowledged
            count = journal.count()
            assert count == report.records
            assert [r.seq for r in journal.records()] == list(range(1, count + 1))
            after = journal.append(
                "alert", {"restart": kills}, datetime(2025, 3, 3, 16, tzinfo=UTC)
            )
            assert after.seq == count + 1
    return kills


def test_a_writer_killed_at_random_points_leaves_a_verifiable_journal(tmp_path: Path) -> None:
    kills = _kill_loop(tmp_path / "journal.sqlite", max_kills=4, seconds=25, seed=20250303)
    assert kills >= 2


def test_a_group_committing_writer_killed_at_random_points_keeps_every_barrier(
    tmp_path: Path,
) -> None:
    # Buffered appends may be lost; every record acknowledged after a barrier survives.
    kills = _kill_loop(tmp_path / "journal.sqlite", max_kills=3, seconds=15, seed=15, mode="group")
    assert kills >= 2


@pytest.mark.slow
def test_many_kills_at_random_points_leave_a_verifiable_journal(tmp_path: Path) -> None:
    kills = _kill_loop(tmp_path / "journal.sqlite", max_kills=40, seconds=240, seed=7)
    assert kills >= 20
