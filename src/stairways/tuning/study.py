"""Studies in shared storage: create or resume, queue grid points, and the worker loop.

How a search runs (``stairways tune`` calls :func:`run_search`):

1. :func:`prepare_study` opens the study in its storage (an SQLite file under the output
   directory by default, or any SQLAlchemy URL such as ``postgresql://...`` that several
   machines share), creating it on first use and otherwise checking that the search space,
   objective, budget and base config are the ones it was created with. Running trials whose
   workers stopped sending heartbeats are marked failed (with ``reclaim_running`` every running
   trial is, for when the operator knows no other worker is alive). For a grid, every point that
   has no finished (complete or pruned) trial and is not already queued or running is queued.
2. Workers (local processes or Ray tasks, see :mod:`stairways.tuning.backends`) run
   :func:`run_worker`: each loads the study and runs one trial at a time through Optuna until the
   study holds the wanted number of finished trials. Grid workers only take queued points, and a
   queued point is handed to one worker only (Optuna moves it from waiting to running in one
   conditional update), so no grid point runs twice. TPE workers ask the sampler.
3. A trial that a worker creates when no work is left (a race between workers for the last
   point) is abandoned at once: it is recorded as failed with the user attribute ``abandoned``
   and does not count.

A killed search therefore resumes where it stopped: finished trials are never rerun; failed or
stale grid points are queued again by the next :func:`prepare_study`; within one invocation a
grid point is tried at most once, so a trial that fails deterministically cannot loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import socket
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.pruners import BasePruner, MedianPruner, NopPruner, ThresholdPruner
from optuna.samplers import BaseSampler, GridSampler, TPESampler
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from stairways.errors import (
    ConfigError,
    InputError,
    MissingResourceError,
    StairwaysError,
    TemporaryError,
)
from stairways.tuning.objective import Objective, TrialRequest, TrialResult, check_criteria
from stairways.tuning.settings import HeartbeatConfig, PrunerConfig
from stairways.tuning.space import Label, SearchSpace, decode, grid_points, suggest

log = logging.getLogger(__name__)

__all__ = [
    "STORAGE_FILE",
    "TRIAL_ERRORS",
    "StudyProgress",
    "StudySetup",
    "WorkerJob",
    "WorkerSummary",
    "build_pruner",
    "build_sampler",
    "default_storage_url",
    "grid_key",
    "load_study",
    "open_storage",
    "prepare_study",
    "progress",
    "run_worker",
    "trial_dir",
]

STORAGE_FILE = "study.db"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
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


def default_storage_url(out_dir: Path) -> str:
    """The SQLite study file under ``out_dir`` as a SQLAlchemy URL (absolute path)."""
    return f"sqlite:///{(out_dir / STORAGE_FILE).resolve()}"


def open_storage(url: str, heartbeat: HeartbeatConfig) -> RDBStorage:
    """Open (creating tables on first use) the relational study storage at ``url``.

    :param url: SQLAlchemy URL, e.g. ``sqlite:////abs/path/study.db`` or ``postgresql://...``
    :param heartbeat: how often running trials prove they are alive
    """
    engine_kwargs: dict[str, Any] = {}
    storage_cls: type[RDBStorage] = RDBStorage
    lock: Path | None = None
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # Several worker processes write one file: wait for its lock instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 60}}
        storage_cls, lock = _SQLiteStorage, path.with_name(path.name + ".lock")
    try:
        with warnings.catch_warnings(), _file_lock(lock):
            # Heartbeats are marked experimental by Optuna; they are what detects dead workers.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Under the lock: two drivers creating a new study file would race on its tables.
            storage = storage_cls(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat.interval,
                grace_period=heartbeat.grace_period,
            )
    except sqlalchemy.exc.ArgumentError as err:
        raise InputError(f"--storage {url!r} is not a SQLAlchemy database URL ({err})") from None
    except ModuleNotFoundError as err:
        raise MissingResourceError(
            f"the database driver for storage {url!r} is not installed ({err}); install it "
            "(for PostgreSQL: the psycopg2 package) or use an sqlite:/// URL"
        ) from None
    except sqlalchemy.exc.OperationalError as err:
        raise TemporaryError(f"could not open the study storage {url!r}: {err}") from None
    return storage


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (no lock when ``path`` is None)."""
    if path is None:
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _SQLiteStorage(RDBStorage):
    """Optuna's relational storage with trial state changes made atomic across processes.

    Optuna claims a queued trial by reading it ``FOR UPDATE`` and then marking it running.
    SQLite ignores ``FOR UPDATE`` and pysqlite begins a transaction only at the first write,
    so two workers could both read the same waiting trial and both run it. A file lock beside
    the study file makes the read, the check and the write one step. (PostgreSQL honours the
    row lock, so other URLs use the plain storage.)
    """

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        """Change a trial's state (and values) while holding the study's file lock."""
        url = str(self.url)
        lock = Path(url.removeprefix("sqlite:///") + ".lock")
        with _file_lock(lock):
            return super().set_trial_state_values(trial_id, state, values)


