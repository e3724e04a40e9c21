"""What a trial runs: the objective contract, pass criteria, and the training objective.

The study runner (:mod:`stairways.tuning.study`) does not care what a trial does: it hands an
:class:`Objective` a :class:`TrialRequest` (the trial's parameters, seeds, a directory and a
:class:`Reporter` for intermediate scores) and gets a :class:`TrialResult` back. The real
objective, :class:`TrainingObjective`, trains one run per seed at a fixed budget and scores it
on the validation split; tests of the study mechanics pass cheap deterministic objectives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stairways.errors import SplitOverlapError
from stairways.tuning.settings import PassCriteria

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig

__all__ = [
    "CRITERIA_METRICS",
    "Objective",
    "Reporter",
    "TrialRequest",
    "TrialResult",
    "assert_validation_split",
    "check_criteria",
]

# The metrics the pass criteria read; every objective must report them.
CRITERIA_METRICS: tuple[str, ...] = (
    "mean_episode_length",
    "episode_reward_mean",
    "drawdown_termination_rate",
)


class Reporter(Protocol):
    """Receives intermediate validation scores; raises ``optuna.TrialPruned`` to stop a trial."""

    def report(self, step: int, value: float) -> None:
        """Record ``value`` at ``step`` (monotonic within a trial); may stop the trial.

        :param step: position of the score (for training: timesteps, counted across seeds)
        :param value: the intermediate score, in the objective's direction
        """


@dataclass(frozen=True)
class TrialRequest:
    """One trial's work order.

    :param number: the trial's number in the study
    :param params: config values by dotted path (decoded, ready for ``load_config``)
    :param seeds: training seeds to run, in order
    :param trial_dir: a directory owned by this trial (run directories go below it)
    :param reporter: where intermediate scores go
    """

    number: int
    params: Mapping[str, Any]
    seeds: tuple[int, ...]
    trial_dir: Path
    reporter: Reporter


@dataclass(frozen=True)
class TrialResult:
    """What a finished trial measured.

    :param seed_scores: the objective metric of each seed, in seed order
    :param metrics: mean over seeds of every reported metric (must include CRITERIA_METRICS)
    :param run_dirs: the run directory of each seed
    """

    seed_scores: tuple[float, ...]
    metrics: Mapping[str, float]
    run_dirs: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.seed_scores:
            raise ValueError("a trial result needs at least one seed score")
        bad = [s for s in self.seed_scores if not math.isfinite(s)]
        if bad:
            raise ValueError(f"seed scores must be finite numbers, got {list(self.seed_scores)}")

    @property
    def score(self) -> float:
        """The trial's value: the mean of the seed scores."""
        return math.fsum(self.seed_scores) / len(self.seed_scores)

    @property
    def seed_std(self) -> float | None:
        """Sample standard deviation (ddof=1) of the seed scores; None with a single seed."""
        n = len(self.seed_scores)
        if n < 2:
            return None
        mean = self.score
        return math.sqrt(math.fsum((s - mean) ** 2 for s in self.seed_scores) / (n - 1))


class Objective(Protocol):
    """Runs one trial. Must be picklable: it travels to worker processes and Ray tasks."""

    def __call__(self, request: TrialRequest) -> TrialResult:
        """Run the trial and return what it measured."""


def check_criteria(metrics: Mapping[str, float], criteria: PassCriteria) -> dict[str, bool]:
    """Each pass criterion and whether the metrics meet it (a missing metric fails it)."""

    def value(name: str) -> float | None:
        v = metrics.get(name)
        return None if v is None or not math.isfinite(float(v)) else float(v)

    length = value("mean_episode_length")
    reward = value("episode_reward_mean")
    dd_rate = value("drawdown_termination_rate")
    return {
        f"mean_episode_length >= {criteria.min_mean_episode_length:g}": (
            length is not None and length >= criteria.min_mean_episode_length
        ),
        f"episode_reward_mean >= {criteria.min_episode_reward_mean:g}": (
            reward is not None and reward >= criteria.min_episode_reward_mean
        ),
        f"drawdown_termination_rate < {criteria.max_drawdown_termination_rate:g}": (
            dd_rate is not None and dd_rate < criteria.max_drawdown_termination_rate
        ),
    }


def assert_validation_split(split: str, cfg: StairwaysConfig) -> None:
    """Refuse to score trials on a protected (test) split or on the training split.

    Tuning on test data leaks it into the model choice; scoring on the training split measures
    fit, not generalisation. The split must exist and share no day with a protected split.
    """
    data = cfg.data
    if split == "test" or split in data.protected_splits:
        raise SplitOverlapError(
            f"tuning scores trials on split {split!r}, which is protected "
            f"({', '.join(data.protected_splits)}); tuning must never see the test data: "
            "score on a validation split (objective.split)"
        )
    if split not in data.splits:
        raise SplitOverlapError(
            f"tuning split {split!r} is not one of the config's splits {sorted(data.splits)}; "
            "define a validation split under data.splits"
        )
    if split == cfg.training.split:
        raise SplitOverlapError(
            f"tuning split {split!r} is the training split; score trials on held-out data"
        )
    target = data.splits[split]
    for name in (*data.protected_splits, cfg.training.split):
        other = data.splits.get(name)
        if other is not None and target.overlaps(other):
            raise SplitOverlapError(
                f"tuning split {split!r} ({target.start}..{target.end}) overlaps split {name!r} "
                f"({other.start}..{other.end}); it must be held out from training and test"
            )
