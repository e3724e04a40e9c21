"""The one fill and cost model: commission, half-spread and square-root market impact.

Used by the training env, the replay evaluator and the simulated broker, so a backtest and a
simulated session on the same bars give the same fills. For an order of ``q`` shares (positive
buys, negative sells) referenced at price ``p`` (the bar open it fills at):

- half-spread fraction ``h = half_spread_bps / 1e4``;
- impact fraction ``m = min(impact_coef * sigma * sqrt(|q| / max(volume, 1)), impact_max_bps/1e4)``
  (a bar with no volume counts as one share, which drives impact to its cap rather than
  dividing by zero);
- fill price ``p * (1 + sign(q) * (h + m))``: buyers pay up, sellers receive less;
- spread cost ``|q| p h`` and impact cost ``|q| p m`` (already inside the fill price, reported so
  that costs can be attributed);
- commission ``max(|q| * per_share, minimum)``, capped at ``max_fraction * |q| * fill price``
  when a cap is configured; charged to cash on top of the fill price.

A zero order costs nothing. The scalar function is compiled so the env kernel can call it; the
array function is the same code over arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stairways.errors import InputError
from stairways.market.actions import MAX_QUANTITY_DECIMALS
from stairways.market.jit import core_jit
from stairways.market.settings import CostConfig

# The finest quantity step any market trades (fractional shares with the most decimals).
STEPS = float(10**MAX_QUANTITY_DECIMALS)

# Layout of the packed parameter vector the compiled code reads.
CP_PER_SHARE = 0
CP_MIN = 1
CP_MAX_FRACTION = 2  # 0 means no cap
CP_HALF_SPREAD = 3  # as a fraction, not bps
CP_IMPACT_COEF = 4
CP_IMPACT_SIGMA = 5  # NaN means: use the per-bar sigma passed in
CP_IMPACT_CAP = 6  # as a fraction
CP_WIDTH = 7

_LN2_FACTOR = 2.0 * np.sqrt(np.log(2.0))


class Fills(NamedTuple):
    """Result of :func:`fill_orders`; every field has the shape of the orders."""

    price: np.ndarray
    commission: np.ndarray
    spread_cost: np.ndarray
    impact_cost: np.ndarray


def cost_params(cfg: CostConfig) -> np.ndarray:
    """Pack a CostConfig into the float64 vector the compiled functions read."""
    p = np.zeros(CP_WIDTH, dtype=np.float64)
    p[CP_PER_SHARE] = cfg.commission_per_share
    p[CP_MIN] = cfg.commission_min
    p[CP_MAX_FRACTION] = cfg.commission_max_fraction or 0.0
    p[CP_HALF_SPREAD] = cfg.half_spread_bps / 1e4
    p[CP_IMPACT_COEF] = cfg.impact_coef
    p[CP_IMPACT_SIGMA] = np.nan if cfg.impact_sigma is None else cfg.impact_sigma
    p[CP_IMPACT_CAP] = cfg.impact_max_bps / 1e4
    return p


def parkinson_sigma(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Per-bar volatility from the high-low range: ``ln(high / low) / (2 sqrt(ln 2))``."""
    h = np.asarray(high, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    if np.any(lo <= 0.0) or np.any(h < lo):
        raise InputError("parkinson_sigma needs 0 < low <= high on every bar")
    return np.log(h / lo) / _LN2_FACTOR


@core_jit(inline=True)
def fill_one(
    qty: float, ref_price: float, bar_sigma: float, bar_volume: float, params: np.ndarray
) -> tuple[float, float, float, float]:
    """Fill price, commission, spread cost and impact cost of one order of ``qty`` shares."""
    if qty == 0.0:
        return ref_price, 0.0, 0.0, 0.0
    a = abs(qty)
    side = 1.0 if qty > 0.0 else -1.0
    h = params[CP_HALF_SPREAD]
    sigma = params[CP_IMPACT_SIGMA]
    if np.isnan(sigma):
        sigma = bar_sigma
    m = params[CP_IMPACT_COEF] * sigma * np.sqrt(a / max(bar_volume, 1.0))
    m = min(m, params[CP_IMPACT_CAP])
    price = ref_price * (1.0 + side * (h + m))
    commission = max(a * params[CP_PER_SHARE], params[CP_MIN])
    cap = params[CP_MAX_FRACTION]
    if cap > 0.0:
        commission = min(commission, cap * a * price)
    return price, commission, a * ref_price * h, a * ref_price * m


@core_jit
def _fill_many(
    qty: np.ndarray,
    ref: np.ndarray,
    sigma: np.ndarray,
    volume: np.ndarray,
    params: np.ndarray,
    out: np.ndarray,
) -> None:
    for i in range(qty.shape[0]):
        p, c, s, m = fill_one(qty[i], ref[i], sigma[i], volume[i], params)
        out[0, i] = p
        out[1, i] = c
        out[2, i] = s
        out[3, i] = m


def fill_orders(
    qty: np.ndarray | float,
    ref_price: np.ndarray | float,
    bar_sigma: np.ndarray | float,
    bar_volume: np.ndarray | float,
    cfg: CostConfig,
) -> Fills:
    """Fill a batch of orders (arrays broadcast together) with the configured costs.

    :param qty: signed shares, positive buys (whole, or fractional steps)
    :param ref_price: price the order fills at before costs (the fill bar's open)
    :param bar_sigma: per-bar volatility used when ``cfg.impact_sigma`` is not set
    :param bar_volume: shares traded in the reference bar
    :param cfg: the cost model
    """
    arrays = np.broadcast_arrays(
        np.asarray(qty, dtype=np.float64),
        np.asarray(ref_price, dtype=np.float64),
        np.asarray(bar_sigma, dtype=np.float64),
        np.asarray(bar_volume, dtype=np.float64),
    )
    shape = arrays[0].shape
    q, p, s, v = (np.ascontiguousarray(a).reshape(-1) for a in arrays)
    if np.any(~np.isfinite(p) | (p <= 0.0)):
        raise InputError("fill_orders: reference prices must be finite and positive")
    if np.any(~np.isfinite(q)) or np.any(np.abs(q * STEPS - np.round(q * STEPS)) > 1e-6):
        raise InputError(
            "fill_orders: quantities must be whole shares or steps of "
            f"{1.0 / STEPS:g} shares (market.quantity_decimals)"
        )
    out = np.empty((4, q.shape[0]), dtype=np.float64)
    _fill_many(q, p, s, v, cost_params(cfg), out)
    return Fills(*(out[k].reshape(shape) for k in range(4)))
