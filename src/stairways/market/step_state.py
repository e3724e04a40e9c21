"""The per-step state vector: the market core's accounting after one step, as float64 numbers.

Every step produces one float64 vector (the "step result"): the scalar fields of
:data:`STEP_FIELDS` first, then the fields of :data:`TICKER_FIELDS` for each ticker. The
training env's kernel writes it, the env turns it into the ``info`` dict
(:func:`info_from_step`), reward components read it, and the reward shim (and later the live
loop) rebuilds it from ``info`` (:func:`step_from_info`), so every runner computes rewards
from exactly the same numbers.

The layout is defined once, by the two field lists; every index (``S_*`` for scalar fields,
``T_*`` for per-ticker fields) is looked up from them, so reordering or inserting a field
cannot leave an index pointing at the wrong number. The indices are plain module-level ints
because numba compiles them into the kernels as constants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from stairways.errors import InputError

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


def _index_of(fields: tuple[str, ...]) -> dict[str, int]:
    """Position of each field name; a repeated name is a programming error caught at import."""
    index = {name: k for k, name in enumerate(fields)}
    if len(index) != len(fields):
        repeated = sorted({n for n in fields if fields.count(n) > 1})
        raise ValueError(f"step-state field names repeat: {repeated}")
    return index


_SCALAR = _index_of(STEP_FIELDS)
_TICKER = _index_of(TICKER_FIELDS)

N_SCALAR = len(STEP_FIELDS)
N_TICKER = len(TICKER_FIELDS)

S_STEP = _SCALAR["step"]
S_LENGTH = _SCALAR["session_length"]
S_SESSION = _SCALAR["session"]
S_BAR = _SCALAR["bar"]
S_CAPITAL = _SCALAR["starting_capital"]
S_EQUITY_PREV = _SCALAR["equity_prev"]
S_EQUITY = _SCALAR["equity"]
S_CASH = _SCALAR["cash"]
S_PEAK = _SCALAR["peak_equity"]
S_DRAWDOWN = _SCALAR["drawdown"]
S_MAX_DRAWDOWN = _SCALAR["max_drawdown"]
S_UNREALISED = _SCALAR["unrealised_pnl"]
S_REALISED = _SCALAR["realised_pnl"]
S_FEES = _SCALAR["fees"]
S_COSTS = _SCALAR["costs"]
S_COMMISSION = _SCALAR["step_commission"]
S_SPREAD = _SCALAR["step_spread_cost"]
S_IMPACT = _SCALAR["step_impact_cost"]
S_NOTIONAL = _SCALAR["step_notional"]
S_STEP_TRADES = _SCALAR["step_trades"]
S_TRADES = _SCALAR["trade_count"]
S_HOLDS = _SCALAR["hold_count"]
S_ACTION_CHANGED = _SCALAR["action_changed"]
S_TERMINATED = _SCALAR["terminated"]
S_TRUNCATED = _SCALAR["truncated"]

T_SHARES = _TICKER["positions"]
T_FRACTION = _TICKER["position_fractions"]
T_TARGET = _TICKER["targets"]
T_PRICE = _TICKER["prices"]
T_RETURN = _TICKER["price_returns"]
T_FILL_QTY = _TICKER["fill_shares"]
T_FILL_PRICE = _TICKER["fill_prices"]


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
