"""Train-then-evaluate jobs run in parallel worker processes (seed sweeps, temporal validation).

A job is a fully resolved config (as plain data, so it pickles across the ``spawn`` start
method) plus the splits to evaluate. Each worker process uses one torch thread, trains with
:func:`stairways.training.trainer.train`, then evaluates the run's final model (or, when the
speed-bump stopped the run early, its last checkpoint, which the outcome records) on every
split with :func:`stairways.evaluation.runner.evaluate_run`.

Jobs run on local processes by default: :class:`concurrent.futures.ProcessPoolExecutor` with
the ``spawn`` context and ``min(jobs, os.cpu_count())`` workers. Given a :class:`TaskBackend`
(the tuner's Ray backend, :class:`stairways.tuning.backends.RayBackend`, chosen by the command
line) they run as one task each on it instead. No home-made scheduler: a failed job is reported
with its error and the other jobs still finish.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stairways.errors import StairwaysError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One training run and the splits to evaluate it on.

    :param key: label of the job in reports (``seed 3``, a temporal pair name)
    :param config: the resolved config as JSON-ready data (``StairwaysConfig.model_dump``)
    :param splits: splits to evaluate, the first is the one verdicts use
    """

    key: str
    config: Mapping[str, Any]
    splits: tuple[str, ...]


@dataclass(frozen=True)
class JobOutcome:
    """What a job produced: its run, the checkpoint evaluated and metrics per split."""

    key: str
    run_dir: str
    status: str
    checkpoint: str
    metrics: Mapping[str, Mapping[str, float | int | None]]
    gates_passed: Mapping[str, bool]
    gates: Mapping[str, Mapping[str, Any]]
    seconds: float
    train_steps_per_second: float
    cpu_seconds: float = 0.0  # CPU time of the worker process (what an idle machine would need)


@dataclass(frozen=True)
class JobFailure:
    """A job that raised: its key and the error text."""

    key: str
    error: str


@dataclass(frozen=True)
class PoolResult:
    """Outcomes in job order, and failures."""

    outcomes: list[JobOutcome]
    failures: list[JobFailure] = field(default_factory=list)


def run_job(job: Job) -> JobOutcome:
    """Train and evaluate one job in this process (the worker's entry point)."""
    import torch

    from stairways.config import StairwaysConfig
    from stairways.configbase import validate_model
    from stairways.evaluation.runner import evaluate_run
    from stairways.training.rundir import RunDirectory
    from stairways.training.trainer import TrainOptions, train

    # Several workers share the cores: one thread each avoids oversubscription.
    torch.set_num_threads(1)
    started = time.perf_counter()
    cpu_started = time.process_time()
    cfg = validate_model(StairwaysConfig, dict(job.config), f"job {job.key}")
    result = train(cfg, TrainOptions(command=("stairways", "job", job.key)))
    run = RunDirectory.open(result.run_dir)
    if result.final_model is not None:
        checkpoint = "final"
    else:
        checkpoint = str(run.latest_checkpoint().model.relative_to(run.path))
        log.warning(
            "%s: run %s ended %s (%s); evaluating its last checkpoint %s",
            job.key,
            run.path,
            result.status,
            result.stop_reason,
            checkpoint,
        )
    metrics: dict[str, dict[str, float | int | None]] = {}
    passed: dict[str, bool] = {}
    gates: dict[str, dict[str, Any]] = {}
    for split in job.splits:
        report = evaluate_run(run.path, checkpoint=checkpoint, split=split)
        metrics[split] = report.agent.to_dict()
        passed[split] = report.verdict.passed
        gates[split] = report.verdict.to_dict()
    return JobOutcome(
        key=job.key,
        run_dir=str(run.path),
        status=result.status,
        checkpoint=checkpoint,
        metrics=metrics,
        gates_passed=passed,
        gates=gates,
        seconds=time.perf_counter() - started,
        train_steps_per_second=result.steps_per_second,
        cpu_seconds=time.process_time() - cpu_started,
    )


def guarded_run_job(job: Job) -> JobOutcome | JobFailure:
    """:func:`run_job`, with a failure returned as a :class:`JobFailure` naming the job.

    A remote backend gives back only the first task error; returning failures keeps every
    other job's result and reports each failure with its job, as the local pool does.
    """
    try:
        return run_job(job)
    except Exception as err:  # noqa: BLE001 - reported with its job by the caller, not hidden
        log.error("%s failed: %s: %s", job.key, type(err).__name__, err)
        return JobFailure(job.key, f"{type(err).__name__}: {err}")


