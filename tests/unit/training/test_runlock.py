"""The run-directory lock against real second processes."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stairways.errors import StairwaysError
from stairways.training.runlock import (
    LOCK_FILE,
    RunLock,
    RunLockedError,
    live_holder,
    pid_alive,
)

# A process that takes the lock, says so on stdout, and holds it until stdin closes or it is
# killed.
HOLDER = """
import sys
from pathlib import Path
from stairways.training.runlock import RunLock
lock = RunLock(Path(sys.argv[1]), "2026-01-01T00:00:00+00:00", "holder process")
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
lock.release()
"""


def _holder(run_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def test_a_second_process_is_refused_with_the_holders_pid_and_host(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        with pytest.raises(RunLockedError) as err:
            RunLock(tmp_path, "now").acquire()
        text = str(err.value)
        assert f"pid {proc.pid} on host {socket.gethostname()}" in text
        assert "holder process" in text
        assert f"stairways train --resume {tmp_path}" in text
        # the refused writer changed nothing: the holder's record is intact
        record = json.loads((tmp_path / LOCK_FILE).read_text())
        assert record["pid"] == proc.pid
        holder = live_holder(tmp_path)
        assert holder is not None and holder.pid == proc.pid
    finally:
        _end(proc)


def test_the_lock_is_free_again_after_the_holder_releases_it(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert not (tmp_path / LOCK_FILE).exists()
    with RunLock(tmp_path, "now") as lock:
        assert lock.held
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_stale_lock_of_a_killed_process_is_taken_over_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proc = _holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert (tmp_path / LOCK_FILE).exists()  # a killed process leaves its file behind
    assert not pid_alive(proc.pid)
    assert live_holder(tmp_path) is None  # nobody holds it
    with caplog.at_level(logging.WARNING, logger="stairways.training.runlock"):
        lock = RunLock(tmp_path, "now")
        lock.acquire()
    try:
        assert f"stale lock {tmp_path / LOCK_FILE} of pid {proc.pid}" in caplog.text
        assert "no longer running" in caplog.text
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        lock.release()


def test_a_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with RunLock(tmp_path, "now"), pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        RunLock(tmp_path, "later").acquire()


def test_a_lock_from_another_host_is_left_alone_with_the_fix(tmp_path: Path) -> None:
    record = {"pid": 1, "host": "elsewhere.example", "started": "x", "command": "train"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(record))
    with pytest.raises(RunLockedError) as err:
        RunLock(tmp_path, "now").acquire()
    assert "host elsewhere.example" in str(err.value)
    assert f"delete {tmp_path / LOCK_FILE}" in str(err.value)
    assert json.loads((tmp_path / LOCK_FILE).read_text()) == record


def test_an_unwritable_run_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(StairwaysError, match="cannot create the run lock"):
        RunLock(missing, "now").acquire()
