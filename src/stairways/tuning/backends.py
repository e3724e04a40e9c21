"""Where workers run: local processes (the default) or tasks on a Ray cluster.

Both run the same :func:`~stairways.tuning.worker.run_worker` loop against the shared study
storage, so a trial is asked, reported (intermediate scores, for pruning) and told through the
storage whichever backend runs it. Ray tasks reach an SQLite study only on the machine that holds
the file; a multi-machine cluster needs a server database (``--storage postgresql://...``).

Interrupts: the driver holds an :class:`~stairways.tuning.interrupts.InterruptGuard` while the
workers run. On the first SIGINT or SIGTERM it asks every worker to stop (a stop event and a
SIGINT for local processes, a cancel for Ray tasks); each worker puts the trial it was running
back in the queue and returns. A worker that has not returned :data:`STOP_GRACE_S` seconds later
is killed; its trial is then failed by its stale heartbeat and queued again on the next run.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from typing import Any, Protocol

from stairways.errors import ExternalServiceError, InputError, MissingResourceError, StairwaysError
from stairways.tuning.interrupts import InterruptGuard, signal_name
from stairways.tuning.worker import WorkerJob, WorkerSummary, run_worker

log = logging.getLogger(__name__)

__all__ = [
    "PROBE_TIMEOUT_S",
    "STOP_GRACE_S",
    "Backend",
    "LocalBackend",
    "RayBackend",
    "make_backend",
    "probe_ray_address",
]

# How long a stopped worker may take to re-queue its trial and return before it is killed.
STOP_GRACE_S = 60.0
# How long the Ray address probe waits for a connection and for the server's first bytes.
PROBE_TIMEOUT_S = 5.0
# How often the driver looks at its workers and its interrupt guard while waiting.
POLL_S = 0.2


class Backend(Protocol):
    """Runs worker jobs and returns what each did."""

    name: str

    def check(self) -> None:
        """Fail fast (before the study is touched) when the backend cannot run anything."""

    def run(self, jobs: Sequence[WorkerJob]) -> list[WorkerSummary]:
        """Run every job to completion or until interrupted."""


def _init_worker_logging(level: int) -> None:
    """Give a spawned worker process the parent's log level (it starts unconfigured)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _process_main(job: WorkerJob, level: int, conn: Connection, stop: Any) -> None:
    """Entry point of a worker process: run the worker, send back its summary or its error.

    The process starts with SIGINT ignored (see :meth:`LocalBackend.run`) until the worker's
    interrupt guard takes over, so an interrupt during start-up is no traceback; the driver's
    stop event covers that window.
    """
    _init_worker_logging(level)
    try:
        summary = run_worker(job, should_stop=stop.is_set)
    except Exception as err:  # noqa: BLE001 - sent to the driver, which raises it
        try:
            conn.send(("error", err))
        except (TypeError, AttributeError, ValueError):  # an exception that does not pickle
            conn.send(("error", StairwaysError(f"{type(err).__name__}: {err}")))
        return
    finally:
        logging.shutdown()
    conn.send(("done", summary))


@dataclass
class _Child:
    job: WorkerJob
    process: SpawnProcess
    conn: Connection
    summary: WorkerSummary | None = None
    error: BaseException | None = None
    lost: str | None = None


