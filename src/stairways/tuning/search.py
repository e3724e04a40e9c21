"""A whole search: prepare the study, run the workers, write the results.

Files written under the output directory:

- ``study.db``: the Optuna study (unless ``--storage`` names another database)
- ``trials/trial_NNNN/``: each trial's run directories
- ``results.csv`` and ``results.html``: the trial table (sortable) and a parallel-coordinates plot
- ``best_config.yaml``: the best passing trial's parameters applied to the base config, a
  complete config file that ``stairways train --config`` loads (only when a trial passed)
- ``summary.json``: counts, the best trial, the seed-noise verdict and the file list
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stairways.config import dump_config, load_config
from stairways.errors import StoppedBySignalError
from stairways.tuning.backends import make_backend
from stairways.tuning.objective import Objective, assert_validation_split
from stairways.tuning.report import (
    NoiseVerdict,
    TrialRecord,
    noise_verdict,
    ranked,
    records_of,
    results_frame,
    write_atomic,
    write_results_csv,
    write_results_html,
)
from stairways.tuning.space import SearchSpace, check_values, decode, trial_config
from stairways.tuning.storage import default_storage_url
from stairways.tuning.study import (
    StudyProgress,
    StudySetup,
    all_trials,
    fingerprint_text,
    load_study,
    prepare_study,
    progress,
)
from stairways.tuning.worker import WorkerSummary, jobs_for
from stairways.writable import require_writable_dir

log = logging.getLogger(__name__)

__all__ = [
    "SearchOutcome",
    "SearchRequest",
    "run_search",
    "write_best_config",
    "write_reports",
]

BEST_CONFIG_FILE = "best_config.yaml"


@dataclass(frozen=True)
class SearchRequest:
    """Everything ``stairways tune`` decided from its flags.

    :param space: parameters and settings (flags already applied)
    :param out_dir: output directory (study file, trials, reports)
    :param study_name: name of the study in its storage
    :param storage_url: SQLAlchemy URL; None means ``out_dir/study.db``
    :param workers: parallel workers
    :param backend: ``local`` (processes) or ``ray``
    :param address: Ray cluster address (None: a private local head)
    :param base_config: the config file every trial starts from (None: defaults)
    :param base_overrides: dotted overrides applied before the trial's parameters
    :param reclaim_running: mark trials left running by dead workers failed at once
    """

    space: SearchSpace
    out_dir: Path
    study_name: str
    storage_url: str | None = None
    workers: int = 1
    backend: str = "local"
    address: str | None = None
    base_config: Path | None = None
    base_overrides: Mapping[str, Any] = field(default_factory=dict)
    reclaim_running: bool = False

    def setup(self) -> StudySetup:
        """The study's storage, name, space and identity."""
        base = load_config(self.base_config, self.base_overrides)
        return StudySetup(
            storage_url=self.storage_url or default_storage_url(self.out_dir),
            study_name=self.study_name,
            space=self.space,
            out_dir=self.out_dir.resolve(),
            base_fingerprint=fingerprint_text(dump_config(base)),
        )


