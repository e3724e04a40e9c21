"""Studies in shared storage: create or resume them, queue grid points, count their trials.

How a search runs (``stairways tune`` calls :func:`~stairways.tuning.search.run_search`):

1. :func:`prepare_study` opens the study in its storage (an SQLite file under the output
   directory by default, or a PostgreSQL database that several machines share, see
   :mod:`stairways.tuning.storage`), creating it on first use and otherwise checking that the
   search space, objective, budget and base config are the ones it was created with. Running
   trials whose workers stopped sending heartbeats are marked failed (with ``reclaim_running``
   every running trial is, for when the operator knows no other worker is alive). For a grid,
   every point that has no finished (complete or pruned) trial and is not already queued or
   running is queued.
2. Workers (local processes or Ray tasks, see :mod:`stairways.tuning.backends`) run
   :func:`~stairways.tuning.worker.run_worker`: one trial at a time until the study holds the
   wanted number of finished trials, or until they are interrupted, when the trial they were
   running goes back to the queue.

A killed search therefore resumes where it stopped: finished trials are never rerun; failed or
stale grid points are queued again by the next :func:`prepare_study`; an interrupted trial is
already queued; within one invocation a grid point is tried at most once, so a trial that fails
deterministically cannot loop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.pruners import BasePruner, MedianPruner, NopPruner, ThresholdPruner
from optuna.samplers import BaseSampler, GridSampler, TPESampler
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from stairways.errors import ConfigError, MissingResourceError
from stairways.tuning.settings import PrunerConfig
from stairways.tuning.space import SearchSpace, grid_points
from stairways.tuning.storage import StudyStorage, open_storage

log = logging.getLogger(__name__)

__all__ = [
    "FINISHED",
    "StudyProgress",
    "StudySetup",
    "all_trials",
    "build_pruner",
    "build_sampler",
    "fingerprint_text",
    "grid_key",
    "load_study",
    "point_of",
    "prepare_study",
    "progress",
    "trial_dir",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


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


def load_study(
    setup: StudySetup, worker_index: int = 0, storage: StudyStorage | None = None
) -> optuna.Study:
    """Load an existing study with this worker's sampler and the configured pruner.

    :param storage: an already open storage of the study (None: open ``setup.storage_url``)
    """
    if storage is None:
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


def point_of(t: FrozenTrial) -> str | None:
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
        key = point_of(t)
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


def all_trials(setup: StudySetup) -> list[FrozenTrial]:
    """Every trial of the study, abandoned ones excluded."""
    study = load_study(setup)
    return [t for t in study.get_trials() if "abandoned" not in t.user_attrs]