class LocalBackend:
    """One job runs in this process; several run in spawned worker processes.

    Processes are spawned, not forked: a forked child would inherit torch's thread pools and
    any open database connection of the parent.
    """

    name = "local"

    def check(self) -> None:
        """Local processes need nothing outside."""

    def run(self, jobs: Sequence[WorkerJob]) -> list[WorkerSummary]:
        """Run the jobs (in parallel processes when there are several)."""
        if len(jobs) == 1:
            return [run_worker(jobs[0])]
        context = multiprocessing.get_context("spawn")
        level = logging.getLogger().getEffectiveLevel()
        stop = context.Event()
        with InterruptGuard() as guard:
            children = self._start(context, jobs, level, stop)
            self._wait(children, guard, stop)
        errors = [c.error for c in children if c.error is not None]
        if errors:
            raise errors[0]
        lost = [c for c in children if c.summary is None and c.lost and guard.signum is None]
        if lost:
            raise StairwaysError(
                "; ".join(c.lost for c in lost if c.lost) + ". Its running trial is failed "
                "once its heartbeat goes stale and queued again when you rerun the search"
            )
        return [
            _as_stopped_by(c.summary, guard)
            if c.summary is not None
            else _lost_summary(c.job, c.process.pid, c.lost, guard)
            for c in children
        ]

    @staticmethod
    def _start(context: Any, jobs: Sequence[WorkerJob], level: int, stop: Any) -> list[_Child]:
        children: list[_Child] = []
        # Children inherit an ignored SIGINT: Python then installs no KeyboardInterrupt handler
        # of its own, so Ctrl-C while a child imports is not a traceback. Each worker's guard
        # installs its handler once it runs.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            for job in jobs:
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(
                    target=_process_main,
                    args=(job, level, sender, stop),
                    name=f"tune-worker-{job.worker_index}",
                )
                process.start()
                sender.close()
                children.append(_Child(job=job, process=process, conn=receiver))
        finally:
            if main:
                signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        return children

    @staticmethod
    def _wait(children: list[_Child], guard: InterruptGuard, stop: Any) -> None:
        """Collect every child's message; on an interrupt, stop them and wait a bounded time."""
        pending = list(children)
        deadline: float | None = None
        while pending:
            watched = [c.conn for c in pending] + [c.process.sentinel for c in pending]
            ready = set(wait(watched, timeout=POLL_S))
            for child in list(pending):
                if child.conn in ready or child.process.sentinel in ready:
                    _receive(child)
                    pending.remove(child)
            if guard.stopped and deadline is None:
                log.warning(
                    "%s: stopping the workers; their running trials go back to the queue",
                    signal_name(guard.signum) if guard.signum is not None else "stop request",
                )
                stop.set()
                for child in pending:
                    if child.process.pid is not None and child.process.is_alive():
                        # Children in the foreground process group got Ctrl-C already; a
                        # second SIGINT only repeats the request. SIGTERM went to the driver.
                        os.kill(child.process.pid, signal.SIGINT)
                deadline = time.monotonic() + STOP_GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                for child in pending:
                    child.process.kill()
                    child.lost = (
                        f"worker {child.job.worker_index} (pid {child.process.pid}) did not "
                        f"stop within {STOP_GRACE_S:.0f} s and was killed"
                    )
                    log.error("%s", child.lost)
                pending = []
        for child in children:
            child.process.join(timeout=STOP_GRACE_S)
            child.conn.close()


def _receive(child: _Child) -> None:
    """Read a child's message; a closed pipe without a message means the child died."""
    try:
        # A child that exited after sending left its message readable; one that died did not.
        if not child.conn.poll():
            raise EOFError
        kind, payload = child.conn.recv()
    except EOFError:
        child.process.join(timeout=5)
        child.lost = (
            f"worker {child.job.worker_index} (pid {child.process.pid}) ended with exit code "
            f"{child.process.exitcode} without reporting"
        )
        return
    if kind == "done":
        child.summary = payload
    else:
        child.error = payload


def _as_stopped_by(summary: WorkerSummary, guard: InterruptGuard) -> WorkerSummary:
    """The summary, naming the driver's signal when the driver was the one interrupted."""
    if guard.signum is None:
        return summary
    return replace(summary, interrupted=signal_name(guard.signum))


def _lost_summary(
    job: WorkerJob, pid: int | None, reason: str | None, guard: InterruptGuard
) -> WorkerSummary:
    signum = guard.signum
    return WorkerSummary(
        worker_index=job.worker_index,
        host=socket.gethostname(),
        pid=pid or 0,
        backend=job.backend,
        trials=(),
        stop_reason=reason or "ended without reporting",
        interrupted=signal_name(signum) if signum is not None else "stop request",
    )