def build_sampler(space: SearchSpace, worker_index: int = 0) -> BaseSampler:
    """GridSampler for grids, TPE otherwise (seeded per worker so workers explore apart)."""
    if space.sampler == "grid":
        grid = {name: list(spec.labels) for name, spec in space.parameters.items()}  # type: ignore[union-attr]
        return GridSampler(grid, seed=space.sampler_seed)
    return TPESampler(
        seed=space.sampler_seed + worker_index, n_startup_trials=space.tpe_startup_trials
    )


def build_pruner(cfg: PrunerConfig) -> BasePruner:
    """The configured pruner."""
    if cfg.kind == "median":
        return MedianPruner(
            n_startup_trials=cfg.n_startup_trials, n_warmup_steps=cfg.n_warmup_steps
        )
    if cfg.kind == "threshold":
        return ThresholdPruner(lower=cfg.lower, upper=cfg.upper, n_warmup_steps=cfg.n_warmup_steps)
    return NopPruner()


@dataclass(frozen=True)
class StudySetup:
    """Where a study lives and what it is.

    :param storage_url: SQLAlchemy URL of the shared storage
    :param study_name: the study's name in that storage
    :param space: parameters and settings
    :param out_dir: where trial directories and reports go
    :param base_fingerprint: digest of the resolved base config (a resumed study must match)
    """

    storage_url: str
    study_name: str
    space: SearchSpace
    out_dir: Path
    base_fingerprint: str = ""

    def identity(self) -> dict[str, Any]:
        """What must not change between the runs of one study."""
        s = self.space
        return {
            "sampler": s.sampler,
            "parameters": {k: v.model_dump(mode="json") for k, v in s.parameters.items()},
            "objective": s.objective.model_dump(mode="json"),
            "budget": s.budget.model_dump(mode="json"),
            "base_config_sha256": self.base_fingerprint,
        }


def fingerprint_text(text: str) -> str:
    """SHA-256 of a text (used for the resolved base config)."""
    return hashlib.sha256(text.encode()).hexdigest()


def load_study(setup: StudySetup, worker_index: int = 0) -> optuna.Study:
    """Load an existing study with this worker's sampler and the configured pruner."""
    storage = open_storage(setup.storage_url, setup.space.heartbeat)
    try:
        return optuna.load_study(
            study_name=setup.study_name,
            storage=storage,
            sampler=build_sampler(setup.space, worker_index),
            pruner=build_pruner(setup.space.pruner),
        )
    except KeyError:
        raise MissingResourceError(
            f"study {setup.study_name!r} does not exist in {setup.storage_url}; "
            "start it with `stairways tune`"
        ) from None


def grid_key(labels: Mapping[str, Any]) -> str:
    """Canonical text of a grid point (how queued and finished points are matched)."""
    return json.dumps(dict(labels), sort_keys=True)


