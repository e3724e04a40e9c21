"""The replay's trace, recomputed from the raw bars and the actions alone.

Nothing from the replay, the env kernel or the market core is called to compute the expected
values: the action sets, the sizing rule, the order timing and the cost model are written out
here from their documentation (:mod:`stairways.market.actions`, :mod:`stairways.env.kernels`,
:mod:`stairways.market.costs`), with the cost constants read from the config. Only the
replay's recorded actions (which a random policy chose) are taken from the trace.

Timing: the step deciding on bar ``k`` (``k < L - 1``) sizes every ticker whose target changed
in whole shares at ``close[k]`` (``floor(max_notional / close[k])``), fills the difference to
the held shares at ``open[k + 1]`` with costs computed from bar ``k``'s high-low range and
volume, and marks at ``close[k + 1]``. The last step of a session (deciding on bar ``L - 1``)
ignores its action and closes every position at ``close[L - 1]`` with bar ``L - 1``'s costs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.config import StairwaysConfig
from stairways.data.panel import SessionPanel
from stairways.evaluation.replay import eval_env, replay
from stairways.evaluation.traces import TraceMeta
from stairways.rewards.registry import build_reward
from tests.unit.env.panels import random_walk_panel


def _decode(action_set: str, action: int, current: np.ndarray) -> np.ndarray:
    """Targets after ``action``, from the documented meaning of the action sets."""
    t = len(current)
    if action_set == "grid9":
        # first ticker is the most significant base-3 digit; digit 0 short, 1 flat, 2 long
        digits = [(action // 3 ** (t - 1 - j)) % 3 for j in range(t)]
        return np.array([d - 1.0 for d in digits])
    out = current.copy()
    if action == 0:
        return out
    j, down = (action - 1) // 2, (action - 1) % 2 == 1
    out[j] = min(1.0, max(-1.0, out[j] + (-1.0 if down else 1.0)))
    return out


def _fill(qty: float, ref: float, high: float, low: float, volume: float, cfg: Any) -> dict:
    """Fill price and costs of one order, from the documented cost model."""
    c = cfg.market.costs
    h = c.half_spread_bps / 1e4
    sigma = math.log(high / low) / (2.0 * math.sqrt(math.log(2.0)))
    m = min(c.impact_coef * sigma * math.sqrt(abs(qty) / max(volume, 1.0)), c.impact_max_bps / 1e4)
    price = ref * (1.0 + math.copysign(1.0, qty) * (h + m))
    commission = max(abs(qty) * c.commission_per_share, c.commission_min)
    if c.commission_max_fraction is not None:
        commission = min(commission, c.commission_max_fraction * abs(qty) * price)
    return {
        "price": price,
        "commission": commission,
        "spread": abs(qty) * ref * h,
        "impact": abs(qty) * ref * m,
    }


def _expected(panel: SessionPanel, actions: pd.DataFrame, cfg: Any) -> pd.DataFrame:
    """Per step: fills, fees, costs, positions, equity and P&L, recomputed from the bars."""
    t = panel.n_tickers
    capital = cfg.market.starting_capital
    notional = cfg.market.max_position_notional
    rows = []
    for s in range(panel.n_sessions):
        n = int(panel.lengths[s])
        acts = actions.loc[actions["session"] == s, "action"].to_numpy()
        cash, shares, targets = capital, np.zeros(t), np.zeros(t)
        for k in range(n):
            fills = np.zeros(t)
            prices = np.full(t, np.nan)
            fees = spread = impact = traded = 0.0
            if k < n - 1:
                new = _decode(cfg.market.action_set, int(acts[k]), targets)
                orders = np.zeros(t)
                for j in range(t):
                    if new[j] != targets[j]:
                        want = math.floor(notional / panel.close[s, k, j]) * new[j]
                        orders[j] = want - shares[j]
                targets = new
                ref_bar, ref_price, mark_bar = k, panel.open[s, k + 1], k + 1
            else:
                orders = -shares.copy()
                targets = np.zeros(t)
                ref_bar, ref_price, mark_bar = k, panel.close[s, k], k
            for j in range(t):
                q = orders[j]
                if q == 0.0:
                    continue
                f = _fill(
                    q,
                    ref_price[j],
                    panel.high[s, ref_bar, j],
                    panel.low[s, ref_bar, j],
                    panel.volume[s, ref_bar, j],
                    cfg,
                )
                cash -= q * f["price"] + f["commission"]
                shares[j] += q
                fills[j], prices[j] = q, f["price"]
                fees += f["commission"]
                spread += f["spread"]
                impact += f["impact"]
                traded += abs(q) * f["price"]
            equity = cash + float(shares @ panel.close[s, mark_bar])
            rows.append(
                {
                    "session": s,
                    "step": k,
                    "equity": equity,
                    "fees": fees,
                    "spread_cost": spread,
                    "impact_cost": impact,
                    "notional": traded,
                    **{f"fill_qty__{sym}": fills[j] for j, sym in enumerate(panel.symbols)},
                    **{f"fill_price__{sym}": prices[j] for j, sym in enumerate(panel.symbols)},
                    **{f"position__{sym}": shares[j] for j, sym in enumerate(panel.symbols)},
                    **{
                        f"price__{sym}": panel.close[s, mark_bar, j]
                        for j, sym in enumerate(panel.symbols)
                    },
                }
            )
    out = pd.DataFrame(rows)
    prev = out.groupby("session")["equity"].shift(1).fillna(capital)
    out["step_pnl"] = out["equity"] - prev
    return out


def _random_policy(seed: int, n_actions: int) -> Any:
    def make(core: Any) -> Any:
        rng = np.random.default_rng(seed)

        def act(obs: np.ndarray, start: np.ndarray) -> np.ndarray:
            # mostly holds (repeats), sometimes a new random action: realistic turnover
            return rng.integers(0, n_actions, size=len(start))

        return act

    return make


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    action_set=st.sampled_from(["grid9", "step5"]),
    commission_min=st.sampled_from([0.0, 0.35, 5.0]),
    half_spread_bps=st.sampled_from([0.0, 1.0, 7.5]),
)
def test_fills_fees_and_pnl_recomputed_from_bars_and_actions_match_the_trace(
    seed: int, action_set: str, commission_min: float, half_spread_bps: float
) -> None:
    cfg = StairwaysConfig.model_validate(
        {
            "market": {
                "action_set": action_set,
                "costs": {"commission_min": commission_min, "half_spread_bps": half_spread_bps},
            },
            "env": {"drawdown_cap": 1.0},  # no stop: every session runs to its close
        }
    )
    panel = random_walk_panel(lengths=(40, 17, 40), seed=seed, vol=0.004)
    n_actions = 9 if action_set == "grid9" else 5
    meta = TraceMeta(
        symbols=panel.symbols,
        reward_components=build_reward(cfg.reward).components,
        starting_capital=cfg.market.starting_capital,
        split=panel.split,
        policy="random",
        checkpoint="",
        run="",
    )
    venv = eval_env(cfg, panel)
    try:
        frame = replay(venv, meta, policy_factory=_random_policy(seed, n_actions)).trace.frame
    finally:
        venv.close()
    expected = _expected(panel, frame[["session", "step", "action"]], cfg)
    assert len(frame) == len(expected) == int(panel.lengths.sum())
    assert (expected[[c for c in expected if c.startswith("fill_qty")]] != 0).any().any()
    for column in expected.columns:
        got = frame[column].to_numpy(dtype=np.float64)
        want = expected[column].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-7, err_msg=column)
    # every session ends flat, and the gross P&L identity holds for the recomputed costs
    last = expected.groupby("session").tail(1)
    assert (last[[c for c in last if c.startswith("position__")]] == 0.0).all().all()
    gross = expected["step_pnl"] + expected["fees"] + expected["spread_cost"]
    np.testing.assert_allclose(
        frame["gross_pnl"], gross + expected["impact_cost"], rtol=1e-10, atol=1e-7
    )