def _ray_worker(job: WorkerJob) -> WorkerSummary:
    """Entry point of a Ray task (a module-level function so Ray can ship it by reference)."""
    return run_worker(job)


# The first bytes of an HTTP/2 connection: a Ray head (GCS) and a Ray Client server speak gRPC,
# which is HTTP/2, and answer with a SETTINGS frame (type 4).
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_HTTP2_SETTINGS = 4
_RAY_FIX = (
    "Start the cluster (`ray start --head --port PORT` on its head machine), correct --address, "
    "or leave --address out to run the workers on a private local Ray"
)


def _split_address(address: str) -> tuple[str, int]:
    """``host`` and ``port`` of ``host:port``, ``ray://host:port`` or ``[v6]:port``."""
    text = address.removeprefix("ray://")
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(
            f"--address {address!r} is not host:port, ray://host:port or auto (for example "
            "--address 10.0.0.5:6379)"
        )
    return host, int(port_text)


def _resolve_auto() -> str:
    """The address ``auto`` stands for: RAY_ADDRESS, or the cluster `ray start` left here."""
    from ray._private.services import get_ray_address_from_environment

    try:
        found = get_ray_address_from_environment("auto", None)
    except ConnectionError as err:
        raise ExternalServiceError(f"--address auto: {err}. {_RAY_FIX}") from None
    if not found or found in ("auto", "local"):
        raise ExternalServiceError(
            "--address auto found no running Ray cluster on this machine (no RAY_ADDRESS, no "
            f"cluster started with `ray start`). {_RAY_FIX}"
        )
    return str(found)


