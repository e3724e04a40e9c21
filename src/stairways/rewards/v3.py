"""The ``v3`` reward (DualTickerRewardV3 family): equity growth with cost and risk terms.

With ``r = (equity - equity_prev) / starting_capital`` and every cost normalised by starting
capital, the components of one step are::

    pnl            = pnl_weight * (r - rf_step * equity_prev / starting_capital)
    impact         = -impact_weight * step_impact_cost / starting_capital
    turnover       = -turnover_weight * step_notional / starting_capital
    downside       = -downside_weight * max(-r, 0)
    kelly          = kelly_weight * ln(equity / equity_prev)     (ratio floored at 1e-12)
    hold           = hold_bonus             when the action kept every target
    action_change  = -action_change_penalty when the action changed a target
    ticket         = -ticket_cost * orders filled this step

with ``rf_step = risk_free_annual / periods_per_year``. Each component is multiplied by
``scale``; the total is their sum. The reward keeps no state.
"""

from __future__ import annotations

import numpy as np

from stairways.market.jit import core_jit
from stairways.market.step_state import (
    S_ACTION_CHANGED,
    S_CAPITAL,
    S_EQUITY,
    S_EQUITY_PREV,
    S_IMPACT,
    S_NOTIONAL,
    S_STEP_TRADES,
)
from stairways.rewards.settings import V3RewardConfig

COMPONENTS: tuple[str, ...] = (
    "pnl",
    "impact",
    "turnover",
    "downside",
    "kelly",
    "hold",
    "action_change",
    "ticket",
)

P_SCALE, P_RF_STEP, P_PNL, P_IMPACT, P_TURNOVER, P_DOWNSIDE = 0, 1, 2, 3, 4, 5
P_KELLY, P_HOLD, P_CHANGE, P_TICKET = 6, 7, 8, 9
N_PARAMS = 10
STATE_SIZE = 1  # stateless; one slot so every reward has a state row


def params(cfg: V3RewardConfig) -> np.ndarray:
    """Pack the config into the parameter vector the compiled step reads."""
    p = np.zeros(N_PARAMS, dtype=np.float64)
    p[P_SCALE] = cfg.scale
    p[P_RF_STEP] = cfg.risk_free_annual / cfg.periods_per_year
    p[P_PNL] = cfg.pnl_weight
    p[P_IMPACT] = cfg.impact_weight
    p[P_TURNOVER] = cfg.turnover_weight
    p[P_DOWNSIDE] = cfg.downside_weight
    p[P_KELLY] = cfg.kelly_weight
    p[P_HOLD] = cfg.hold_bonus
    p[P_CHANGE] = cfg.action_change_penalty
    p[P_TICKET] = cfg.ticket_cost
    return p


@core_jit(inline=True)
def step(x: np.ndarray, state: np.ndarray, p: np.ndarray, comps: np.ndarray) -> float:
    """Write the scaled components of one step into ``comps`` and return their sum."""
    cap = x[S_CAPITAL]
    eq = x[S_EQUITY]
    prev = x[S_EQUITY_PREV]
    r = (eq - prev) / cap
    changed = x[S_ACTION_CHANGED] > 0.5
    comps[0] = p[P_PNL] * (r - p[P_RF_STEP] * prev / cap)
    comps[1] = -p[P_IMPACT] * x[S_IMPACT] / cap
    comps[2] = -p[P_TURNOVER] * x[S_NOTIONAL] / cap
    comps[3] = -p[P_DOWNSIDE] * max(-r, 0.0)
    comps[4] = p[P_KELLY] * np.log(max(eq / prev, 1e-12))
    comps[5] = 0.0 if changed else p[P_HOLD]
    comps[6] = -p[P_CHANGE] if changed else 0.0
    comps[7] = -p[P_TICKET] * x[S_STEP_TRADES]
    total = 0.0
    for k in range(8):
        comps[k] *= p[P_SCALE]
        total += comps[k]
    return total


@core_jit
def reset_state(state: np.ndarray, p: np.ndarray) -> None:
    """Initial state (nothing to keep)."""
    state[:] = 0.0


@core_jit
def start_episode(state: np.ndarray, p: np.ndarray) -> None:
    """Per-episode reset (nothing to reset)."""


@core_jit
def end_episode(state: np.ndarray, p: np.ndarray) -> None:
    """Episode end (nothing to decay)."""
