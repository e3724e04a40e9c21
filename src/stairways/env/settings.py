"""Configuration of the trading env: episode rules and observation extras.

The layout of the per-step result vector lives in :mod:`stairways.market.step_state`, shared by
the env, the rewards and the replay evaluator.
"""

from __future__ import annotations

from pydantic import Field

from stairways.configbase import Frozen


class EnvConfig(Frozen):
    """Episode rules and observation extras of the trading env.

    The default drawdown cap is 2% of the session's peak equity: with both legs at full size
    ($10,000 exposure on $10,000) that is a 2% adverse move, rare in one session for a sane
    policy but reachable by a flailing one, which is what the early-exit tax is built around.
    """

    drawdown_cap: float = Field(
        default=0.02, gt=0.0, le=1.0, description="Terminate when intraday drawdown exceeds it"
    )
    feature_bound: float = Field(
        default=10.0,
        gt=0.0,
        le=1e6,
        description="Observation bound of the features; panels outside it are refused",
    )
    obs_cash_fraction: bool = Field(default=False, description="Append cash / equity")
    obs_unrealised_pnl: bool = Field(
        default=False, description="Append unrealised P&L / starting capital"
    )
    obs_drawdown: bool = Field(default=False, description="Append intraday drawdown")
    obs_time_to_close: bool = Field(
        default=False, description="Append remaining steps / (session length - 1)"
    )
