"""The ``refined`` reward (RefinedRewardSystem): normalised P&L with shaping for survival.

Components of one step (``step`` counts the episode's steps, this one included)::

    pnl          = pnl_scale * (equity - equity_prev) / max(peak_equity, pnl_epsilon)
    holding      = holding_alpha  when a position is open and the summed equity change over the
                   last holding_lookback steps (this one included) is positive ("working")
    drawdown     = -penalty_beta * tanh(dd_ema), dd_ema = EMA of the drawdown with weight
                   drawdown_smoothing on the newest value (reset each episode)
    exploration  = exploration_coef * explore_scale when the action changed a target;
                   explore_scale starts at 1 and is multiplied by exploration_decay at the end
                   of every episode (it persists across episodes: see get_state/set_state)
    directional  = directional_coef * mean over tickers of sign(position) * sign(price return)
    time         = time_bonus when step >= time_bonus_start
    early_exit   = -early_exit_tax when the drawdown cap ends the episode (terminated before the
                   session's closing step, step < session_length) with
                   step < min_episode_length; additionally -secondary_exit_tax when
                   step < secondary_exit_threshold (0 disables)
    completion   = completion_bonus when step == completion_threshold, plus
                   major_completion_bonus when step == major_completion_threshold (0 disables)

The total is the sum of the components.
"""

from __future__ import annotations

import numpy as np

from stairways.market.jit import core_jit
from stairways.market.step_state import (
    N_SCALAR,
    N_TICKER,
    S_ACTION_CHANGED,
    S_DRAWDOWN,
    S_EQUITY,
    S_EQUITY_PREV,
    S_LENGTH,
    S_PEAK,
    S_STEP,
    S_TERMINATED,
    S_TRUNCATED,
    T_RETURN,
    T_SHARES,
)
from stairways.rewards.settings import RefinedRewardConfig

COMPONENTS: tuple[str, ...] = (
    "pnl",
    "holding",
    "drawdown",
    "exploration",
    "directional",
    "time",
    "early_exit",
    "completion",
)

(
    P_PNL_SCALE,
    P_EPS,
    P_HOLD_ALPHA,
    P_LOOKBACK,
    P_BETA,
    P_SMOOTH,
    P_EXPLORE,
    P_DECAY,
    P_DIRECTIONAL,
    P_TIME,
    P_TIME_START,
    P_MIN_LEN,
    P_TAX,
    P_TAX2_AT,
    P_TAX2,
    P_DONE_AT,
    P_DONE_BONUS,
    P_MAJOR_AT,
    P_MAJOR_BONUS,
) = range(19)
N_PARAMS = 19

# State: persistent slots first, then per-episode slots, then the holding window ring.
R_EXPLORE_SCALE = 0  # persists across episodes
R_EPISODES = 1  # persists across episodes
R_DD_EMA = 2
R_RING_POS = 3
R_RING_N = 4
R_RING = 5


def params(cfg: RefinedRewardConfig) -> np.ndarray:
    """Pack the config into the parameter vector the compiled step reads."""
    p = np.zeros(N_PARAMS, dtype=np.float64)
    p[P_PNL_SCALE] = cfg.pnl_scale
    p[P_EPS] = cfg.pnl_epsilon
    p[P_HOLD_ALPHA] = cfg.holding_alpha
    p[P_LOOKBACK] = cfg.holding_lookback
    p[P_BETA] = cfg.penalty_beta
    p[P_SMOOTH] = cfg.drawdown_smoothing
    p[P_EXPLORE] = cfg.exploration_coef
    p[P_DECAY] = cfg.exploration_decay
    p[P_DIRECTIONAL] = cfg.directional_coef
    p[P_TIME] = cfg.time_bonus
    p[P_TIME_START] = cfg.time_bonus_start
    p[P_MIN_LEN] = cfg.min_episode_length
    p[P_TAX] = cfg.early_exit_tax
    p[P_TAX2_AT] = cfg.secondary_exit_threshold
    p[P_TAX2] = cfg.secondary_exit_tax
    p[P_DONE_AT] = cfg.completion_threshold
    p[P_DONE_BONUS] = cfg.completion_bonus
    p[P_MAJOR_AT] = cfg.major_completion_threshold
    p[P_MAJOR_BONUS] = cfg.major_completion_bonus
    return p


