"""Configuration of the market core: action set, sizing, order timing and the cost model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stairways.configbase import Frozen


class CostConfig(Frozen):
    """IBKR-style commission, half-spread and square-root market impact.

    The impact of an order of ``q`` shares is ``impact_coef * sigma * sqrt(q / bar_volume)`` as a
    fraction of the price, capped at ``impact_max_bps``. ``sigma`` is ``impact_sigma`` when set,
    otherwise the decision bar's Parkinson range volatility ``ln(high / low) / (2 sqrt(ln 2))``;
    ``bar_volume`` is the decision bar's volume (both known when the order is sent, so the
    simulated broker can use the same numbers live).
    """

    commission_per_share: float = Field(
        default=0.0035, ge=0.0, le=1.0, description="Dollars per share traded"
    )
    commission_min: float = Field(
        default=0.35, ge=0.0, le=100.0, description="Minimum commission per order in dollars"
    )
    commission_max_fraction: float | None = Field(
        default=0.01,
        gt=0.0,
        le=1.0,
        description="Commission cap as a fraction of trade value; null for no cap",
    )
    half_spread_bps: float = Field(
        default=1.0, ge=0.0, le=1000.0, description="Half the bid-ask spread, basis points"
    )
    impact_coef: float = Field(default=0.1, ge=0.0, le=10.0, description="Square-root impact")
    impact_sigma: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Per-bar volatility for impact; null uses the bar's high-low range",
    )
    impact_max_bps: float = Field(
        default=100.0, ge=0.0, le=10000.0, description="Cap on impact, basis points"
    )


class MarketConfig(Frozen):
    """Action set, capital, position sizing and order timing shared by every runner."""

    action_set: Literal["grid9", "step5"] = Field(
        default="grid9", description="Meaning of the discrete action (see market.actions)"
    )
    starting_capital: float = Field(default=10_000.0, gt=0.0, le=1e10)
    max_position_notional: float = Field(
        default=5_000.0, gt=0.0, le=1e10, description="Dollar size of a full long or short"
    )
    quantity_decimals: int = Field(
        default=0,
        ge=0,
        le=4,
        description="0: whole shares; d: fractional shares in steps of 10**-d (a notional-sized "
        "micro-lot stage, see config/risk/micro_10.yaml sizing)",
    )
    latency_bars: int = Field(
        default=1, ge=1, le=60, description="Orders decided on bar t fill at the open of t+k"
    )
    flatten_at_close: bool = Field(
        default=True,
        description="Close every position at the session's last bar (and on a drawdown stop)",
    )
    costs: CostConfig = CostConfig()
