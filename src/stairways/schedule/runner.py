"""Deciding what is due, running it, and remembering what ran.

State (a small JSON file, written atomically after every job) records for each job when the
scheduler first saw it, the occurrence it last ran for, when that run started and finished, its
exit code and its log file. A job is due when its next occurrence after the last one it ran for
(or after ``start``, or after it was first seen) is not later than now. Occurrences missed while
the machine was off are run once, not once each. A job is recorded as run for its occurrence
even when it fails, so a broken job does not rerun every few minutes; ``run-due`` then exits 1.

Only one ``run-due`` may run at a time: it holds an exclusive lock on ``<state file>.lock``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from stairways.errors import (
    DataValidationError,
    MissingResourceError,
    TemporaryError,
)
from stairways.schedule.settings import JobConfig, ScheduleConfig
from stairways.schedule.timing import (
    Clock,
    next_cron_time,
    next_interval_time,
    next_session_time,
    parse_cron,
    parse_interval,
)

log = logging.getLogger(__name__)

__all__ = [
    "TIMEOUT_EXIT_CODE",
    "CommandRunner",
    "JobRun",
    "JobState",
    "JobStatus",
    "ScheduleState",
    "cron_line",
    "next_occurrence",
    "plan",
    "run_due",
    "stairways_executable",
    "subprocess_runner",
]

TIMEOUT_EXIT_CODE = 124
# Bound on the occurrences skipped when coalescing missed runs (a 1-minute job over a week).
_MAX_COALESCE = 20_000


@dataclass
class JobState:
    """What the scheduler remembers about one job (ISO 8601 instants)."""

    first_seen: str | None = None
    last_due: str | None = None
    last_started: str | None = None
    last_finished: str | None = None
    last_exit_code: int | None = None
    last_log: str | None = None


@dataclass
class ScheduleState:
    """The state file: one :class:`JobState` per job name."""

    jobs: dict[str, JobState] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ScheduleState:
        """Read the state file; a missing file is an empty state (nothing has run yet)."""
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text())
            return cls(jobs={k: JobState(**v) for k, v in raw["jobs"].items()})
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataValidationError(
                f"schedule state {path} is malformed ({err}); fix or delete it (deleting it "
                "makes every job count as never run)"
            ) from None

    def save(self, path: Path) -> None:
        """Write the state atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"jobs": {k: asdict(v) for k, v in self.jobs.items()}}, indent=2))
        tmp.replace(path)


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def next_occurrence(job: JobConfig, cfg: ScheduleConfig, after: datetime) -> datetime:
    """The job's first occurrence strictly after ``after`` (sessions only when asked)."""
    tz = cfg.timezone
    if job.cron is not None:
        spec = parse_cron(job.cron)

        def step(t: datetime) -> datetime:
            return next_cron_time(spec, t, tz)
    else:
        every = parse_interval(job.every or "")
        anchor = _start_of(job, cfg) or after

        def step(t: datetime) -> datetime:
            return next_interval_time(anchor, every, t)

    first = step(after)
    if job.sessions_only:
        return next_session_time(first, step, cfg.calendar)
    return first


def _start_of(job: JobConfig, cfg: ScheduleConfig) -> datetime | None:
    if job.start is None:
        return None
    if job.start.tzinfo is None:
        return job.start.replace(tzinfo=ZoneInfo(cfg.timezone))
    return job.start


@dataclass(frozen=True)
class JobStatus:
    """Where one job stands at ``now``."""

    name: str
    enabled: bool
    next_due: datetime
    due: bool
    last_due: datetime | None
    last_exit_code: int | None
    description: str


def _reference(job: JobConfig, cfg: ScheduleConfig, st: JobState, now: datetime) -> datetime:
    """The instant after which the job's next occurrence is looked for."""
    last = _parse(st.last_due)
    if last is not None:
        return last
    start = _start_of(job, cfg)
    if start is not None:
        # Due at ``start`` itself when it is an occurrence: look just before it.
        return start - timedelta(microseconds=1)
    seen = _parse(st.first_seen)
    return seen if seen is not None else now


def plan(cfg: ScheduleConfig, state: ScheduleState, clock: Clock) -> list[JobStatus]:
    """Every job with its next due time and whether it is due now."""
    now = clock.now()
    out = []
    for name, job in cfg.jobs.items():
        st = state.jobs.get(name, JobState())
        nxt = next_occurrence(job, cfg, _reference(job, cfg, st, now))
        out.append(
            JobStatus(
                name=name,
                enabled=job.enabled,
                next_due=nxt,
                due=job.enabled and nxt <= now,
                last_due=_parse(st.last_due),
                last_exit_code=st.last_exit_code,
                description=job.description,
            )
        )
    return out


