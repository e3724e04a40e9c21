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

from stairways.configbase import CONFIG_DIR, ConfigFileRef, Frozen
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


NULL_RUNS_FOR_FIVE_PERCENT = 59
"""With no pass, the exact one-sided 95 % upper bound of a pass rate is below 5 % from 59 runs
(``1 - 0.05 ** (1 / 59) = 4.95 %``); 58 runs give 5.03 %."""


class NullArm(Frozen):
    """Another training configuration judged on the no-signal markets of the power study.

    Only its market, env, reward and training sections are used; the data (the study's
    markets and splits) and the gates come from the study's config, so the arm differs from
    the default arm only in how it trades and learns. Its market seeds must be no-signal
    markets of the study (``null_market_seeds``).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Arm name in tables and folders")
    config: ConfigFileRef
    market_seeds: tuple[int, ...] = Field(min_length=1, description="No-signal markets it runs")
    training_seeds: tuple[int, ...] = Field(min_length=1, description="Training seeds per market")

    @property
    def runs(self) -> int:
        """Runs of this arm."""
        return len(self.market_seeds) * len(self.training_seeds)


def _default_null_arms() -> tuple[NullArm, ...]:
    # The case: under phase2_oos the reward was positive while every seed lost money.
    return (
        NullArm(
            name="phase2_oos",
            config=(CONFIG_DIR / "curriculum" / "phase2_oos.yaml").resolve(),
            market_seeds=(101, 102, 103, 104, 105, 106),
            training_seeds=(0, 1),
        ),
    )


class PowerConfig(Frozen):
    """The power study (``stairways validate power``): planted-signal strengths x markets x seeds.

    Every (strength, market seed) pair is a synthetic market generated with the data config's
    generator settings; every training seed trains on its training split and is judged by the
    gates on ``split`` (never a protected split). The pass rate at strength 0 is the gates'
    false-positive rate; at each other strength, their power.

    Strength 0 has its own, larger grid (``null_market_seeds`` x ``null_training_seeds``): a
    false-positive rate of at most 5 % can only be shown with at least 59 runs (none passing),
    while the power at the other strengths is read well enough from a few. ``null_arms`` adds
    other training configurations judged on the same no-signal markets.
    """

    strengths: tuple[float, ...] = Field(
        default=(0.0, 0.25, 0.5, 1.0), min_length=1, description="Planted signal strengths"
    )
    market_seeds: tuple[int, ...] = Field(
        default=(101, 102, 103, 104),
        min_length=1,
        description="Synthetic market seeds of every strength above 0",
    )
    training_seeds: tuple[int, ...] = Field(
        default=(0, 1), min_length=1, description="Training seeds per market above strength 0"
    )
    null_market_seeds: tuple[int, ...] = Field(
        default=tuple(range(101, 121)),
        min_length=1,
        description="Synthetic market seeds of strength 0 (the false-positive rate)",
    )
    null_training_seeds: tuple[int, ...] = Field(
        default=(0, 1, 2), min_length=1, description="Training seeds per market at strength 0"
    )
    null_arms: tuple[NullArm, ...] = Field(
        default_factory=_default_null_arms,
        description="Other training configs judged on the no-signal markets",
    )
    total_timesteps: int = Field(
        default=20_000, ge=1, le=10**10, description="Training timesteps of every run"
    )
    split: str = Field(default="validation", description="Split every run is judged on")
    max_false_positive_rate: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Goal: the false-positive rate (full verdict at strength 0) is at most this",
    )
    false_positive_confidence: float = Field(
        default=0.95,
        ge=0.5,
        lt=1.0,
        description="Confidence of the exact (Clopper-Pearson) one-sided upper bound of the "
        "false-positive rate that must lie within max_false_positive_rate to show the goal",
    )
    rule_entry_costs: float = Field(
        default=2.0,
        gt=0.0,
        le=100.0,
        description="The reference rule enters when its expected move exceeds this many "
        "round-trip costs",
    )

    @property
    def null_runs(self) -> int:
        """Runs of the default arm at strength 0."""
        return len(self.null_market_seeds) * len(self.null_training_seeds)

    def markets_of(self, strength: float) -> tuple[int, ...]:
        """Market seeds of one strength."""
        return self.null_market_seeds if strength == 0.0 else self.market_seeds

    def training_seeds_of(self, strength: float) -> tuple[int, ...]:
        """Training seeds of one strength (default arm)."""
        return self.null_training_seeds if strength == 0.0 else self.training_seeds

    @model_validator(mode="after")
    def _grid(self) -> Self:
        if 0.0 not in self.strengths:
            raise ValueError(
                f"strengths must include 0 (the false-positive rate), got {list(self.strengths)}"
            )
        for name in (
            "strengths",
            "market_seeds",
            "training_seeds",
            "null_market_seeds",
            "null_training_seeds",
        ):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct, got {list(values)}")
        if any(s < 0.0 or s > 10.0 for s in self.strengths):
            raise ValueError(f"strengths must lie in [0, 10], got {list(self.strengths)}")
        seeds = (
            *self.market_seeds,
            *self.training_seeds,
            *self.null_market_seeds,
            *self.null_training_seeds,
        )
        if any(s < 0 for s in seeds):
            raise ValueError("seeds must be non-negative")
        names = [a.name for a in self.null_arms]
        if len(set(names)) != len(names) or "default" in names:
            raise ValueError(f"null_arms names must be distinct and not 'default', got {names}")
        for arm in self.null_arms:
            outside = sorted(set(arm.market_seeds) - set(self.null_market_seeds))
            if outside:
                raise ValueError(
                    f"null_arms {arm.name!r}: market_seeds {outside} are not in "
                    f"null_market_seeds {list(self.null_market_seeds)} (an arm runs on the "
                    "study's no-signal markets)"
                )
            for what in ("market_seeds", "training_seeds"):
                values = getattr(arm, what)
                if len(set(values)) != len(values) or any(v < 0 for v in values):
                    raise ValueError(
                        f"null_arms {arm.name!r}: {what} must be distinct and non-negative, "
                        f"got {list(values)}"
                    )
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
