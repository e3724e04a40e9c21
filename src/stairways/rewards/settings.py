"""Configuration of the reward systems (chosen by name) and how they are wired in."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from stairways.configbase import Frozen


class V3RewardConfig(Frozen):
    """Weights of the ``v3`` reward (DualTickerRewardV3 family); see rewards.v3.

    The defaults keep the net P&L term in charge. Equity is already net of commission, spread
    and impact, so ``impact_weight`` and ``turnover_weight`` default to 0 (a second charge on
    top of the real one); a weight of 0.001 on turnover alone charged 10 bp of every traded
    notional, about four times the modelled cost. ``downside_weight`` is 0.05: the downside
    term is first order in position size: at 0.5 it charged a $5,000 NVDA position about 3 bp
    of its notional every bar, more than the planted signal pays, so staying flat was the best
    policy. Measured on the synthetic market's 2022-2023 sessions with scripted policies: the
    old weights scored the lead-lag rule that earns $105 a session at -3.9 a session and staying
    flat at +0.37; these weights score the rule +0.84 and flat +0.37.
    """

    scale: float = Field(default=100.0, gt=0.0, le=1e6, description="Multiplies the total")
    risk_free_annual: float = Field(default=0.04, ge=0.0, le=0.5)
    periods_per_year: float = Field(
        default=252.0 * 390.0, gt=0.0, description="Steps per year for the risk-free rate"
    )
    pnl_weight: float = Field(default=1.0, ge=0.0, le=1e3)
    impact_weight: float = Field(
        default=0.0, ge=0.0, le=1e3, description="Charges impact again (P&L already has it)"
    )
    turnover_weight: float = Field(
        default=0.0, ge=0.0, le=1e3, description="Per unit of traded notional / capital"
    )
    downside_weight: float = Field(
        default=0.05, ge=0.0, le=1e3, description="On max(-step return, 0)"
    )
    kelly_weight: float = Field(default=0.1, ge=0.0, le=1e3)
    hold_bonus: float = Field(default=1e-5, ge=0.0, le=1.0)
    action_change_penalty: float = Field(default=1e-4, ge=0.0, le=1.0)
    ticket_cost: float = Field(default=1e-4, ge=0.0, le=1.0, description="Per order filled")


class RefinedRewardConfig(Frozen):
    """Terms of the ``refined`` reward (RefinedRewardSystem); see rewards.refined."""

    pnl_scale: float = Field(default=100.0, gt=0.0, le=1e6)
    pnl_epsilon: float = Field(default=1.0, gt=0.0, description="Floor of the P&L denominator")
    holding_alpha: float = Field(default=0.001, ge=0.0, le=10.0)
    holding_lookback: int = Field(default=10, ge=1, le=390)
    penalty_beta: float = Field(default=0.01, ge=0.0, le=100.0)
    drawdown_smoothing: float = Field(
        default=0.1, gt=0.0, le=1.0, description="EMA weight of the newest drawdown"
    )
    exploration_coef: float = Field(default=0.001, ge=0.0, le=10.0)
    exploration_decay: float = Field(
        default=0.995, gt=0.0, le=1.0, description="Applied to the bonus at every episode end"
    )
    directional_coef: float = Field(default=0.0005, ge=0.0, le=10.0)
    time_bonus: float = Field(default=0.0, ge=0.0, le=10.0)
    time_bonus_start: int = Field(default=0, ge=0, le=10_000)
    min_episode_length: int = Field(default=80, ge=0, le=10_000)
    early_exit_tax: float = Field(default=5.0, ge=0.0, le=1e3)
    secondary_exit_threshold: int = Field(default=0, ge=0, le=10_000, description="0 disables")
    secondary_exit_tax: float = Field(default=0.0, ge=0.0, le=1e3)
    completion_threshold: int = Field(default=0, ge=0, le=10_000, description="0 disables")
    completion_bonus: float = Field(default=0.0, ge=0.0, le=1e3)
    major_completion_threshold: int = Field(default=0, ge=0, le=10_000, description="0 disables")
    major_completion_bonus: float = Field(default=0.0, ge=0.0, le=1e3)

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        if self.secondary_exit_threshold > self.min_episode_length:
            raise ValueError(
                f"secondary_exit_threshold {self.secondary_exit_threshold} must not exceed "
                f"min_episode_length {self.min_episode_length}"
            )
        return self


class RewardConfig(Frozen):
    """Which reward, computed where, with every weight."""

    name: Literal["v3", "refined"] = Field(default="v3", description="Registered reward name")
    mode: Literal["internal", "shim"] = Field(
        default="internal",
        description="internal: the env computes it; shim: a wrapper recomputes it from info",
    )
    v3: V3RewardConfig = V3RewardConfig()
    refined: RefinedRewardConfig = RefinedRewardConfig()
