"""Configuration of the trading env and the layout of the per-step result vector.

Every step produces one float64 vector (the "step result"): scalar fields first, then
:data:`TICKER_FIELDS` for each ticker. The env kernel writes it, the env turns it into the
``info`` dict (:func:`info_from_step`), rewards read it, and the reward shim rebuilds it from
``info`` (:func:`step_from_info`) so shim and internal rewards see exactly the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field

from stairways.configbase import Frozen
from stairways.errors import InputError


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


# Scalar fields of the step result, in order; the info key is the field name.
STEP_FIELDS: tuple[str, ...] = (
    "step",  # steps taken in the episode, this one included
    "session_length",  # bars in the session (390, or 210 on half days)
    "session",  # index of the session in the panel
    "bar",  # bar the portfolio is marked at after this step
    "starting_capital",
    "equity_prev",  # equity before this step
    "equity",
    "cash",
    "peak_equity",
    "drawdown",  # 1 - equity / peak equity
    "max_drawdown",  # largest drawdown of the episode so far
    "unrealised_pnl",
    "realised_pnl",  # episode to date, at fill prices
    "fees",  # commissions, episode to date
    "costs",  # commissions + spread + impact, episode to date
    "step_commission",
    "step_spread_cost",
    "step_impact_cost",
    "step_notional",  # traded notional at fill prices this step
    "step_trades",  # orders filled this step
    "trade_count",  # orders filled in the episode
    "hold_count",  # steps whose action kept every target
    "action_changed",  # 1 when this step's action changed a target
    "terminated",
    "truncated",
)
# Per-ticker fields; info holds each as an array over tickers under the given key.
TICKER_FIELDS: tuple[str, ...] = (
    "positions",  # shares held after the step
    "position_fractions",  # shares * price / max notional, clipped to [-1, 1]
    "targets",  # current targets in {-1, 0, +1}
    "prices",  # the marks (bar close)
    "price_returns",  # close / previous close - 1 over this step's bar move
    "fill_shares",  # shares filled this step (0 when none)
    "fill_prices",  # fill price (NaN when no fill)
)

S_STEP, S_LENGTH, S_SESSION, S_BAR, S_CAPITAL = 0, 1, 2, 3, 4
S_EQUITY_PREV, S_EQUITY, S_CASH, S_PEAK, S_DRAWDOWN, S_MAX_DRAWDOWN = 5, 6, 7, 8, 9, 10
S_UNREALISED, S_REALISED, S_FEES, S_COSTS = 11, 12, 13, 14
S_COMMISSION, S_SPREAD, S_IMPACT, S_NOTIONAL, S_STEP_TRADES = 15, 16, 17, 18, 19
S_TRADES, S_HOLDS, S_ACTION_CHANGED, S_TERMINATED, S_TRUNCATED = 20, 21, 22, 23, 24
N_SCALAR = 25

T_SHARES, T_FRACTION, T_TARGET, T_PRICE, T_RETURN, T_FILL_QTY, T_FILL_PRICE = range(7)
N_TICKER = 7

assert len(STEP_FIELDS) == N_SCALAR and len(TICKER_FIELDS) == N_TICKER


def step_width(n_tickers: int) -> int:
    """Length of the step-result vector for ``n_tickers`` tickers."""
    return N_SCALAR + N_TICKER * n_tickers


def ticker_offset(field: int, j: int) -> int:
    """Index of per-ticker field ``field`` of ticker ``j`` in the step-result vector."""
    return N_SCALAR + N_TICKER * j + field


def info_from_step(row: np.ndarray, n_tickers: int) -> dict[str, Any]:
    """The info dict of one step result: every scalar field by name, per-ticker arrays."""
    info: dict[str, Any] = dict(zip(STEP_FIELDS, row[:N_SCALAR].tolist(), strict=True))
    # one copy, then a row view per field: cheaper than a copy per field
    block = row[N_SCALAR:].reshape(n_tickers, N_TICKER).T.copy()
    for name, values in zip(TICKER_FIELDS, block, strict=True):
        info[name] = values
    return info


def step_from_info(info: Mapping[str, Any], n_tickers: int) -> np.ndarray:
    """Rebuild the step-result vector from an info dict (the reward shim's input)."""
    out = np.empty(step_width(n_tickers), dtype=np.float64)
    try:
        for k, name in enumerate(STEP_FIELDS):
            out[k] = float(info[name])
        block = out[N_SCALAR:].reshape(n_tickers, N_TICKER)
        for k, name in enumerate(TICKER_FIELDS):
            block[:, k] = np.asarray(info[name], dtype=np.float64)
    except KeyError as err:
        raise InputError(
            f"info is missing {err.args[0]!r}; the reward shim needs a Stairways trading env"
        ) from None
    return out