CommandRunner = Callable[[Sequence[str], Path, float], int]


def stairways_executable() -> Path:
    """The ``stairways`` console script of this installation (next to the Python in use)."""
    exe = Path(sys.executable).with_name("stairways")
    if not exe.is_file():
        raise MissingResourceError(
            f"the stairways command is not installed next to {sys.executable}; "
            "install the package (make install) before scheduling jobs"
        )
    return exe


def subprocess_runner(args: Sequence[str], log_path: Path, timeout_s: float) -> int:
    """Run ``stairways ARGS`` with output to ``log_path``; a timeout gives exit code 124."""
    cmd = [str(stairways_executable()), *args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            done = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            out.write(f"\nstopped after the timeout of {timeout_s:.0f} s\n")
            return TIMEOUT_EXIT_CODE
    return done.returncode


@dataclass(frozen=True)
class JobRun:
    """One job run by ``run-due``."""

    name: str
    due: datetime
    exit_code: int
    ok: bool
    log: Path
    args: tuple[str, ...]


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TemporaryError(
                f"another `stairways schedule run-due` holds {lock_path}; try again when it ends"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _latest_occurrence(
    job: JobConfig, cfg: ScheduleConfig, due: datetime, now: datetime
) -> datetime:
    """The last occurrence not later than ``now``, starting from the due one (coalescing)."""
    latest = due
    for _ in range(_MAX_COALESCE):
        nxt = next_occurrence(job, cfg, latest)
        if nxt > now:
            return latest
        latest = nxt
    return latest


def _render(args: Sequence[str], due: datetime) -> tuple[str, ...]:
    values: dict[str, Any] = {"date": due.date().isoformat()}
    return tuple(a.format(**values) if "{" in a else a for a in args)


def run_due(
    cfg: ScheduleConfig,
    clock: Clock,
    *,
    runner: CommandRunner = subprocess_runner,
    only: Sequence[str] = (),
) -> list[JobRun]:
    """Run every enabled job that is due (or only the named ones, if due) and record it."""
    unknown = [n for n in only if n not in cfg.jobs]
    if unknown:
        raise MissingResourceError(f"no job named {unknown} in the schedule ({sorted(cfg.jobs)})")
    runs: list[JobRun] = []
    with _exclusive(cfg.state_file.with_name(cfg.state_file.name + ".lock")):
        state = ScheduleState.load(cfg.state_file)
        now = clock.now()
        for name in cfg.jobs:
            st = state.jobs.setdefault(name, JobState())
            if st.first_seen is None:
                st.first_seen = now.isoformat()
        state.save(cfg.state_file)
        for status in plan(cfg, state, clock):
            if not status.due or (only and status.name not in only):
                continue
            job = cfg.jobs[status.name]
            st = state.jobs[status.name]
            due = _latest_occurrence(job, cfg, status.next_due, now)
            args = _render(job.command, due)
            stamp = clock.now().strftime("%Y%m%dT%H%M%S")
            log_path = cfg.logs_dir / f"{status.name}_{stamp}.log"
            log.info("running job %s (due %s): stairways %s", status.name, due, " ".join(args))
            st.last_started = clock.now().isoformat()
            code = runner(args, log_path, job.timeout_minutes * 60.0)
            ok = code in job.ok_exit_codes
            st.last_due = due.isoformat()
            st.last_finished = clock.now().isoformat()
            st.last_exit_code = code
            st.last_log = str(log_path)
            state.save(cfg.state_file)
            if ok:
                log.info("job %s finished with exit code %d", status.name, code)
            else:
                log.error("job %s failed with exit code %d; see %s", status.name, code, log_path)
            runs.append(JobRun(status.name, due, code, ok, log_path, args))
    return runs


def cron_line(config_path: Path, every_minutes: int, workdir: Path) -> str:
    """A crontab line that runs ``stairways schedule run-due`` every few minutes."""
    if not 1 <= every_minutes <= 59:
        raise ValueError(f"every_minutes must lie in [1, 59], got {every_minutes}")
    exe = stairways_executable()
    logs = workdir / "logs" / "schedule" / "cron.log"
    return (
        f"*/{every_minutes} * * * * cd {workdir} && {exe} schedule run-due "
        f"--config {config_path.resolve()} >> {logs} 2>&1"
    )
