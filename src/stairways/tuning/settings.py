"""Settings of a hyperparameter search: sampler, objective, budget, pruner and pass criteria.

They live in the search-space file next to the parameters (see :mod:`stairways.tuning.space`),
so one YAML describes a whole study; command-line flags of ``stairways tune`` override them.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from stairways.configbase import Frozen

__all__ = [
    "BudgetConfig",
    "HeartbeatConfig",
    "ObjectiveConfig",
    "PassCriteria",
    "PrunerConfig",
    "SearchSettings",
]

# Metrics a trial can be scored on: the evaluation metrics of the validation replay.
ObjectiveMetric = Literal[
    "episode_reward_mean",
    "sharpe",
    "sortino",
    "sum_daily_returns",
    "mean_daily_pnl",
    "daily_sharpe",
    "win_rate",
    "max_drawdown",
]


class ObjectiveConfig(Frozen):
    """What a trial is scored on: one metric of a replay on a split that is not the test split."""

    metric: ObjectiveMetric = "episode_reward_mean"
    direction: Literal["maximize", "minimize"] = "maximize"
    split: str = Field(default="validation", description="Never a protected (test) split")


class BudgetConfig(Frozen):
    """The fixed training budget of each trial."""

    total_timesteps: int | None = Field(
        default=None, ge=1, le=10**10, description="None: the base config's training budget"
    )
    seeds_per_trial: int = Field(default=1, ge=1, le=64)
    first_seed: int = Field(default=0, ge=0, le=2**31 - 1)
    eval_every: int | None = Field(
        default=None,
        ge=1,
        le=10**10,
        description="Timesteps between intermediate validation scores; None: a quarter of the run",
    )


class PrunerConfig(Frozen):
    """How hopeless trials are stopped from their intermediate validation scores.

    ``median`` stops a trial whose score at a step is worse than the median of earlier trials at
    that step (after ``n_startup_trials`` finished trials and ``n_warmup_steps`` reports);
    ``threshold`` stops a trial whose score leaves [lower, upper]; ``none`` never stops one.
    """

    kind: Literal["median", "threshold", "none"] = "median"
    n_startup_trials: int = Field(default=2, ge=0, le=10_000)
    n_warmup_steps: int = Field(default=0, ge=0, le=10**10, description="In reported steps")
    lower: float | None = None
    upper: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.kind == "threshold" and self.lower is None and self.upper is None:
            raise ValueError("a threshold pruner needs lower, upper or both")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower {self.lower} exceeds upper {self.upper}")
        return self


class PassCriteria(Frozen):
    """What a trial must reach on the validation split to count as a candidate."""

    min_mean_episode_length: float = Field(default=80.0, ge=0.0, le=390.0)
    min_episode_reward_mean: float = Field(default=0.0, ge=-1e9, le=1e9)
    max_drawdown_termination_rate: float = Field(
        default=0.6, gt=0.0, le=1.0, description="The rate must stay strictly below this"
    )


class HeartbeatConfig(Frozen):
    """Liveness of running trials in the shared storage (Optuna's RDB heartbeat).

    A trial whose worker stopped sending heartbeats for ``grace_period`` seconds is stale: it is
    marked failed, and for a grid its point is queued again.
    """

    interval: int = Field(default=30, ge=1, le=3600, description="Seconds between heartbeats")
    grace_period: int = Field(default=120, ge=2, le=86_400, description="Seconds until stale")

    @model_validator(mode="after")
    def _grace_exceeds_interval(self) -> Self:
        if self.grace_period <= self.interval:
            raise ValueError(
                f"grace_period {self.grace_period} must exceed interval {self.interval}"
            )
        return self


class SearchSettings(Frozen):
    """Everything about a study except its parameters."""

    sampler: Literal["grid", "tpe"] = "grid"
    n_trials: int | None = Field(
        default=None, ge=1, le=100_000, description="Finished trials wanted; None: the grid size"
    )
    sampler_seed: int = Field(default=0, ge=0, le=2**31 - 1)
    tpe_startup_trials: int = Field(default=5, ge=1, le=10_000)
    objective: ObjectiveConfig = ObjectiveConfig()
    budget: BudgetConfig = BudgetConfig()
    pruner: PrunerConfig = PrunerConfig()
    criteria: PassCriteria = PassCriteria()
    heartbeat: HeartbeatConfig = HeartbeatConfig()
