"""Configuration of the diagnostic suite: freeze-early, reward A/B/C and the leakage audit.

Thresholds live here (and in config/diagnostics.yaml) so that a verdict can always be traced
to the number that decided it. Defaults follow the roadmap: a frozen checkpoint must keep a
mean evaluation reward of at least 0.5 with episodes longer than 40 steps.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from stairways.configbase import CONFIG_DIR, ConfigFileRef, Frozen

LeakageMetric = Literal["net_pnl", "reward"]


class FreezeEarlyConfig(Frozen):
    """Train once, freeze checkpoints early, and check each holds up on the evaluation split."""

    checkpoints: tuple[int, ...] = Field(
        default=(5_000, 10_000, 15_000),
        min_length=1,
        description="Timesteps of the frozen checkpoints",
    )
    min_episode_reward_mean: float = Field(
        default=0.5, ge=-1e6, le=1e6, description="Each checkpoint keeps mean reward >= this"
    )
    min_episode_length: float = Field(
        default=40.0, ge=0.0, le=390.0, description="Each checkpoint keeps mean length > this"
    )
    in_sample_max_sessions: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Last sessions of the training split (training.split) replayed in sample",
    )
    trend_z: float = Field(
        default=2.0,
        gt=0.0,
        le=10.0,
        description="Standard errors a change must exceed to count as rising or falling",
    )

    @model_validator(mode="after")
    def _ascending(self) -> Self:
        steps = list(self.checkpoints)
        if any(s < 1 for s in steps) or steps != sorted(set(steps)):
            raise ValueError(f"checkpoints must be distinct positive ascending steps, got {steps}")
        return self


class RewardArm(Frozen):
    """One arm of the reward A/B/C comparison: a name and the config file of its reward.

    Only the ``reward`` section of that file is used; data, market, env and training come from
    the suite's config so the arms differ in nothing else. A relative path written in a YAML
    file is taken from that file's folder; the default arms are the shipped configs.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    config: ConfigFileRef


def _default_arms() -> tuple[RewardArm, ...]:
    return (
        RewardArm(name="reward_v3", config=CONFIG_DIR / "reward_v3.yaml"),
        RewardArm(name="reward_shim", config=CONFIG_DIR / "reward_shim.yaml"),
        RewardArm(name="reward_internal", config=CONFIG_DIR / "reward_internal.yaml"),
    )


class RewardABCConfig(Frozen):
    """Same data and seed, different reward configs, one evaluation reward for all."""

    arms: tuple[RewardArm, ...] = Field(default_factory=_default_arms, min_length=2)
    shim: str = Field(default="reward_shim", description="Arm using the wrapper (shim) form")
    internal: str = Field(default="reward_internal", description="Arm computing it in the env")
    curve_atol: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Largest episode-reward difference still counted as identical",
    )

    @model_validator(mode="after")
    def _arms_known(self) -> Self:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be distinct, got {names}")
        for key in ("shim", "internal"):
            if getattr(self, key) not in names:
                raise ValueError(f"{key} {getattr(self, key)!r} is not one of the arms {names}")
        if self.shim == self.internal:
            raise ValueError("shim and internal must name different arms")
        return self


class LeakageConfig(Frozen):
    """The leakage audit: lagged features, planted look-ahead, shuffled episode starts.

    Every arm trains once per seed of ``seeds``; arms are compared across those seeds, so the
    noise of a comparison is how much separately trained agents differ. Below ``min_seeds``
    seeds or ``min_total_timesteps`` of training per run the audit refuses a verdict.
    """

    lag_bars: int = Field(default=1, ge=1, le=60, description="Extra bars of lag applied")
    lookahead_bars: int = Field(
        default=1, ge=1, le=60, description="Bars of future the positive control plants"
    )
    metric: LeakageMetric = Field(default="net_pnl", description="Per-session outcome compared")
    seeds: tuple[int, ...] = Field(
        default=(0, 1, 2), min_length=2, description="Training seeds of every arm"
    )
    min_seeds: int = Field(
        default=3, ge=2, le=100, description="Fewer seeds per arm: no verdict (insufficient)"
    )
    min_total_timesteps: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000_000,
        description="Fewer training timesteps per run: no verdict (insufficient)",
    )
    control_confidence: float = Field(
        default=0.95,
        ge=0.5,
        lt=1.0,
        description="One-sided confidence at which the look-ahead control must beat baseline",
    )
    lag_confidence: float = Field(
        default=0.95,
        ge=0.5,
        lt=1.0,
        description="One-sided confidence above which the lagged arm does better",
    )
    shuffle_offsets: bool = Field(default=True, description="Start sessions at random offsets")
    max_start_offset: int = Field(
        default=60, ge=0, le=300, description="Largest start offset in bars"
    )

    @model_validator(mode="after")
    def _distinct_seeds(self) -> Self:
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be distinct and non-negative, got {list(self.seeds)}")
        return self


class DiagnosticsConfig(Frozen):
    """The diagnostic suite as a whole."""

    eval_split: str = Field(
        default="validation", description="Split every part evaluates on (never test)"
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Training seed of every run")
    total_timesteps: int = Field(
        default=15_000, ge=1, le=10_000_000_000, description="Training length of A/B/C and leakage"
    )
    workers: int = Field(default=2, ge=1, le=256, description="Parallel training processes")
    ranking_window: int = Field(
        default=100, ge=1, le=1_000_000, description="Episodes in the rolling training reward"
    )
    freeze: FreezeEarlyConfig = FreezeEarlyConfig()
    abc: RewardABCConfig = RewardABCConfig()
    leakage: LeakageConfig = LeakageConfig()