class TaskBackend(Protocol):
    """Runs a module-level function on every item somewhere else (for example Ray tasks)."""

    name: str

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """Results of ``fn`` on every item, in item order."""


def worker_count(n_jobs: int, limit: int | None = None) -> int:
    """``min(n_jobs, os.cpu_count())``, optionally capped by ``limit``."""
    n = min(n_jobs, os.cpu_count() or 1)
    if limit is not None:
        n = min(n, limit)
    return max(1, n)


def run_jobs(
    jobs: Sequence[Job],
    workers: int | None = None,
    backend: TaskBackend | None = None,
    on_outcome: Callable[[JobOutcome], None] | None = None,
) -> PoolResult:
    """Run ``jobs`` in spawned worker processes (or on ``backend``); outcomes in job order.

    :param jobs: the jobs
    :param workers: cap on local worker processes (default ``min(len(jobs), os.cpu_count())``)
    :param backend: run every job as a task on this backend instead of local processes
    :param on_outcome: called with each outcome as soon as its job finishes (locally), or with
        every outcome once the backend returns them (so a caller can store results as they come)
    """
    if not jobs:
        raise StairwaysError("no jobs to run")
    if backend is not None:
        log.info("running %d jobs on the %s backend", len(jobs), backend.name)
        results = backend.map(guarded_run_job, list(jobs))
        if on_outcome is not None:
            for r in results:
                if isinstance(r, JobOutcome):
                    on_outcome(r)
        return PoolResult(
            outcomes=[r for r in results if isinstance(r, JobOutcome)],
            failures=[r for r in results if isinstance(r, JobFailure)],
        )
    n = worker_count(len(jobs), workers)
    log.info("running %d jobs on %d worker processes", len(jobs), n)
    ctx = multiprocessing.get_context("spawn")
    done: dict[str, JobOutcome] = {}
    failures: list[JobFailure] = []
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        futures: dict[Future[JobOutcome], Job] = {pool.submit(run_job, j): j for j in jobs}
        for fut in as_completed(futures):
            job = futures[fut]
            err = fut.exception()
            if err is not None:
                # A worker's failure is reported with the job it belongs to; the rest go on.
                log.error("%s failed: %s: %s", job.key, type(err).__name__, err)
                failures.append(JobFailure(job.key, f"{type(err).__name__}: {err}"))
                continue
            outcome = fut.result()
            log.info("%s finished in %.1f s: %s", job.key, outcome.seconds, outcome.run_dir)
            done[job.key] = outcome
            if on_outcome is not None:
                on_outcome(outcome)
    return PoolResult(outcomes=[done[j.key] for j in jobs if j.key in done], failures=failures)


def map_tasks(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int | None = None,
    backend: TaskBackend | None = None,
    on_result: Callable[[Any], None] | None = None,
) -> list[Any]:
    """Results of the module-level ``fn`` on every item, in item order.

    Local runs use spawned processes (at most ``workers``); with ``backend`` every item is one
    task on it. The first failure is raised once the others have finished. ``on_result`` is
    called with each result, in item order, as soon as it and the ones before it are done.
    """
    items = list(items)
    if not items:
        return []
    if backend is not None:
        results = backend.map(fn, items)
    elif (n := worker_count(len(items), workers)) == 1:
        results = []
        for item in items:
            results.append(fn(item))
            if on_result is not None:
                on_result(results[-1])
        return results
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            results = []
            for r in pool.map(fn, items):
                results.append(r)
                if on_result is not None:
                    on_result(r)
        return results
    if on_result is not None:
        for r in results:
            on_result(r)
    return results


def stamp(when: float | None = None) -> str:
    """UTC wall-clock stamp for output directory names (bookkeeping, never market time)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))


def default_out_dir(runs_dir: Path, kind: str, config_name: str) -> Path:
    """``<runs_dir>/<kind>_<config>_<UTC stamp>`` (a suffix is added if it exists)."""
    base = runs_dir / f"{kind}_{config_name}_{stamp()}"
    for attempt in range(1000):
        candidate = base if attempt == 0 else base.with_name(f"{base.name}-{attempt}")
        if not candidate.exists():
            return candidate
    raise StairwaysError(f"cannot find a free output directory name like {base}")
