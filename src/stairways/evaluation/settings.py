"""Configuration of evaluation: replay split, Sharpe windows, success gates, seeds, temporal pairs.

Gates. The plan's three gates keep their defaults: a 30-minute-window Sharpe ratio of at least
0.3, a mean episode reward of at least 0.1 and a mean episode length of at least 80 steps. On
their own, luck and doing nothing pass them (flat passes the reward and length gates; a one-year
Sharpe ratio has a standard error of about 1), so four more gates are on by default:

- significance: the one-sided 95 % session-bootstrap lower bound of the mean daily net P&L is
  above 0 (the agent makes money, beyond the luck of which days were sampled);
- excess: against the best baseline (of flat and buy-and-hold of each ticker, the one with the
  highest mean daily net P&L on the evaluated sessions), the 95 % lower bound of the mean daily
  net P&L of agent minus baseline, paired by session, is above ``min_excess_daily_pnl``;
- earned reward: the mean per-session sum of the reward's money component (``pnl``), without
  shaping bonuses, is at least 0.1, so staying flat cannot pass it;
- reward/P&L agreement: in at most half of the sessions do the reward and the net P&L disagree
  in sign (more is reward hacking: the reward pays for something other than money).

Seed variance. A sweep passes when the mean of the chosen metric across seeds is on the passing
side of that metric's gate, every seed is on that side (seeds agree in sign), and the spread is
small relative to the distance from the gate (a scale-free coefficient of variation).
"""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import Field, model_validator

from stairways.configbase import Frozen
from stairways.data.settings import DateRange

SeedMetric = Literal[
    "mean_daily_pnl", "daily_sharpe", "earned_reward_mean", "sharpe", "episode_reward_mean"
]


class GateConfig(Frozen):
    """Success gates; each gate says its comparison (``>=``, ``>`` or ``<=``) in gates.json."""

    min_sharpe: float = Field(
        default=0.3, ge=-1000.0, le=1000.0, description="Annualised OOS Sharpe (30-min windows)"
    )
    min_episode_reward_mean: float = Field(
        default=0.1, ge=-1e6, le=1e6, description="Mean of per-session reward sums"
    )
    min_mean_episode_length: float = Field(
        default=80.0, ge=0.0, le=390.0, description="Mean steps per session (episode)"
    )
    significance: bool = Field(
        default=True,
        description="Gate: bootstrap lower bound of the mean daily net P&L must be above 0",
    )
    excess: bool = Field(
        default=True,
        description="Gate: paired lower bound of agent minus the best baseline must be above "
        "min_excess_daily_pnl",
    )
    min_excess_daily_pnl: float = Field(
        default=0.0, ge=-1e9, le=1e9, description="Dollars a session the excess bound must beat"
    )
    min_earned_reward_mean: float | None = Field(
        default=0.1,
        ge=-1e6,
        le=1e6,
        description="Mean per-session money component of the reward; null turns the gate off",
    )
    earned_component: str = Field(
        default="pnl", min_length=1, description="Reward component counted as earned"
    )
    max_reward_pnl_disagreement: float | None = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Share of sessions whose reward and P&L disagree in sign; null: off",
    )
    min_sessions: int = Field(
        default=20,
        ge=2,
        le=100_000,
        description="Fewer evaluated sessions give no significance or excess verdict (fail)",
    )


class SeedVarianceConfig(Frozen):
    """How a seed sweep is judged (see the module docstring)."""

    metric: SeedMetric = Field(default="mean_daily_pnl", description="Metric compared across seeds")
    max_relative_std: float = Field(
        default=0.30,
        gt=0.0,
        le=10.0,
        description="std / |mean - gate threshold| must stay below this (scale-free)",
    )
    min_agreement: float = Field(
        default=1.0,
        gt=0.5,
        le=1.0,
        description="Share of seeds that must be on the passing side of the gate",
    )
    confidence: float = Field(
        default=0.95, ge=0.5, lt=1.0, description="Confidence of the interval of the mean"
    )
    seeds: tuple[int, ...] = Field(default=(0, 1, 2, 3), min_length=2)
    total_timesteps: int = Field(default=10_000, ge=1, le=10**10)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be non-negative, got {list(self.seeds)}")
        return self


class PowerConfig(Frozen):
    """The power study (``stairways validate power``): planted-signal strengths x markets x seeds.

    Every (strength, market seed) pair is a synthetic market generated with the data config's
    generator settings; every training seed trains on its training split and is judged by the
    gates on ``split`` (never a protected split). The pass rate at strength 0 is the gates'
    false-positive rate; at each other strength, their power.
    """

    strengths: tuple[float, ...] = Field(
        default=(0.0, 0.25, 0.5, 1.0), min_length=1, description="Planted signal strengths"
    )
    market_seeds: tuple[int, ...] = Field(
        default=(101, 102, 103, 104), min_length=1, description="Synthetic market seeds"
    )
    training_seeds: tuple[int, ...] = Field(
        default=(0, 1), min_length=1, description="Training seeds per market"
    )
    total_timesteps: int = Field(
        default=20_000, ge=1, le=10**10, description="Training timesteps of every run"
    )
    split: str = Field(default="validation", description="Split every run is judged on")
    max_false_positive_rate: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Pass rate of the full verdict at strength 0 above which the study fails",
    )
    rule_entry_costs: float = Field(
        default=2.0,
        gt=0.0,
        le=100.0,
        description="The reference rule enters when its expected move exceeds this many "
        "round-trip costs",
    )

    @model_validator(mode="after")
    def _grid(self) -> Self:
        if 0.0 not in self.strengths:
            raise ValueError(
                f"strengths must include 0 (the false-positive rate), got {list(self.strengths)}"
            )
        for name in ("strengths", "market_seeds", "training_seeds"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct, got {list(values)}")
        if any(s < 0.0 or s > 10.0 for s in self.strengths):
            raise ValueError(f"strengths must lie in [0, 10], got {list(self.strengths)}")
        if any(s < 0 for s in (*self.market_seeds, *self.training_seeds)):
            raise ValueError("seeds must be non-negative")
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
    confidence: float = Field(
        default=0.95, ge=0.5, lt=1.0, description="Confidence of bootstrap intervals and bounds"
    )
    bootstrap_resamples: int = Field(
        default=10_000, ge=100, le=1_000_000, description="Session resamples per bootstrap"
    )
    bootstrap_seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Bootstrap seed")
    gates: GateConfig = GateConfig()
    seeds: SeedVarianceConfig = SeedVarianceConfig()
    power: PowerConfig = PowerConfig()
    temporal: dict[str, TemporalPair] = Field(default_factory=_default_temporal)
    temporal_primary: str = Field(
        default="train2022_2023_test2024", description="The plan's out-of-sample test pair"
    )

    @model_validator(mode="after")
    def _primary_known(self) -> Self:
        if self.gates.excess and not self.baselines:
            raise ValueError(
                "gates.excess compares the agent with the baselines, so it needs baselines: "
                "true (or set gates.excess: false)"
            )
        if self.temporal and self.temporal_primary not in self.temporal:
            raise ValueError(
                f"temporal_primary {self.temporal_primary!r} is not one of {sorted(self.temporal)}"
            )
        return self