def probe_ray_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail within about ``timeout`` seconds unless a gRPC server (a Ray head) answers there.

    ``ray.init`` itself would retry an unreachable address for minutes, deaf to SIGINT and
    SIGTERM while it waits in native code; this probe is plain Python with a time-out.
    """
    target = _resolve_auto() if address == "auto" else address
    host, port = _split_address(target)
    where = f"{host}:{port}" + (f" (--address {address})" if target != address else "")
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(_HTTP2_PREFACE)
            header = conn.recv(9)
    except socket.gaierror as err:
        raise ExternalServiceError(
            f"cannot resolve the Ray address {where}: {err.strerror}. {_RAY_FIX}"
        ) from None
    except ConnectionRefusedError:
        raise ExternalServiceError(
            f"no Ray cluster at {where}: the connection was refused (nothing listens on port "
            f"{port}). {_RAY_FIX}"
        ) from None
    except TimeoutError:
        raise ExternalServiceError(
            f"no answer from the Ray address {where} within {timeout:.0f} s. {_RAY_FIX}"
        ) from None
    except OSError as err:
        raise ExternalServiceError(
            f"cannot reach the Ray address {where}: {err.strerror or err}. {_RAY_FIX}"
        ) from None
    if len(header) < 4 or header[3] != _HTTP2_SETTINGS:
        raise ExternalServiceError(
            f"something listens at {where} but it is not a Ray cluster (it does not speak "
            f"gRPC). {_RAY_FIX}"
        )


class RayBackend:
    """Runs each worker as a Ray task, on an existing cluster or on a local head it starts.

    :param address: cluster address (``host:port``, ``ray://host:port`` or ``auto``); None
        starts a private local head on 127.0.0.1 for the duration of the search
    :param num_cpus: CPUs a local head offers (ignored when joining a cluster)
    :param cpus_per_worker: CPUs Ray reserves for each worker task
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, num_cpus: int | None = None, cpus_per_worker: float = 1
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.cpus_per_worker = cpus_per_worker

    def check(self) -> None:
        """Probe the cluster address (when one is given) before anything else happens."""
        if self.address is not None:
            probe_ray_address(self.address)

    def _init(self, ray: Any) -> bool:
        """Connect to (or start) Ray; returns whether this call initialised it."""
        if ray.is_initialized():
            return False
        try:
            if self.address is None:
                ray.init(
                    num_cpus=self.num_cpus,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=True,
                )
            else:
                ray.init(address=self.address, log_to_driver=True)
        except ConnectionError as err:
            raise ExternalServiceError(
                f"could not connect to the Ray cluster at {self.address!r}: {err}. {_RAY_FIX}"
            ) from None
        return True

    @staticmethod
    def _import_ray() -> Any:
        try:
            import ray  # heavy: imported only when the Ray backend is asked for
        except ModuleNotFoundError:
            raise MissingResourceError(
                "the Ray backend needs the ray package; install ray==2.60.0"
            ) from None
        return ray

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """Results of ``fn`` (a module-level function) on every item as Ray tasks, in order.

        For other commands' job lists (seed sweeps, power studies); the address is probed first.
        """
        self.check()
        ray = self._import_ray()
        started = self._init(ray)
        try:
            remote = ray.remote(num_cpus=self.cpus_per_worker, max_retries=0)(fn)
            results: list[Any] = ray.get([remote.remote(item) for item in items])
            return results
        finally:
            if started:
                ray.shutdown()

    def run(self, jobs: Sequence[WorkerJob]) -> list[WorkerSummary]:
        """Submit one Ray task per job and wait for all of them (or stop them on an interrupt)."""
        ray = self._import_ray()
        started = self._init(ray)
        try:
            remote = ray.remote(num_cpus=self.cpus_per_worker, max_retries=0)(_ray_worker)
            # Installed after ray.init, which sets its own SIGTERM handler, and removed before
            # ray.shutdown.
            with InterruptGuard() as guard:
                refs = [remote.remote(job) for job in jobs]
                log.info("submitted %d worker tasks to Ray", len(refs))
                return _gather(ray, refs, jobs, guard)
        finally:
            if started:
                ray.shutdown()


def _gather(
    ray: Any, refs: list[Any], jobs: Sequence[WorkerJob], guard: InterruptGuard
) -> list[WorkerSummary]:
    """Wait for every task; on an interrupt cancel them (each re-queues its trial) and wait."""
    job_of = dict(zip(refs, jobs, strict=True))
    results: dict[Any, WorkerSummary] = {}
    pending = list(refs)
    deadline: float | None = None
    while pending:
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
        for ref in ready:
            results[ref] = _task_result(ray, ref, job_of[ref], guard)
        if guard.stopped and deadline is None:
            log.warning(
                "%s: cancelling the Ray worker tasks; their running trials go back to the queue",
                signal_name(guard.signum) if guard.signum is not None else "stop request",
            )
            for ref in pending:
                # Not forced: the task gets a KeyboardInterrupt, which its worker turns into
                # re-queueing the trial it runs.
                ray.cancel(ref, force=False)
            deadline = time.monotonic() + STOP_GRACE_S
        if deadline is not None and time.monotonic() > deadline:
            for ref in pending:
                ray.cancel(ref, force=True)
                reason = f"did not stop within {STOP_GRACE_S:.0f} s and was killed"
                results[ref] = _lost_summary(job_of[ref], None, reason, guard)
            pending = []
    return [results[ref] for ref in refs]


def _task_result(ray: Any, ref: Any, job: WorkerJob, guard: InterruptGuard) -> WorkerSummary:
    from ray.exceptions import TaskCancelledError

    try:
        summary: WorkerSummary = ray.get(ref)
    except TaskCancelledError:
        # Cancelled before it ran, or Ray reports the cancel in place of the task's own result.
        return _lost_summary(job, None, "cancelled", guard)
    return _as_stopped_by(summary, guard)


def make_backend(name: str, address: str | None, workers: int) -> Backend:
    """The backend named on the command line."""
    if name == "local":
        if address is not None:
            raise InputError("--address only applies to --backend ray")
        return LocalBackend()
    if name == "ray":
        return RayBackend(address=address, num_cpus=workers if address is None else None)
    raise InputError(f"--backend must be local or ray, got {name!r}")