@dataclass(frozen=True)
class SearchOutcome:
    """What a search produced."""

    study_name: str
    storage_url: str
    progress: StudyProgress
    records: tuple[TrialRecord, ...]
    verdict: NoiseVerdict
    best: TrialRecord | None
    files: Mapping[str, Path]
    workers: tuple[WorkerSummary, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether at least one trial completed and met the pass criteria."""
        return self.best is not None


def run_search(request: SearchRequest, objective: Objective) -> SearchOutcome:
    """Prepare (or resume) the study, run the workers, then write the reports."""
    space = request.space
    require_writable_dir(request.out_dir, "--out")
    base = load_config(request.base_config, request.base_overrides)
    assert_validation_split(space.objective.split, base)
    check_values(space, request.base_config, request.base_overrides, f"search space {space.name}")
    setup = request.setup()
    if request.backend == "ray" and request.address and setup.storage_url.startswith("sqlite"):
        log.warning(
            "the study is an SQLite file (%s): Ray tasks on other machines cannot reach it; "
            "use --storage postgresql://... for a multi-machine cluster",
            setup.storage_url,
        )
    backend = make_backend(request.backend, request.address, request.workers)
    backend.check()
    request.out_dir.mkdir(parents=True, exist_ok=True)
    prepare_study(setup, reclaim_running=request.reclaim_running)
    summaries = backend.run(jobs_for(setup, objective, request.workers, backend.name))
    outcome = write_reports(request, setup, summaries)
    stopped = [s for s in summaries if s.interrupted]
    if stopped:
        raise _interrupted(outcome, stopped)
    return outcome


def _interrupted(outcome: SearchOutcome, stopped: Sequence[WorkerSummary]) -> StoppedBySignalError:
    """The error that ends an interrupted search: what was kept and how to resume."""
    requeued = sorted(n for s in stopped for n in s.requeued)
    signals = {s.interrupted for s in stopped}
    signum = signal.SIGTERM if "SIGTERM" in signals else signal.SIGINT
    p = outcome.progress
    kept = (
        f"trial{'s' if len(requeued) > 1 else ''} {', '.join(map(str, requeued))} went back to "
        "the queue (not failed)"
        if requeued
        else "no trial was running"
    )
    return StoppedBySignalError(
        f"the search was interrupted ({', '.join(sorted(str(x) for x in signals))}): {kept}; "
        f"the study holds {p.complete} complete, {p.pruned} pruned, {p.failed} failed and "
        f"{p.waiting} queued trials, and the reports in {outcome.files['csv'].parent} show "
        "them. Run the same command again to resume",
        signum=int(signum),
    )


def write_best_config(
    request: SearchRequest, params: Mapping[str, Any], trial: TrialRecord, path: Path
) -> Path:
    """The base config with the best trial's parameters, as a complete, loadable config file."""
    name = f"{request.study_name}_best"
    cfg = trial_config(request.base_config, {**request.base_overrides, "name": name}, params)
    lines = [
        f"# Best trial of study {request.study_name} (trial {trial.number}, score {trial.score}).",
        "# Parameters it chose:",
        *(f"#   {k}: {json.dumps(v, default=str)}" for k, v in params.items()),
        f"# Trials trained {request.space.budget.total_timesteps or 'the base config budget of'} "
        "timesteps each; training.total_timesteps below is the base config's, not the tuning "
        "budget.",
    ]
    write_atomic(path, "\n".join(lines) + "\n" + dump_config(cfg))
    load_config(path)  # what we promise: the file loads as it is
    return path


def write_reports(
    request: SearchRequest,
    setup: StudySetup | None = None,
    summaries: Sequence[WorkerSummary] = (),
) -> SearchOutcome:
    """Write results.csv, results.html, summary.json and (if a trial passed) best_config.yaml."""
    require_writable_dir(request.out_dir, "--out")
    setup = setup or request.setup()
    space = request.space
    trials = all_trials(setup)
    state = progress(load_study(setup))
    records = records_of(trials)
    verdict = noise_verdict(records, space.objective.direction, space.budget.seeds_per_trial)
    order = ranked(records, space.objective.direction)
    best = order[0] if order else None
    out = request.out_dir
    frame = results_frame(records, space)
    files: dict[str, Path] = {"csv": write_results_csv(frame, out / "results.csv")}
    if best is not None:
        params = decode(space, best.params)
        files["best_config"] = write_best_config(request, params, best, out / BEST_CONFIG_FILE)
    else:
        stale = out / BEST_CONFIG_FILE
        if stale.exists():
            # A best config from an earlier invocation would no longer describe this study.
            stale.unlink()
        log.warning("no trial completed and met the pass criteria; no best config written")
    summary: dict[str, Any] = {
        "study": setup.study_name,
        "storage": setup.storage_url,
        "space": space.name,
        "sampler": space.sampler,
        "objective": f"{space.objective.direction} {space.objective.metric} on "
        f"split {space.objective.split}",
        "budget": space.budget.model_dump(mode="json"),
        "target_trials": space.target_trials(),
        "complete": state.complete,
        "pruned": state.pruned,
        "failed": state.failed,
        "running": state.running,
        "queued": state.waiting,
        "passed": sum(1 for r in records if r.passed),
        "best_trial": best.number if best else None,
        "best_score": best.score if best else None,
        "best_params": dict(best.params) if best else None,
        "seed_noise": verdict.message,
    }
    files["html"] = write_results_html(
        frame, records, space, verdict, out / "results.html", summary
    )
    summary["files"] = {k: str(v) for k, v in files.items()}
    summary["workers"] = [
        {
            "index": s.worker_index,
            "backend": s.backend,
            "host": s.host,
            "pid": s.pid,
            "trials": list(s.trials),
            "stop_reason": s.stop_reason,
        }
        for s in summaries
    ]
    files["summary"] = write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return SearchOutcome(
        study_name=setup.study_name,
        storage_url=setup.storage_url,
        progress=state,
        records=tuple(records),
        verdict=verdict,
        best=best,
        files=files,
        workers=tuple(summaries),
    )
