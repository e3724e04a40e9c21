"""Configuration of evaluation: replay split, Sharpe windows, success gates, seeds, temporal pairs.

Defaults follow the plan: an agent passes out of sample when its Sharpe ratio is at least 0.3,
its mean episode reward at least 0.1 and its mean episode length at least 80 steps; a seed sweep
passes when the chosen metric's standard deviation across seeds is below 30 % of the absolute
mean and below 0.5 in absolute terms.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import Field, model_validator

from stairways.configbase import Frozen
from stairways.data.settings import DateRange

SeedMetric = Literal["episode_reward_mean", "sharpe", "total_return", "sortino"]


class GateConfig(Frozen):
    """Thresholds an evaluated checkpoint must reach; every comparison is ``value >= threshold``."""

    min_sharpe: float = Field(
        default=0.3, ge=-1000.0, le=1000.0, description="Annualised OOS Sharpe"
    )
    min_episode_reward_mean: float = Field(
        default=0.1, ge=-1e6, le=1e6, description="Mean of per-session reward sums"
    )
    min_mean_episode_length: float = Field(
        default=80.0, ge=0.0, le=390.0, description="Mean steps per session (episode)"
    )


class SeedVarianceConfig(Frozen):
    """How a seed sweep is judged: spread of one metric across seeds."""

    metric: SeedMetric = "episode_reward_mean"
    max_relative_std: float = Field(
        default=0.30, gt=0.0, le=10.0, description="std / |mean| must stay below this"
    )
    max_std: float = Field(default=0.5, gt=0.0, le=1e6, description="std must stay below this")
    seeds: tuple[int, ...] = Field(default=(0, 1, 2, 3), min_length=2)
    total_timesteps: int = Field(default=10_000, ge=1, le=10**10)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be non-negative, got {list(self.seeds)}")
        return self


class TemporalPair(Frozen):
    """A walk-forward pair: train on ``train``, then evaluate out of sample on ``test``."""

    train: DateRange
    test: DateRange

    @model_validator(mode="after")
    def _train_before_test(self) -> Self:
        if self.train.end >= self.test.start:
            raise ValueError(
                f"train range must end before test starts (train ends {self.train.end}, "
                f"test starts {self.test.start})"
            )
        return self


def _default_temporal() -> dict[str, TemporalPair]:
    return {
        "train2022_2023_test2024": TemporalPair(
            train=DateRange(start=date(2022, 1, 3), end=date(2023, 12, 29)),
            test=DateRange(start=date(2024, 1, 2), end=date(2024, 12, 31)),
        ),
        "train2022_test2023": TemporalPair(
            train=DateRange(start=date(2022, 1, 3), end=date(2022, 12, 30)),
            test=DateRange(start=date(2023, 1, 3), end=date(2023, 12, 29)),
        ),
        "train2023_test2024": TemporalPair(
            train=DateRange(start=date(2023, 1, 3), end=date(2023, 12, 29)),
            test=DateRange(start=date(2024, 1, 2), end=date(2024, 12, 31)),
        ),
    }


class EvaluationConfig(Frozen):
    """Out-of-sample evaluation, success gates, seed variance and temporal validation."""

    split: str = Field(default="test", description="Split replayed by `stairways evaluate`")
    checkpoint: str = Field(default="final", description="final, best, or a checkpoint file")
    sharpe_window_minutes: int = Field(default=30, ge=1, le=390)
    trading_days_per_year: int = Field(default=252, ge=1, le=366)
    baselines: bool = Field(default=True, description="Report flat and buy-and-hold baselines")
    gates: GateConfig = GateConfig()
    seeds: SeedVarianceConfig = SeedVarianceConfig()
    temporal: dict[str, TemporalPair] = Field(default_factory=_default_temporal)
    temporal_primary: str = Field(
        default="train2022_2023_test2024", description="The plan's out-of-sample test pair"
    )

    @model_validator(mode="after")
    def _primary_known(self) -> Self:
        if self.temporal and self.temporal_primary not in self.temporal:
            raise ValueError(
                f"temporal_primary {self.temporal_primary!r} is not one of {sorted(self.temporal)}"
            )
        return self