@dataclass(frozen=True)
class StudyProgress:
    """Trial counts of a study by state (abandoned trials excluded from ``failed``)."""

    complete: int
    pruned: int
    failed: int
    running: int
    waiting: int
    abandoned: int

    @property
    def finished(self) -> int:
        """Trials that count towards the target: complete plus pruned."""
        return self.complete + self.pruned


def progress(study: optuna.Study) -> StudyProgress:
    """Count the study's trials by state."""
    counts = {state: 0 for state in TrialState}
    abandoned = 0
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.FAIL and "abandoned" in t.user_attrs:
            abandoned += 1
        else:
            counts[t.state] += 1
    return StudyProgress(
        complete=counts[TrialState.COMPLETE],
        pruned=counts[TrialState.PRUNED],
        failed=counts[TrialState.FAIL],
        running=counts[TrialState.RUNNING],
        waiting=counts[TrialState.WAITING],
        abandoned=abandoned,
    )


def _point_of(t: FrozenTrial) -> str | None:
    """The grid point a trial stands for (queued trials carry it as a user attribute)."""
    key = t.user_attrs.get("grid_point")
    if isinstance(key, str):
        return key
    return grid_key(t.params) if t.params else None


def prepare_study(setup: StudySetup, *, reclaim_running: bool = False) -> StudyProgress:
    """Create or resume the study, fail stale running trials and queue missing grid points.

    :param reclaim_running: mark every running trial failed (only when no worker is alive)
    """
    space = setup.space
    storage = open_storage(setup.storage_url, space.heartbeat)
    study = optuna.create_study(
        storage=storage,
        study_name=setup.study_name,
        direction=space.objective.direction,
        sampler=build_sampler(space),
        pruner=build_pruner(space.pruner),
        load_if_exists=True,
    )
    _check_identity(study, setup)
    _handle_running(study, storage, reclaim_running)
    if space.sampler == "grid":
        _queue_grid(study, space)
    state = progress(study)
    log.info(
        "study %s: %d complete, %d pruned, %d failed, %d running, %d queued; target %d",
        setup.study_name,
        state.complete,
        state.pruned,
        state.failed,
        state.running,
        state.waiting,
        space.target_trials(),
    )
    return state


def _check_identity(study: optuna.Study, setup: StudySetup) -> None:
    wanted = setup.identity()
    stored = study.user_attrs.get("identity")
    if stored is None:
        if study.get_trials(deepcopy=False):
            raise ConfigError(
                f"study {setup.study_name!r} in {setup.storage_url} has trials but no Stairways "
                "identity; it was not created by `stairways tune`: choose another --study-name"
            )
        study.set_user_attr("identity", wanted)
        study.set_user_attr("space_name", setup.space.name)
        return
    changed = sorted(k for k in wanted if stored.get(k) != wanted[k])
    if changed:
        raise ConfigError(
            f"study {setup.study_name!r} in {setup.storage_url} was created with a different "
            f"{', '.join(changed)}; its trials would not be comparable. Resume with the same "
            "space file, budget and base config, or start a new study with --study-name"
        )