def state_size(cfg: RefinedRewardConfig) -> int:
    """Length of the state row for this config."""
    return R_RING + cfg.holding_lookback


@core_jit(inline=True)
def _sign(v: float) -> float:
    if v > 0.0:
        return 1.0
    if v < 0.0:
        return -1.0
    return 0.0


@core_jit(inline=True)
def step(x: np.ndarray, state: np.ndarray, p: np.ndarray, comps: np.ndarray) -> float:
    """Write the components of one step into ``comps``, update ``state``, return the total."""
    n_tickers = (x.shape[0] - N_SCALAR) // N_TICKER
    d_eq = x[S_EQUITY] - x[S_EQUITY_PREV]
    steps = x[S_STEP]
    comps[0] = p[P_PNL_SCALE] * d_eq / max(x[S_PEAK], p[P_EPS])

    lookback = int(p[P_LOOKBACK])
    pos = int(state[R_RING_POS])
    state[R_RING + pos] = d_eq
    state[R_RING_POS] = (pos + 1) % lookback
    n = min(int(state[R_RING_N]) + 1, lookback)
    state[R_RING_N] = n
    window = 0.0
    for k in range(n):
        window += state[R_RING + k]
    in_position = False
    directional = 0.0
    for j in range(n_tickers):
        base = N_SCALAR + N_TICKER * j
        if x[base + T_SHARES] != 0.0:
            in_position = True
        directional += _sign(x[base + T_SHARES]) * _sign(x[base + T_RETURN])
    comps[1] = p[P_HOLD_ALPHA] if (in_position and window > 0.0) else 0.0

    a = p[P_SMOOTH]
    state[R_DD_EMA] = (1.0 - a) * state[R_DD_EMA] + a * x[S_DRAWDOWN]
    comps[2] = -p[P_BETA] * np.tanh(state[R_DD_EMA])

    comps[3] = p[P_EXPLORE] * state[R_EXPLORE_SCALE] if x[S_ACTION_CHANGED] > 0.5 else 0.0
    comps[4] = p[P_DIRECTIONAL] * directional / n_tickers
    comps[5] = p[P_TIME] if steps >= p[P_TIME_START] else 0.0

    tax = 0.0
    # The session's close terminates an episode too (at step == session_length): no tax there.
    early_end = x[S_TERMINATED] > 0.5 and x[S_TRUNCATED] < 0.5 and steps < x[S_LENGTH]
    if early_end and steps < p[P_MIN_LEN]:
        tax = -p[P_TAX]
        if p[P_TAX2_AT] > 0.0 and steps < p[P_TAX2_AT]:
            tax -= p[P_TAX2]
    comps[6] = tax

    bonus = 0.0
    if p[P_DONE_AT] > 0.0 and steps == p[P_DONE_AT]:
        bonus += p[P_DONE_BONUS]
    if p[P_MAJOR_AT] > 0.0 and steps == p[P_MAJOR_AT]:
        bonus += p[P_MAJOR_BONUS]
    comps[7] = bonus

    total = 0.0
    for k in range(8):
        total += comps[k]
    return total


@core_jit
def reset_state(state: np.ndarray, p: np.ndarray) -> None:
    """Initial state of a new learner: exploration scale 1, no episodes."""
    state[:] = 0.0
    state[R_EXPLORE_SCALE] = 1.0


@core_jit
def start_episode(state: np.ndarray, p: np.ndarray) -> None:
    """Clear the per-episode slots (drawdown EMA and holding window)."""
    state[R_DD_EMA] = 0.0
    state[R_RING_POS] = 0.0
    state[R_RING_N] = 0.0
    state[R_RING:] = 0.0


@core_jit
def end_episode(state: np.ndarray, p: np.ndarray) -> None:
    """Decay the exploration bonus and count the episode."""
    state[R_EXPLORE_SCALE] *= p[P_DECAY]
    state[R_EPISODES] += 1.0
