"""The default v3 weights rank policies by what they earn net of costs.

A session is 390 steps on $10,000 of capital. The "edge" session holds a $5,000 position that
moves +-$5 a bar around a drift, and changes its target 14 times (one order each, costs already
inside the equity change), as the lead-lag rule does on the synthetic market. The old weights
(turnover 0.001, impact 1.0, downside 0.5) scored such a session below staying flat: with them
PPO's best policy was to do nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from stairways.market.step_state import (
    S_ACTION_CHANGED,
    S_CAPITAL,
    S_EQUITY,
    S_EQUITY_PREV,
    S_NOTIONAL,
    S_STEP_TRADES,
    step_width,
)
from stairways.rewards.registry import RewardSystem, build_reward
from stairways.rewards.settings import RewardConfig, V3RewardConfig

CAPITAL = 10_000.0
STEPS = 390
ORDERS = 14
NOISE = 5.0  # dollars a bar on the held position
OLD_WEIGHTS = V3RewardConfig(impact_weight=1.0, turnover_weight=0.001, downside_weight=0.5)


def _session_reward(rs: RewardSystem, drift: float, orders: int) -> float:
    """Sum of the v3 reward over one session with the given per-bar drift and order count."""
    state = rs.initial_state(1)[0]
    trade_steps = set(np.linspace(0, STEPS - 1, orders, dtype=int).tolist()) if orders else set()
    equity = CAPITAL
    total = 0.0
    for k in range(STEPS):
        x = np.zeros(step_width(2))
        x[S_CAPITAL] = CAPITAL
        x[S_EQUITY_PREV] = equity
        held = orders > 0
        equity += (drift + (NOISE if k % 2 == 0 else -NOISE)) if held else 0.0
        x[S_EQUITY] = equity
        if k in trade_steps:
            x[S_ACTION_CHANGED] = 1.0
            x[S_STEP_TRADES] = 1.0
            x[S_NOTIONAL] = 5_000.0
        r, _, state = rs.evaluate(state, x)
        total += r
    return total


def test_default_weights_when_a_position_earns_100_dollars_a_session_then_it_beats_flat() -> None:
    rs = build_reward(RewardConfig(name="v3"))
    flat = _session_reward(rs, 0.0, 0)
    edge = _session_reward(rs, 100.0 / STEPS, ORDERS)
    assert flat == pytest.approx(STEPS * 100 * 1e-5 - STEPS * 100 * 0.04 / (252 * 390), rel=1e-9)
    assert edge > flat + 0.2


def test_default_weights_when_a_position_has_no_edge_then_flat_beats_it() -> None:
    rs = build_reward(RewardConfig(name="v3"))
    assert _session_reward(rs, 0.0, ORDERS) < _session_reward(rs, 0.0, 0)


def test_old_weights_scored_a_100_dollar_session_below_flat() -> None:
    rs = build_reward(RewardConfig(name="v3", v3=OLD_WEIGHTS))
    edge = _session_reward(rs, 100.0 / STEPS, ORDERS)
    assert edge < _session_reward(rs, 0.0, 0) - 2.0
