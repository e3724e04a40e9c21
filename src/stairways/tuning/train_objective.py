"""The real objective: train at a fixed budget, score on the validation split.

For each seed of a trial, :class:`TrainingObjective` trains an ordinary run directory
``<out>/trials/trial_NNNN/<study>_tNNNN_seed<s>/`` from the base config with the trial's
parameters, the tuning budget and the seed applied, then evaluates its final model on the
validation split with :func:`stairways.evaluation.runner.evaluate_run` (so the trial's trace,
metrics.json and gates.json sit where ``stairways evaluate`` would put them, and ``stairways
audit rewards`` can read them). The trial's score is the mean over seeds of the objective metric.

During training, every ``eval_every`` timesteps the checkpoint the trainer has just saved is
replayed on the validation split and its metric is reported as an intermediate score, which is
what lets the pruner stop hopeless trials early. Intermediate scores of seed ``k`` are reported
at steps ``k * total_timesteps + t`` so that trials are compared step for step.

The test split is never read: the objective refuses a protected split before training.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from stable_baselines3.common.base_class import BaseAlgorithm

from stairways.analysis.reward_audit import drawdown_endings
from stairways.config import StairwaysConfig, load_config
from stairways.data.normalise import Normaliser
from stairways.data.panel import SessionPanel
from stairways.errors import StairwaysError
from stairways.evaluation.metrics import compute_metrics
from stairways.evaluation.runner import (
    CheckpointRef,
    evaluate_policy_on_panel,
    evaluate_run,
    open_panel,
)
from stairways.evaluation.traces import read_run_trace
from stairways.training.rundir import RunDirectory
from stairways.training.trainer import TrainOptions, train
from stairways.tuning.objective import (
    Reporter,
    TrialRequest,
    TrialResult,
    assert_validation_split,
)

log = logging.getLogger(__name__)

__all__ = ["TrainingObjective", "ValidationScorer", "trace_metrics"]


def trace_metrics(cfg: StairwaysConfig, trace: Any) -> dict[str, float]:
    """Evaluation metrics of a trace plus the drawdown-termination rate (None values dropped)."""
    ev = cfg.evaluation
    metrics = compute_metrics(
        trace,
        window_minutes=ev.sharpe_window_minutes,
        trading_days_per_year=ev.trading_days_per_year,
    ).to_dict()
    out = {k: float(v) for k, v in metrics.items() if v is not None}
    endings = drawdown_endings(trace, cfg.env.drawdown_cap)
    out["drawdown_termination_rate"] = float(np.mean(endings)) if len(endings) else 0.0
    return out


class ValidationScorer:
    """After each periodic checkpoint, replay it on the validation split and report the metric.

    The trainer calls it (``TrainOptions.on_checkpoint``) right after saving the checkpoint, with
    either training backend, so the checkpoint's files, VecNormalize statistics included, are on
    disk. ``training.checkpoint_every`` is the tuning ``eval_every``.
    """

    def __init__(
        self,
        cfg: StairwaysConfig,
        run_dir: Path,
        split: str,
        metric: str,
        reporter: Reporter,
        step_offset: int,
    ) -> None:
        self.cfg = cfg
        self.run = RunDirectory(run_dir)
        self.split = split
        self.metric = metric
        self.reporter = reporter
        self.step_offset = step_offset
        self.panel: SessionPanel | None = None

    def __call__(self, model: BaseAlgorithm, t: int) -> None:
        files = self.run.checkpoint_files(t)
        if not files.model.is_file():
            raise StairwaysError(f"no checkpoint at {files.model} to score")
        if self.panel is None:
            normaliser = Normaliser.load(self.run.normaliser_path)
            self.panel = open_panel(self.cfg, self.split, normaliser)
        result = evaluate_policy_on_panel(
            self.cfg,
            self.panel,
            CheckpointRef(f"checkpoint_{t}", files),
            run=str(self.run.path),
            model=model,
        )
        value = trace_metrics(self.cfg, result.trace).get(self.metric)
        if value is None:
            log.warning("%s is undefined at %d timesteps; no intermediate score", self.metric, t)
            return
        log.info("intermediate %s on %s at %d timesteps: %.6g", self.metric, self.split, t, value)
        self.reporter.report(self.step_offset + t, value)


@dataclass(frozen=True)
class TrainingObjective:
    """Train one run per seed at a fixed budget and score it on the validation split.

    :param base_config: config file the trials start from (None: the defaults)
    :param base_overrides: dotted overrides applied before the trial's parameters
    :param study_name: used to name the trial runs
    :param split: the validation split trials are scored on (never a protected split)
    :param metric: evaluation metric that is the score
    :param total_timesteps: budget of each seed's run (None: the base config's)
    :param eval_every: timesteps between intermediate scores (None: a quarter of the budget)
    """

    base_config: Path | None
    study_name: str
    split: str = "validation"
    metric: str = "episode_reward_mean"
    total_timesteps: int | None = None
    eval_every: int | None = None
    base_overrides: Mapping[str, Any] = field(default_factory=dict)

    def config(self, request: TrialRequest, seed: int) -> StairwaysConfig:
        """The resolved config of one seed's run."""
        base = load_config(self.base_config, self.base_overrides)
        budget = self.total_timesteps or base.training.total_timesteps
        every = self.eval_every or max(1, budget // 4)
        overrides = {
            **self.base_overrides,
            **request.params,
            "name": f"{self.study_name}_t{request.number:04d}",
            "training.seed": seed,
            "training.total_timesteps": budget,
            "training.checkpoint_every": every,
            "training.runs_dir": str(request.trial_dir),
        }
        cfg = load_config(self.base_config, overrides)
        assert_validation_split(self.split, cfg)
        return cfg

    def __call__(self, request: TrialRequest) -> TrialResult:
        """Train and score every seed of the trial."""
        scores: list[float] = []
        per_seed: list[dict[str, float]] = []
        run_dirs: list[str] = []
        for k, seed in enumerate(request.seeds):
            cfg = self.config(request, seed)
            budget = cfg.training.total_timesteps
            run_dir = request.trial_dir / f"{cfg.name}_seed{seed}"
            scorer = ValidationScorer(
                cfg, run_dir, self.split, self.metric, request.reporter, step_offset=k * budget
            )
            result = train(
                cfg,
                TrainOptions(
                    run_dir=run_dir,
                    overrides=dict(request.params),
                    command=["stairways", "tune", f"(study {self.study_name})"],
                    on_checkpoint=[scorer],
                ),
            )
            run_dirs.append(str(result.run_dir))
            if result.status != "completed":
                # The speed bump stopped a run that was going nowhere: the trial is hopeless.
                raise optuna.TrialPruned(
                    f"seed {seed} stopped early ({result.status}): {result.stop_reason}"
                )
            # A trial is scored by its metric and the pass criteria, not by the gates: no
            # baseline replays, and so no gate that compares with them.
            gates = cfg.evaluation.gates.model_copy(update={"excess": False})
            evaluation = cfg.evaluation.model_copy(update={"baselines": False, "gates": gates})
            evaluate_run(
                result.run_dir, checkpoint="final", split=self.split, evaluation=evaluation
            )
            metrics = trace_metrics(cfg, read_run_trace(result.run_dir, self.split, "final"))
            value = metrics.get(self.metric)
            if value is None or not math.isfinite(value):
                raise StairwaysError(
                    f"{self.metric} is undefined for seed {seed} of trial {request.number} "
                    f"(run {result.run_dir}); choose another objective metric"
                )
            scores.append(value)
            per_seed.append(metrics)
        names = set.intersection(*(set(m) for m in per_seed))
        mean = {n: float(np.mean([m[n] for m in per_seed])) for n in sorted(names)}
        return TrialResult(seed_scores=tuple(scores), metrics=mean, run_dirs=tuple(run_dirs))
