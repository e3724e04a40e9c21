"""The meaning of a discrete action, defined once for the env, the governor and the live loop.

Targets are per-ticker positions in {-1, 0, +1} (short, flat, long); the sizing rule turns a
target into shares: whole shares (:func:`target_shares`) or steps of ``10**-d`` shares for a
market with ``quantity_decimals: d`` (:func:`target_quantity`, the same rule with a step).
Two action sets exist:

``grid9`` (default)
    The action names every ticker's target at once. With tickers (NVDA, MSFT) the action is
    ``3 * nvda + msft`` where each digit is 0 = short, 1 = flat, 2 = long; so action 0 is
    short/short, 4 is flat/flat and 8 is long/long. With T tickers there are 3**T actions and the
    first ticker is the most significant base-3 digit.

``step5``
    The action moves one ticker's target by one step: 0 hold (keep every target), 1 NVDA up,
    2 NVDA down, 3 MSFT up, 4 MSFT down (generally ``1 + 2j`` up and ``2 + 2j`` down for ticker
    j, so 1 + 2T actions). Targets are clipped to {-1, 0, +1}; a single-ticker action never
    changes another ticker and hold never flattens.

The arithmetic lives in compiled scalar functions (:func:`apply_action`) used by the env kernel;
:func:`targets_after` is the same code over a batch.
"""

from __future__ import annotations

import math

import numpy as np

from stairways.errors import ConfigError, InputError
from stairways.market.jit import core_jit

GRID9 = 0
STEP5 = 1
# IBKR takes fractional stock quantities with up to four decimals; no stage needs finer steps.
MAX_QUANTITY_DECIMALS = 4
ACTION_SET_IDS: dict[str, int] = {"grid9": GRID9, "step5": STEP5}

_GRID_WORDS = ("short", "flat", "long")


def action_set_id(name: str) -> int:
    """The numeric id of an action set, or ConfigError naming the allowed names."""
    try:
        return ACTION_SET_IDS[name]
    except KeyError:
        raise ConfigError(
            f"market.action_set: unknown action set {name!r}; allowed: {sorted(ACTION_SET_IDS)}"
        ) from None


def n_actions(name: str, n_tickers: int) -> int:
    """Number of discrete actions of action set ``name`` for ``n_tickers`` tickers."""
    if action_set_id(name) == GRID9:
        return int(3**n_tickers)
    return 1 + 2 * n_tickers


def action_labels(name: str, symbols: tuple[str, ...]) -> list[str]:
    """Human-readable meaning of every action, in action order (for traces and reports)."""
    t = len(symbols)
    if action_set_id(name) == GRID9:
        labels = []
        for a in range(3**t):
            digits = [(a // 3 ** (t - 1 - j)) % 3 for j in range(t)]
            labels.append(
                "/".join(f"{s} {_GRID_WORDS[d]}" for s, d in zip(symbols, digits, strict=True))
            )
        return labels
    out = ["hold"]
    for s in symbols:
        out.extend([f"{s} up", f"{s} down"])
    return out


@core_jit(inline=True)
def apply_action(set_id: int, action: int, current: np.ndarray, out: np.ndarray) -> bool:
    """Write the targets after ``action`` into ``out``; return whether any target changed.

    ``out`` may be the same array as ``current``: each entry is read before it is written.
    """
    t = current.shape[0]
    changed = False
    if set_id == GRID9:
        rem = action
        for j in range(t - 1, -1, -1):
            v = float(rem % 3 - 1)
            rem //= 3
            if v != current[j]:
                changed = True
            out[j] = v
    else:
        for j in range(t):
            out[j] = current[j]
        if action > 0:
            j = (action - 1) // 2
            step = 1.0 if (action - 1) % 2 == 0 else -1.0
            v = min(1.0, max(-1.0, current[j] + step))
            if v != current[j]:
                changed = True
            out[j] = v
    return changed


@core_jit
def _targets_batch(set_id: int, actions: np.ndarray, current: np.ndarray, out: np.ndarray) -> None:
    for i in range(actions.shape[0]):
        apply_action(set_id, actions[i], current[i], out[i])


def targets_after(name: str, actions: np.ndarray, current: np.ndarray) -> np.ndarray:
    """New targets (N, T) after applying ``actions`` (N,) to ``current`` targets (N, T).

    :param name: action set name ("grid9" or "step5")
    :param actions: integer actions, one per row
    :param current: current targets in {-1, 0, +1}
    """
    cur = np.ascontiguousarray(current, dtype=np.float64)
    acts = np.ascontiguousarray(actions, dtype=np.int64)
    if cur.ndim != 2 or acts.shape != (cur.shape[0],):
        raise InputError(
            f"targets_after: actions shape {acts.shape} does not match targets {cur.shape}"
        )
    n = n_actions(name, cur.shape[1])
    if acts.size and (acts.min() < 0 or acts.max() >= n):
        raise InputError(f"actions must lie in [0, {n - 1}] for action set {name!r}")
    if cur.size and not np.isin(cur, (-1.0, 0.0, 1.0)).all():
        raise InputError("current targets must be -1, 0 or +1")
    out = np.empty_like(cur)
    _targets_batch(action_set_id(name), acts, cur, out)
    return out


@core_jit(inline=True)
def target_shares(target: float, max_notional: float, price: float) -> float:
    """Whole shares for a target in {-1, 0, +1} at ``price`` (never more than the notional)."""
    if target == 0.0:
        return 0.0
    n = np.floor(max_notional / price)
    return n if target > 0.0 else -n


@core_jit(inline=True)
def target_quantity(target: float, max_notional: float, price: float, scale: float) -> float:
    """Shares for a target in {-1, 0, +1} at ``price`` in steps of ``1 / scale`` shares: the
    most steps whose value stays within the notional. ``scale`` 1 is :func:`target_shares`
    (whole shares, bit for bit); 10**d sizes in fractions with d decimals (a notional-sized
    stage: $10 of a $400 stock is 0.025 shares)."""
    if target == 0.0:
        return 0.0
    n = np.floor(max_notional / price * scale) / scale
    return n if target > 0.0 else -n


def quantity_scale(decimals: int) -> float:
    """Steps per share for quantities with ``decimals`` decimals (0: whole shares)."""
    if not 0 <= decimals <= MAX_QUANTITY_DECIMALS:
        raise InputError(
            f"quantity decimals must lie in 0..{MAX_QUANTITY_DECIMALS}, got {decimals}"
        )
    return float(10**decimals)


def round_quantity(quantity: float, decimals: int = 0) -> float:
    """Round a signed quantity toward zero to steps of ``10**-decimals`` shares (an exposure
    is never rounded up by more than float noise, a millionth of a step). The result is the
    float nearest its decimal value (0.0523, not 0.052299999...), so sums of steps reconcile
    to the step."""
    if not math.isfinite(quantity):
        raise InputError(f"order quantity must be finite, got {quantity}")
    if decimals == 0:
        return float(math.trunc(quantity))
    scale = quantity_scale(decimals)
    # A quantity built from steps (x / scale) can sit a hair below its step: 1e-6 of a step
    # absorbs that float noise and nothing a real quantity carries.
    steps = math.trunc(quantity * scale + math.copysign(1e-6, quantity))
    return steps / scale


def is_multiple_of_step(quantity: float, decimals: int) -> bool:
    """Whether ``quantity`` is a whole number of ``10**-decimals`` share steps (within float
    noise)."""
    if not math.isfinite(quantity):
        return False
    x = quantity * 10**decimals
    return abs(x - round(x)) <= 1e-6
