"""Where workers run: local processes (the default) or tasks on a Ray cluster.

Both run the same :func:`~stairways.tuning.study.run_worker` loop against the shared study
storage, so a trial is asked, reported (intermediate scores, for pruning) and told through the
storage whichever backend runs it. Ray tasks reach an SQLite study only on the machine that holds
the file; a multi-machine cluster needs a server database (``--storage postgresql://...``).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from stairways.errors import ExternalServiceError, InputError, MissingResourceError
from stairways.tuning.study import WorkerJob, WorkerSummary, run_worker

log = logging.getLogger(__name__)

__all__ = ["Backend", "LocalBackend", "RayBackend", "make_backend"]


class Backend(Protocol):
    """Runs worker jobs and returns what each did."""

    name: str

    def run(self, jobs: Sequence[WorkerJob]) -> list[WorkerSummary]:
        """Run every job to completion."""


def _init_worker_logging(level: int) -> None:
    """Give a spawned worker process the parent's log level (it starts unconfigured)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


class LocalBackend:
    """One job runs in this process; several run in spawned worker processes.

    Processes are spawned, not forked: a forked child would inherit torch's thread pools and
    any open database connection of the parent.
    """

    name = "local"

    def run(self, jobs: Sequence[WorkerJob]) -> list[WorkerSummary]:
        """Run the jobs (in parallel processes when there are several)."""
        if len(jobs) == 1:
            return [run_worker(jobs[0])]
        context = multiprocessing.get_context("spawn")
        level = logging.getLogger().getEffectiveLevel()
        with ProcessPoolExecutor(
            max_workers=len(jobs),
            mp_context=context,
            initializer=_init_worker_logging,
            initargs=(level,),
        ) as pool:
            futures = [pool.submit(run_worker, job) for job in jobs]
            return [f.result() for f in futures]


def _ray_worker(job: WorkerJob) -> WorkerSummary:
    """Entry point of a Ray task (a module-level function so Ray can ship it by reference)."""
    return run_worker(job)


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
                f"could not connect to the Ray cluster at {self.address!r}: {err}; start it "
                "with `ray start --head` or check --address"
            ) from None
        return True

    def run(self, jobs: Sequence[WorkerJob]) -> list[WorkerSummary]:
        """Submit one Ray task per job and wait for all of them."""
        try:
            import ray  # heavy: imported only when the Ray backend is asked for
        except ModuleNotFoundError:
            raise MissingResourceError(
                "the Ray backend needs the ray package; install ray==2.60.0"
            ) from None
        started = self._init(ray)
        try:
            remote = ray.remote(num_cpus=self.cpus_per_worker, max_retries=0)(_ray_worker)
            refs = [remote.remote(job) for job in jobs]
            log.info("submitted %d worker tasks to Ray", len(refs))
            summaries: list[WorkerSummary] = ray.get(refs)
            return summaries
        finally:
            if started:
                ray.shutdown()


def make_backend(name: str, address: str | None, workers: int) -> Backend:
    """The backend named on the command line."""
    if name == "local":
        if address is not None:
            raise InputError("--address only applies to --backend ray")
        return LocalBackend()
    if name == "ray":
        return RayBackend(address=address, num_cpus=workers if address is None else None)
    raise InputError(f"--backend must be local or ray, got {name!r}")
