"""Parity: the replay evaluator and a session driven through the simulated broker agree.

Same bars, same actions: identical fills (quantity and price), fees and equity, to the cent
(in fact to floating-point identity, since both call the same market-core functions).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pytest

from stairways.brokers.base import MinuteBar
from stairways.brokers.orders import OrderRequest
from stairways.brokers.settings import SimConfig
from stairways.brokers.sim import SimBroker
from stairways.config import StairwaysConfig
from stairways.env import kernels as kn
from stairways.env.vector import BatchCore
from stairways.evaluation.replay import BatchPolicy, eval_env, replay
from stairways.evaluation.traces import TraceMeta, ticker_column
from stairways.market.actions import target_shares, targets_after
from stairways.rewards.registry import build_reward
from tests.unit.evaluation.factory import random_walk_panel

SESSIONS, LENGTH = 3, 30


def _panel(seed: int):  # type: ignore[no-untyped-def]
    panel = random_walk_panel(SESSIONS, LENGTH, seed=seed)
    rng = np.random.default_rng(seed + 100)
    # thin and uneven volume so that impact (and its cap) matters
    volume = rng.integers(50, 5_000, size=panel.volume.shape).astype(np.float64)
    return dataclasses.replace(panel, volume=volume)


def _scripted(actions: np.ndarray):  # type: ignore[no-untyped-def]
    def make(core: BatchCore) -> BatchPolicy:
        def act(obs: np.ndarray, start: np.ndarray) -> np.ndarray:
            s = core.si[:, kn.I_SESSION]
            k = np.minimum(core.si[:, kn.I_BAR], actions.shape[1] - 1)
            return actions[s, k]

        return act

    return make


def _drive_sim(cfg: StairwaysConfig, panel, actions: np.ndarray, s: int):  # type: ignore[no-untyped-def]
    """One session through the simulated broker, sized and timed like the env."""
    m = cfg.market
    broker = SimBroker(SimConfig(starting_capital=m.starting_capital, costs=m.costs), panel.symbols)
    broker.connect()
    n = int(panel.lengths[s])
    t = len(panel.symbols)
    targets = np.zeros(t)
    equity, fees, qty, price = [], [], np.zeros((n, t)), np.full((n, t), np.nan)

    def record(step: int, fills) -> None:  # type: ignore[no-untyped-def]
        equity.append(broker.account().net_liquidation)
        fees.append(sum(f.commission for f in fills))
        for f in fills:
            j = panel.symbols.index(f.symbol)
            qty[step, j] += f.quantity
            price[step, j] = f.price

    for k in range(n):
        start = datetime.fromtimestamp(int(panel.ts[s, k]) / 1e9, tz=UTC)
        bars = [
            MinuteBar(
                sym,
                start,
                float(panel.open[s, k, j]),
                float(panel.high[s, k, j]),
                float(panel.low[s, k, j]),
                float(panel.close[s, k, j]),
                float(panel.volume[s, k, j]),
            )
            for j, sym in enumerate(panel.symbols)
        ]
        fills = broker.on_bars(bars)
        if k > 0:
            record(k - 1, fills)
        if k < n - 1:
            new = targets_after(m.action_set, np.array([actions[s, k]]), targets[None, :])[0]
            held = {p.symbol: p.quantity for p in broker.positions()}
            pending: dict[str, float] = {}
            for o in broker.open_orders():
                pending[o.symbol] = pending.get(o.symbol, 0.0) + o.remaining
            for j, sym in enumerate(panel.symbols):
                if new[j] == targets[j]:
                    continue
                want = target_shares(new[j], m.max_position_notional, panel.close[s, k, j])
                q = want - held.get(sym, 0.0) - pending.get(sym, 0.0)
                if q != 0.0:
                    result = broker.place(OrderRequest.from_decision(f"s{s}k{k}", sym, q))
                    assert result.sent, result.reason
            targets = new
    record(n - 1, broker.close_at_last_close())
    assert broker.positions() == []
    return np.array(equity), np.array(fees), qty, price


@pytest.mark.parametrize("seed", [3, 8])
def test_sim_broker_session_when_same_bars_and_actions_then_matches_replay_to_the_cent(
    seed: int,
) -> None:
    cfg = StairwaysConfig.model_validate(
        {"env": {"drawdown_cap": 1.0}, "market": {"costs": {"half_spread_bps": 2.0}}}
    )
    panel = _panel(seed)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 9, size=(SESSIONS, LENGTH))
    meta = TraceMeta(
        symbols=panel.symbols,
        reward_components=tuple(build_reward(cfg.reward).components),
        starting_capital=cfg.market.starting_capital,
        split=panel.split,
        policy="scripted",
    )
    frame = replay(eval_env(cfg, panel), meta, policy_factory=_scripted(actions)).trace.frame
    total_fills = 0
    for s in range(SESSIONS):
        rows = frame[frame["session"] == s].sort_values("step")
        assert len(rows) == LENGTH
        equity, fees, qty, price = _drive_sim(cfg, panel, actions, s)
        np.testing.assert_allclose(equity, rows["equity"].to_numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(fees, rows["fees"].to_numpy(), rtol=0, atol=1e-9)
        # to the cent, as a person would read the statement
        assert (np.round(equity, 2) == np.round(rows["equity"].to_numpy(), 2)).all()
        for j, sym in enumerate(panel.symbols):
            np.testing.assert_array_equal(qty[:, j], rows[ticker_column("fill_qty", sym)])
            np.testing.assert_allclose(
                price[:, j], rows[ticker_column("fill_price", sym)], rtol=0, atol=1e-9
            )
        total_fills += int((qty != 0).sum())
    # the scripted actions really traded, so the comparison is not flat-versus-flat
    assert total_fills > 10
