"""One writer per run directory: a lock file holding the writer's pid, host and start time.

``run.lock`` is created when a run starts (or resumes) and removed when it ends. The writer
also holds an exclusive ``flock`` on it, which the operating system drops when the process
dies however it dies, so a lock is live exactly while its ``flock`` is held:

- held by another process: the second writer is refused, with the holder's pid and host;
- not held, written by a process on this host: its writer died (killed, crashed); the lock is
  stale, taken over, and the takeover is logged;
- not held, written on another host: this host cannot see that process, so the lock is left
  alone and the message says how to remove it once that run is known to be gone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from stairways.errors import StairwaysError

log = logging.getLogger(__name__)

__all__ = ["LOCK_FILE", "LockHolder", "RunLock", "RunLockedError", "live_holder", "pid_alive"]

LOCK_FILE = "run.lock"
# A lock file replaced between our open and our flock is retried; this bounds the retries.
_ATTEMPTS = 5


class RunLockedError(StairwaysError):
    """Another process is writing the run directory (or may be, on another host)."""


@dataclass(frozen=True)
class LockHolder:
    """What a lock file says about its writer."""

    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        """``pid 123 on host h (since ...: command)`` for messages."""
        what = f": {self.command}" if self.command else ""
        return f"pid {self.pid} on host {self.host} (since {self.started}{what})"


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    return True


def _parse(text: str) -> LockHolder | None:
    try:
        raw: Any = json.loads(text)
        return LockHolder(
            pid=int(raw["pid"]),
            host=str(raw["host"]),
            started=str(raw.get("started", "?")),
            command=str(raw.get("command", "")),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def live_holder(run_dir: Path) -> LockHolder | None:
    """The process writing ``run_dir`` now, or None when no process holds its lock."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StairwaysError(f"cannot read the run lock {path}: {err}") from None
        holder = _parse(os.pread(fd, 1 << 16, 0).decode(errors="replace"))
        return holder or LockHolder(pid=0, host="?", started="?", command="")
    else:
        return None  # a lock file nobody holds: its writer died
    finally:
        os.close(fd)


class RunLock:
    """The lock of one run directory; use as a context manager or acquire / release.

    :param run_dir: the run directory (must exist)
    :param started: wall-clock start time recorded in the lock (bookkeeping only)
    :param command: the command line, recorded so a refused user sees what holds the run
    """

    def __init__(self, run_dir: Path, started: str, command: str = "") -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.started = started
        self.command = command
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunLockedError` naming the process that holds it."""
        if self._fd is not None:
            raise StairwaysError(f"{self.path} is already held by this RunLock")
        host = socket.gethostname()
        for _ in range(_ATTEMPTS):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise StairwaysError(f"cannot lock {self.path}: {err}") from None
                raise self._refusal(_parse(self._read_path()), live=True) from None
            if not self._still_at_path(fd):
                os.close(fd)  # the holder removed or replaced the file meanwhile: look again
                continue
            previous = _parse(os.pread(fd, 1 << 16, 0).decode(errors="replace"))
            if previous is not None and previous.host != host:
                os.close(fd)
                raise self._refusal(previous, live=False)
            if previous is not None:
                if previous.pid == os.getpid():
                    reason = "this process left it behind without holding it"
                elif pid_alive(previous.pid):
                    reason = "it does not hold the lock, so its pid now belongs to another process"
                else:
                    reason = "that process is no longer running"
                log.warning(
                    "taking over the stale lock %s of %s: %s",
                    self.path,
                    previous.describe(),
                    reason,
                )
            self._write(fd, host)
            self._fd = fd
            return
        raise StairwaysError(
            f"{self.path} kept changing while it was being locked ({_ATTEMPTS} attempts); "
            "another process is starting or ending this run: try again"
        )

    def release(self) -> None:
        """Remove the lock file and drop the lock (nothing happens when not held)."""
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        try:
            if self._still_at_path(fd):
                self.path.unlink()
        finally:
            os.close(fd)

    # ----------------------------------------------------------------- helpers
    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise StairwaysError(
                f"cannot create the run lock {self.path}: {err.strerror}; the run directory "
                "must be writable"
            ) from None

    def _read_path(self) -> str:
        try:
            return self.path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _still_at_path(self, fd: int) -> bool:
        try:
            on_disk = self.path.stat()
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    def _write(self, fd: int, host: str) -> None:
        record = {
            "pid": os.getpid(),
            "host": host,
            "started": self.started,
            "command": self.command,
        }
        data = (json.dumps(record) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)

    def _refusal(self, holder: LockHolder | None, live: bool) -> RunLockedError:
        run = self.path.parent
        who = holder.describe() if holder is not None else "another process"
        if live:
            return RunLockedError(
                f"run directory {run} is being written by {who}; two writers would overwrite "
                "each other's monitor.csv and checkpoints. Wait for that run to end (or stop "
                f"it), then resume it with: stairways train --resume {run}"
            )
        return RunLockedError(
            f"run directory {run} is locked by {who}, another host, which this host cannot "
            f"check. If no process there is training this run, delete {self.path} and run "
            "again"
        )
