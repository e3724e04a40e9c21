"""The worker loop: claim a trial, run it with a heartbeat, record how it ended; stop when told.

Each worker (a local process, this process, or a Ray task) runs :func:`run_worker`: it loads the
study and runs one trial at a time until the study holds the wanted number of finished trials.
Grid workers only take queued points, and a queued point is handed to one worker only (Optuna
moves it from waiting to running in one conditional update), so no grid point runs twice. TPE
workers ask the sampler. A trial that a worker creates when no work is left (a race between
workers for the last point) is abandoned at once: it is recorded as failed with the user
attribute ``abandoned`` and does not count.

Interrupts (SIGINT, SIGTERM, a driver's stop request; see :mod:`stairways.tuning.interrupts`)
stop the worker at once: the trial it was running goes back to the queue as it was before it
started (waiting, its intermediate scores removed), it is not failed, and the worker claims
nothing more. The next run of the search takes the trial from the queue and runs it from the
beginning, in a fresh trial directory.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import shutil
import socket
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from stairways.errors import InputError, StairwaysError
from stairways.tuning.interrupts import InterruptGuard, signal_name
from stairways.tuning.objective import Objective, TrialRequest, TrialResult, check_criteria
from stairways.tuning.space import Label, decode, suggest
from stairways.tuning.storage import Heartbeat, StudyStorage, open_storage
from stairways.tuning.study import (
    FINISHED,
    StudySetup,
    load_study,
    point_of,
    progress,
    trial_dir,
)

log = logging.getLogger(__name__)

__all__ = [
    "MAX_CONSECUTIVE_FAILURES",
    "TRIAL_ERRORS",
    "WorkerJob",
    "WorkerSummary",
    "jobs_for",
    "run_worker",
]

# A worker stops after this many failed trials in a row (a broken setup, not bad luck).
MAX_CONSECUTIVE_FAILURES = 3


class _AbandonedError(Exception):
    """A trial created when no work was left; recorded as failed and not counted."""


# Errors a trial may end with that fail that trial only: bad trial config, a diverging run
# (NaN losses raise ValueError in torch distributions), a missing resource. Programming errors
# (TypeError, AttributeError, ...) are not listed: they stop the search.
TRIAL_ERRORS: tuple[type[Exception], ...] = (
    StairwaysError,
    ValueError,
    RuntimeError,
    ArithmeticError,
    _AbandonedError,
)


@dataclass(frozen=True)
class WorkerJob:
    """What one worker needs; picklable (sent to processes and Ray tasks).

    :param max_trials: bound on the trials this worker starts (a safety limit on the loop)
    """

    setup: StudySetup
    objective: Objective
    worker_index: int = 0
    backend: str = "local"
    max_trials: int = 10_000


@dataclass(frozen=True)
class WorkerSummary:
    """What a worker did.

    :param trials: trials it ran to an end (complete, pruned or failed)
    :param requeued: trials it was running when interrupted, now back in the queue
    :param interrupted: the name of the signal (or stop request) that stopped it, if any
    """

    worker_index: int
    host: str
    pid: int
    backend: str
    trials: tuple[int, ...]
    stop_reason: str
    node_id: str = ""
    failures: tuple[int, ...] = field(default_factory=tuple)
    requeued: tuple[int, ...] = field(default_factory=tuple)
    interrupted: str | None = None


class _OptunaReporter:
    """Reports intermediate scores to the Optuna trial and stops it when the pruner says so.

    The storage calls are shielded from interrupts (see :meth:`InterruptGuard.shielded`).
    """

    def __init__(self, trial: optuna.Trial, guard: InterruptGuard) -> None:
        self.trial = trial
        self.guard = guard

    def report(self, step: int, value: float) -> None:
        """Record ``value`` at ``step``; raise TrialPruned when the trial is hopeless."""
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"intermediate score at step {step} is {value} (diverged)")
        with self.guard.shielded():
            self.trial.report(value, step)
            prune = self.trial.should_prune()
        if prune:
            raise optuna.TrialPruned(
                f"pruned at step {step}: intermediate score {value:.6g} is hopeless "
                "compared with the other trials or the threshold"
            )


class _TrialFunction:
    """What a worker runs for one trial: the abandon check, the objective, the user attributes."""

    def __init__(
        self,
        job: WorkerJob,
        target: int,
        worker_info: Mapping[str, Any],
        guard: InterruptGuard,
    ) -> None:
        self.job = job
        self.target = target
        self.worker_info = dict(worker_info)
        self.guard = guard
        self.abandoned: str | None = None
        self.stop = False

    def _abandon_reason(self, trial: optuna.Trial) -> tuple[str, bool] | None:
        """Why this trial must not run (and whether the worker should stop), or None."""
        space = self.job.setup.space
        study = trial.study
        if space.sampler == "grid":
            key = trial.user_attrs.get("grid_point")
            if key is None:
                return "no queued grid point was left when this trial started", True
            # Two drivers preparing one study at the same moment may queue a point twice;
            # the copy that started later gives way.
            for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING)):
                if t.number == trial.number or point_of(t) != key:
                    continue
                if t.state in FINISHED or t.number < trial.number:
                    return f"grid point {key} is already taken by trial {t.number}", False
            return None
        # TPE: earlier-numbered running trials have priority, so two workers racing for the
        # last slot never both run, and never both give up.
        finished = len(study.get_trials(deepcopy=False, states=FINISHED))
        ahead = sum(
            1
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number < trial.number
        )
        if finished + ahead >= self.target:
            return "the study already has its trials finished or running", True
        return None

    def __call__(self, trial: optuna.Trial) -> float:
        verdict = self._abandon_reason(trial)
        if verdict is not None:
            reason, self.stop = verdict
            self.abandoned = reason
            trial.set_user_attr("abandoned", reason)
            raise _AbandonedError(reason)
        setup = self.job.setup
        space = setup.space
        labels: dict[str, Label] = suggest(trial, space)
        params = decode(space, labels)
        trial.set_user_attr("worker", self.worker_info)
        directory = trial_dir(setup.out_dir, trial.number)
        if trial.user_attrs.get("requeued") and directory.exists():
            # An interrupted attempt of this trial left its partial runs; it starts over.
            log.info(
                "trial %d starts again: removing its interrupted attempt %s",
                trial.number,
                directory,
            )
            shutil.rmtree(directory)
        seeds = tuple(space.budget.first_seed + k for k in range(space.budget.seeds_per_trial))
        request = TrialRequest(
            number=trial.number,
            params=params,
            seeds=seeds,
            trial_dir=directory,
            reporter=_OptunaReporter(trial, self.guard),
        )
        # Only the objective is interruptible; the storage calls around it are not.
        with self.guard.trial():
            result: TrialResult = self.job.objective(request)
        criteria = check_criteria(result.metrics, space.criteria)
        trial.set_user_attr("seeds", list(seeds))
        trial.set_user_attr("seed_scores", list(result.seed_scores))
        trial.set_user_attr("seed_std", result.seed_std)
        trial.set_user_attr("metrics", {k: float(v) for k, v in result.metrics.items()})
        trial.set_user_attr("criteria", criteria)
        trial.set_user_attr("passed", all(criteria.values()))
        trial.set_user_attr("run_dirs", list(result.run_dirs))
        return result.score


@dataclass(frozen=True)
class _TrialEnd:
    """How one claimed trial ended for the worker loop."""

    number: int
    state: TrialState | None  # None: interrupted and re-queued
    abandoned: str | None = None
    stop: bool = False


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _run_trial(
    study: optuna.Study,
    storage: StudyStorage,
    func: _TrialFunction,
    heartbeat_interval: float,
) -> _TrialEnd:
    """Claim one trial (a queued one first), run it and record its end in the storage.

    Optuna's ``study.optimize`` would record an interrupted trial as failed and log its
    traceback; this loop uses Optuna's ask-and-tell interface instead so that an interrupt
    (a KeyboardInterrupt from the objective, see :class:`_TrialFunction`) re-queues the trial.
    """
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for optimize(); Heartbeat sends them here.
        warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
        trial = study.ask()
    number = trial.number
    with Heartbeat(storage, trial._trial_id, heartbeat_interval) as heartbeat:
        try:
            value = func(trial)
        except KeyboardInterrupt:
            # The heartbeat row is deleted with the re-queue: no beat may update it meanwhile.
            heartbeat.stop()
            attempts = int(trial.user_attrs.get("requeued", 0)) + 1
            # Set while the trial is still ours: whoever claims it next sees it and starts over.
            trial.set_user_attr("requeued", attempts)
            if storage.requeue_trial(trial._trial_id):
                log.warning("trial %d interrupted; it is back in the queue (not failed)", number)
            return _TrialEnd(number, None)
        except optuna.TrialPruned as err:
            study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d pruned: %s", number, err)
            return _TrialEnd(number, TrialState.PRUNED)
        except _AbandonedError:
            study.tell(trial, state=TrialState.FAIL)
            return _TrialEnd(number, TrialState.FAIL, abandoned=func.abandoned, stop=func.stop)
        except TRIAL_ERRORS as err:
            # The trial fails, the search goes on; the reason goes to the results table.
            trial.set_user_attr("error", _error_text(err))
            study.tell(trial, state=TrialState.FAIL)
            log.warning(
                "trial %d failed: %s",
                number,
                _error_text(err),
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return _TrialEnd(number, TrialState.FAIL)
        except Exception as err:
            # A programming error: record the trial as failed, then stop the search with it.
            trial.set_user_attr("error", _error_text(err))
            study.tell(trial, state=TrialState.FAIL)
            raise
    study.tell(trial, value)
    log.info("trial %d complete: score %.6g, parameters %s", number, value, trial.params)
    return _TrialEnd(number, TrialState.COMPLETE)


def _worker_info(job: WorkerJob) -> dict[str, Any]:
    info: dict[str, Any] = {
        "index": job.worker_index,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "backend": job.backend,
    }
    if job.backend == "ray":
        import ray  # only Ray workers reach this line

        info["node_id"] = ray.get_runtime_context().get_node_id()
    return info


def _fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def run_worker(job: WorkerJob, should_stop: Callable[[], bool] | None = None) -> WorkerSummary:
    """Run trials of the study one at a time until it has its target of finished trials.

    :param should_stop: polled before each trial: a driver's request to stop (SIGINT and SIGTERM
        to this process stop it too, see :mod:`stairways.tuning.interrupts`)
    """
    with InterruptGuard(should_stop) as guard:
        return _work(job, guard)


def _work(job: WorkerJob, guard: InterruptGuard) -> WorkerSummary:
    setup = job.setup
    space = setup.space
    storage = open_storage(setup.storage_url, space.heartbeat)
    study = load_study(setup, job.worker_index, storage=storage)
    target = space.target_trials()
    info = _worker_info(job)
    ran: list[int] = []
    failures: list[int] = []
    requeued: list[int] = []
    consecutive_failures = 0
    reason = f"reached the bound of {job.max_trials} trials for one worker"
    for _ in range(job.max_trials):
        if guard.stopped:
            break
        _fail_stale(study)
        state = progress(study)
        if state.finished >= target:
            reason = f"the study has its {target} finished trials"
            break
        if space.sampler == "grid" and state.waiting == 0:
            reason = "no queued grid point is left"
            break
        if space.sampler == "tpe" and state.finished + state.running >= target:
            reason = "the remaining trials are running in other workers"
            break
        func = _TrialFunction(job, target, info, guard)
        end = _run_trial(study, storage, func, space.heartbeat.interval)
        gc.collect()
        if end.state is None:
            requeued.append(end.number)
            break
        if end.abandoned is not None:
            if end.stop:
                reason = end.abandoned
                break
            log.info("trial %s abandoned: %s", end.number, end.abandoned)
            continue
        ran.append(end.number)
        if end.state == TrialState.FAIL:
            failures.append(end.number)
            consecutive_failures += 1
            if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                reason = f"{consecutive_failures} trials failed in a row"
                log.error("worker %d stops: %s", job.worker_index, reason)
                break
        else:
            consecutive_failures = 0
    interrupted: str | None = None
    if guard.stopped:
        interrupted = signal_name(guard.signum) if guard.signum is not None else "stop request"
        reason = f"interrupted ({interrupted})"
        if requeued:
            reason += f"; trial {requeued[0]} went back to the queue"
    log.info("worker %d ran trials %s and stopped: %s", job.worker_index, ran, reason)
    return WorkerSummary(
        worker_index=job.worker_index,
        host=str(info["host"]),
        pid=int(info["pid"]),
        backend=job.backend,
        trials=tuple(ran),
        stop_reason=reason,
        node_id=str(info.get("node_id", "")),
        failures=tuple(failures),
        requeued=tuple(requeued),
        interrupted=interrupted,
    )


def jobs_for(
    setup: StudySetup, objective: Objective, workers: int, backend: str
) -> Sequence[WorkerJob]:
    """One job per worker."""
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    bound = max(10, 2 * setup.space.target_trials())
    return [
        WorkerJob(
            setup=setup, objective=objective, worker_index=i, backend=backend, max_trials=bound
        )
        for i in range(workers)
    ]