def _handle_running(study: optuna.Study, storage: RDBStorage, reclaim: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if reclaim:
            # The operator says no worker is alive: these trials died with their process.
            storage.set_trial_user_attr(t._trial_id, "reclaimed", True)
            storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            log.warning("trial %d was running; marked failed (--reclaim-running)", t.number)
        else:
            log.warning(
                "trial %d is running elsewhere (its heartbeat is fresh); it is left alone. If its "
                "worker is dead, rerun after the grace period or with --reclaim-running",
                t.number,
            )


def _queue_grid(study: optuna.Study, space: SearchSpace) -> None:
    target = space.target_trials()
    done: set[str] = set()
    pending: set[str] = set()
    for t in study.get_trials(deepcopy=False):
        key = _point_of(t)
        if key is None:
            continue
        if t.state in FINISHED:
            done.add(key)
        elif t.state in (TrialState.WAITING, TrialState.RUNNING):
            pending.add(key)
    need = target - len(done) - len(pending - done)
    queued = 0
    for point in grid_points(space):
        if queued >= need:
            break
        key = grid_key(point)
        if key in done or key in pending:
            continue
        study.enqueue_trial(dict(point), user_attrs={"grid_point": key})
        queued += 1
    if queued:
        log.info("queued %d grid points (of %d in the grid)", queued, space.grid_size)


def trial_dir(out_dir: Path, number: int) -> Path:
    """The directory of trial ``number`` (its run directories go below it)."""
    return out_dir / "trials" / f"trial_{number:04d}"


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
    """What a worker did."""

    worker_index: int
    host: str
    pid: int
    backend: str
    trials: tuple[int, ...]
    stop_reason: str
    node_id: str = ""
    failures: tuple[int, ...] = field(default_factory=tuple)


class _OptunaReporter:
    """Reports intermediate scores to the Optuna trial and stops it when the pruner says so."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def report(self, step: int, value: float) -> None:
        """Record ``value`` at ``step``; raise TrialPruned when the trial is hopeless."""
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"intermediate score at step {step} is {value} (diverged)")
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned at step {step}: intermediate score {value:.6g} is hopeless "
                "compared with the other trials or the threshold"
            )


class _TrialFunction:
    """The function Optuna runs for one trial inside a worker."""

    def __init__(self, job: WorkerJob, target: int, worker_info: Mapping[str, Any]) -> None:
        self.job = job
        self.target = target
        self.worker_info = dict(worker_info)
        self.number: int | None = None
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
                if t.number == trial.number or _point_of(t) != key:
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
        self.number = trial.number
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
        seeds = tuple(space.budget.first_seed + k for k in range(space.budget.seeds_per_trial))
        request = TrialRequest(
            number=trial.number,
            params=params,
            seeds=seeds,
            trial_dir=trial_dir(setup.out_dir, trial.number),
            reporter=_OptunaReporter(trial),
        )
        try:
            result: TrialResult = self.job.objective(request)
        except TRIAL_ERRORS as err:
            # Optuna records the state only; keep the reason for the results table.
            trial.set_user_attr("error", f"{type(err).__name__}: {err}")
            raise
        criteria = check_criteria(result.metrics, space.criteria)
        trial.set_user_attr("seeds", list(seeds))
        trial.set_user_attr("seed_scores", list(result.seed_scores))
        trial.set_user_attr("seed_std", result.seed_std)
        trial.set_user_attr("metrics", {k: float(v) for k, v in result.metrics.items()})
        trial.set_user_attr("criteria", criteria)
        trial.set_user_attr("passed", all(criteria.values()))
        trial.set_user_attr("run_dirs", list(result.run_dirs))
        return result.score


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


def run_worker(job: WorkerJob) -> WorkerSummary:
    """Run trials of the study one at a time until it has its target of finished trials."""
    setup = job.setup
    space = setup.space
    study = load_study(setup, job.worker_index)
    target = space.target_trials()
    info = _worker_info(job)
    ran: list[int] = []
    failures: list[int] = []
    consecutive_failures = 0
    reason = f"reached the bound of {job.max_trials} trials for one worker"
    for _ in range(job.max_trials):
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
        func = _TrialFunction(job, target, info)
        study.optimize(func, n_trials=1, catch=TRIAL_ERRORS, gc_after_trial=True)
        if func.abandoned is not None:
            if func.stop:
                reason = func.abandoned
                break
            log.info("trial %s abandoned: %s", func.number, func.abandoned)
            continue
        if func.number is None:
            reason = "the study was stopped"
            break
        ran.append(func.number)
        if study.get_trials(deepcopy=False)[func.number].state == TrialState.FAIL:
            failures.append(func.number)
            consecutive_failures += 1
            if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                reason = f"{consecutive_failures} trials failed in a row"
                log.error("worker %d stops: %s", job.worker_index, reason)
                break
        else:
            consecutive_failures = 0
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
    )


def all_trials(setup: StudySetup) -> list[FrozenTrial]:
    """Every trial of the study, abandoned ones excluded."""
    study = load_study(setup)
    return [t for t in study.get_trials() if "abandoned" not in t.user_attrs]


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
