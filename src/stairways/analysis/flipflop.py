"""Flip-flop detection: positions that reverse sign within a few bars.

The one definition used everywhere (notebook, diagnostics, reports):

- The sign of a ticker's position at a step is +1 (long), -1 (short) or 0 (flat; magnitudes
  at or below ``tolerance`` count as flat).
- A *flip* happens at step ``t`` when the position there has the opposite sign of the most
  recent non-flat position at an earlier step ``t0`` and ``t - t0 <= window``. A direct
  reversal (long at ``t - 1``, short at ``t``) has ``t - t0 = 1``; a reversal through flat
  (long, flat for a few bars, then short) counts when the flat stretch is short enough that
  the gap is still within ``window``.
- The *flip rate* of an episode is its flips summed over tickers per 60 bars (one trading
  hour of 1-minute bars), so sessions of different lengths compare.
- An episode is *flagged* when its flip rate is above ``share`` times the rate of a *random
  policy* that draws every ticker's position (short, flat or long, equally likely) afresh each
  bar (:func:`random_flip_rate`; for the default 5-bar window and two tickers 39.8 flips per
  60 bars). A flagged episode whose net P&L is at or below zero is flagged as *losing*, the
  case that most needs attention.

Why a quarter of the random rate (``share`` 0.25, the default: 10.0 flips per 60 bars for the
default window and two tickers): deliberate trading reverses far less often than coin flips.
On the default synthetic market (February 2024, window 5) a momentum rule on MSFT's 5-bar
return that earns $109 a session reverses 2.6 times an hour on average and at most 6.3 times
in a session; over January and February the reference rule that knows the planted lead-lag
signal ($116-134 a session) averages 1.6-6.3 depending on its entry threshold; the demo's best
checkpoint was reported (issue 10) to reverse about 3 times an hour while earning money. A
policy that reverses every 2 or 3 bars (30 and 20 flips per 60 bars on one ticker, losing $180
and $149 a session there) is flagged, and so is one reversing every 4 or 5 bars (15 and 12).
A fixed count (the former 2 flips per 60 bars) flagged every episode of the profitable
checkpoint, so it told the reader nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stairways.errors import InputError

BARS_PER_HOUR = 60
FLIP_SUMMARY_COLUMNS: tuple[str, ...] = (
    "steps",
    "flips",
    "flip_rate",
    "net_pnl",
    "flagged",
    "flagged_losing",
)


def random_flip_rate(window: int, n_tickers: int) -> float:
    """Expected flips per 60 bars of the random policy (each bar, each ticker's position drawn
    uniformly from short, flat and long), summed over ``n_tickers`` tickers.

    Per ticker and bar a flip needs a non-flat position now (probability 2/3) whose most recent
    non-flat predecessor, ``k`` bars back with all bars between flat, has the other sign:
    ``2/3 * sum_{k=1..window} (1/3)**(k-1) * 1/3 = (1 - 3**-window) / 3``.

    :param window: the flip window in bars
    :param n_tickers: tickers whose flips are summed
    """
    if window < 1:
        raise InputError(f"flip-flop window must be at least 1 bar, got {window}")
    if n_tickers < 1:
        raise InputError(f"the random flip rate needs at least one ticker, got {n_tickers}")
    return n_tickers * BARS_PER_HOUR * (1.0 - 3.0**-window) / 3.0


@dataclass(frozen=True)
class FlipFlopRule:
    """Parameters of the flip-flop definition.

    :param window: a reversal counts when at most this many bars separate the two signs
    :param share: episodes with a flip rate above this share of the random policy's rate
        (:func:`random_flip_rate`) are flagged
    :param tolerance: position magnitudes at or below this count as flat
    """

    window: int = 5
    share: float = 0.25
    tolerance: float = 1e-9

    def __post_init__(self) -> None:
        if self.window < 1:
            raise InputError(f"flip-flop window must be at least 1 bar, got {self.window}")
        if not (np.isfinite(self.share) and 0.0 < self.share <= 1.0):
            raise InputError(
                "flip-flop share must be a fraction of the random policy's rate in (0, 1], "
                f"got {self.share}"
            )
        if not self.tolerance >= 0:
            raise InputError(f"flip-flop tolerance must be >= 0, got {self.tolerance}")

    def threshold(self, n_tickers: int) -> float:
        """Flips per 60 bars above which an episode with ``n_tickers`` tickers is flagged."""
        return self.share * random_flip_rate(self.window, n_tickers)

    def describe(self, n_tickers: int) -> str:
        """One sentence for reports: the window, the threshold and where it comes from."""
        random_rate = random_flip_rate(self.window, n_tickers)
        return (
            f"a flip is a position reversal within {self.window} bars; an episode is flagged "
            f"above {self.threshold(n_tickers):.1f} flips per 60 bars, {self.share:.0%} of the "
            f"{random_rate:.1f} of a policy that picks every position at random"
        )


def position_signs(positions: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """Signs (+1, 0, -1 as int8) of positions; magnitudes <= ``tolerance`` are flat.

    :param positions: positions, any shape; NaN is refused
    :param tolerance: magnitude at or below which a position counts as flat
    """
    arr = np.asarray(positions, dtype=np.float64)
    if np.isnan(arr).any():
        raise InputError("positions contain NaN; flip-flop detection needs every step's position")
    signs = np.sign(arr).astype(np.int8)
    signs[np.abs(arr) <= tolerance] = 0
    return signs


def flip_mask(positions: np.ndarray, window: int, tolerance: float = 1e-9) -> np.ndarray:
    """Boolean mask, same shape as ``positions``, true at each step where a flip happens.

    :param positions: one episode's positions, shape (steps,) or (steps, tickers)
    :param window: maximum bars between the old sign and the reversed sign
    :param tolerance: magnitude at or below which a position counts as flat
    """
    if window < 1:
        raise InputError(f"flip-flop window must be at least 1 bar, got {window}")
    signs = position_signs(positions, tolerance)
    squeeze = signs.ndim == 1
    if squeeze:
        signs = signs[:, None]
    if signs.ndim != 2:
        raise InputError(
            f"positions must have shape (steps,) or (steps, tickers), got {signs.shape}"
        )
    mask = np.zeros(signs.shape, dtype=bool)
    for j in range(signs.shape[1]):
        held = np.flatnonzero(signs[:, j])
        if held.size < 2:
            continue
        # Consecutive non-flat steps: a sign change between them is a reversal, and the index
        # gap is the number of bars it took (1 for a direct flip, more through flat).
        before, after = held[:-1], held[1:]
        reversed_ = signs[before, j] != signs[after, j]
        quick = (after - before) <= window
        mask[after[reversed_ & quick], j] = True
    return mask[:, 0] if squeeze else mask


def count_flips(positions: np.ndarray, window: int, tolerance: float = 1e-9) -> np.ndarray:
    """Flips per ticker in one episode (int64 array of length tickers; scalar array for 1-D)."""
    return np.asarray(flip_mask(positions, window, tolerance).sum(axis=0), dtype=np.int64)


def flip_rate(flips: float, steps: int) -> float:
    """Flips per 60 bars; an episode without steps has rate 0.

    :param flips: flips in the episode (summed over tickers)
    :param steps: bars in the episode
    """
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    return 0.0 if steps == 0 else float(flips) * BARS_PER_HOUR / steps


def detect_flip_flops(
    trace: pd.DataFrame,
    *,
    episode_columns: Sequence[str],
    position_columns: Sequence[str],
    pnl_column: str,
    rule: FlipFlopRule,
    order_column: str | None = None,
) -> pd.DataFrame:
    """Per-episode flip counts, rates and flags from a step-level trace.

    :param trace: one row per step
    :param episode_columns: columns identifying an episode (for example checkpoint and session)
    :param position_columns: one column per ticker holding the position at that step
    :param pnl_column: per-step P&L; its episode sum is the episode's net P&L
    :param rule: window, threshold share and flat tolerance
    :param order_column: column giving step order inside an episode (rows are sorted by it)
    :return: one row per episode indexed by ``episode_columns`` with
        :data:`FLIP_SUMMARY_COLUMNS` plus ``flips_<ticker column>`` per ticker
    """
    needed = [*episode_columns, *position_columns, pnl_column]
    if order_column is not None:
        needed.append(order_column)
    missing = [c for c in needed if c not in trace.columns]
    if missing:
        raise InputError(
            f"trace lacks column(s) {missing} needed for flip-flop detection; "
            f"it has {list(trace.columns)}"
        )
    if not episode_columns or not position_columns:
        raise InputError("flip-flop detection needs at least one episode and one position column")
    threshold = rule.threshold(len(position_columns))
    frame = trace
    if order_column is not None:
        frame = trace.sort_values([*episode_columns, order_column], kind="stable")
    rows: list[dict[str, object]] = []
    keys: list[tuple[object, ...]] = []
    for key, group in frame.groupby(list(episode_columns), sort=True, dropna=False):
        positions = group[list(position_columns)].to_numpy(dtype=np.float64)
        per_ticker = count_flips(positions, rule.window, rule.tolerance)
        flips = int(per_ticker.sum())
        steps = len(group)
        rate = flip_rate(flips, steps)
        net_pnl = float(group[pnl_column].sum())
        flagged = rate > threshold
        row: dict[str, object] = {
            "steps": steps,
            "flips": flips,
            "flip_rate": rate,
            "net_pnl": net_pnl,
            "flagged": flagged,
            "flagged_losing": bool(flagged and net_pnl <= 0.0),
        }
        for col, n in zip(position_columns, per_ticker, strict=True):
            row[f"flips_{col}"] = int(n)
        rows.append(row)
        keys.append(key if isinstance(key, tuple) else (key,))
    index = pd.MultiIndex.from_tuples(keys, names=list(episode_columns))
    out = pd.DataFrame(rows, index=index)
    if len(episode_columns) == 1:
        out.index = out.index.get_level_values(0)
    return out
