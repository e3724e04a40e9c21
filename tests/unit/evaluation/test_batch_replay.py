"""The joint replay (agent and baselines in one batched env) against the reference path.

The reference path replays the agent through SB3's VecNormalize over the batched env
(:func:`evaluate_policy_on_panel`) and each baseline in its own env
(:func:`run_baselines_one_by_one`). The fast path must give the same traces, value for value:
P&L to the last bit, so every metric and gate is equal too. Sessions of different lengths and a
tight drawdown cap (stop-outs) make the per-env bookkeeping matter.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from stairways.config import StairwaysConfig
from stairways.data.panel import SessionPanel
from stairways.env.trading_env import make_env
from stairways.errors import InternalError
from stairways.evaluation.baselines import (
    baseline_cache_key,
    baseline_plans,
    clear_baseline_cache,
    run_baselines,
    run_baselines_one_by_one,
)
from stairways.evaluation.batch_replay import replay_policies
from stairways.evaluation.gates import evaluated
from stairways.evaluation.runner import (
    CheckpointRef,
    evaluate_policy_on_panel,
    evaluate_with_baselines,
)
from stairways.evaluation.stats import resample_indices
from stairways.rewards.registry import build_reward
from stairways.training.rundir import CheckpointFiles
from tests.unit.evaluation.factory import make_panel

SESSIONS, LENGTH = 7, 60
LENGTHS = [60, 60, 35, 60, 12, 60, 48]


def _panel(seed: int) -> SessionPanel:
    """Volatile random walks (drawdown stops happen) with sessions of different lengths."""
    rng = np.random.default_rng(seed)
    start = np.array([100.0, 250.0])
    close = start * np.exp(np.cumsum(rng.normal(0.0, 0.004, (SESSIONS, LENGTH, 2)), axis=1))
    open_ = close * np.exp(rng.normal(0.0, 0.001, close.shape))
    feats = rng.normal(size=(SESSIONS, LENGTH, 2, 3)).clip(-4, 4)
    return make_panel(open_, close, features=feats, lengths=LENGTHS)


def _config(reward: str, mode: str = "internal") -> StairwaysConfig:
    return StairwaysConfig.model_validate(
        {"reward": {"name": reward, "mode": mode}, "env": {"drawdown_cap": 0.004}}
    )


def _checkpoint(
    tmp_path: Path, cfg: StairwaysConfig, panel: SessionPanel
) -> tuple[CheckpointRef, PPO]:
    """A random-init PPO, non-trivial VecNormalize statistics and a used reward state."""
    venv = DummyVecEnv([lambda: make_env(cfg, panel)])
    model = PPO("MlpPolicy", venv, seed=5, device="cpu", n_steps=32, batch_size=32)
    norm = VecNormalize(DummyVecEnv([lambda: make_env(cfg, panel)]), norm_reward=False)
    rng = np.random.default_rng(9)
    dim = norm.observation_space.shape[0]
    norm.obs_rms.mean = rng.normal(0.0, 0.5, dim)
    norm.obs_rms.var = rng.uniform(0.5, 2.0, dim)
    files = CheckpointFiles(
        timesteps=100,
        model=tmp_path / "checkpoint_100.zip",
        vecnormalize=tmp_path / "vecnormalize_100.pkl",
        reward_state=tmp_path / "reward_state_100.json",
    )
    model.save(files.model)
    norm.save(str(files.vecnormalize))
    reward = build_reward(cfg.reward)
    state = reward.initial_state(2)
    state += rng.uniform(0.0, 0.5, state.shape)  # a reward state that is not the fresh one
    files.reward_state.write_text(json.dumps(reward.state_to_json(state)))
    return CheckpointRef("checkpoint_100", files), PPO.load(files.model, device="cpu")


@pytest.mark.parametrize(
    ("reward", "mode"), [("v3", "internal"), ("refined", "internal"), ("refined", "shim")]
)
def test_fast_path_traces_equal_the_reference_path(tmp_path: Path, reward: str, mode: str) -> None:
    cfg = _config(reward, mode)
    panel = _panel(seed=21)
    ref, model = _checkpoint(tmp_path, cfg, panel)
    clear_baseline_cache()
    agent, baselines = evaluate_with_baselines(cfg, panel, ref, model, run="r")
    ref_agent = evaluate_policy_on_panel(cfg, panel, ref, run="r", model=model)
    ref_base = run_baselines_one_by_one(cfg, panel, run="r")
    pd.testing.assert_frame_equal(agent.trace.frame, ref_agent.trace.frame, check_exact=True)
    assert agent.trace.meta == ref_agent.trace.meta
    assert list(baselines) == list(ref_base) == ["flat", "buy_and_hold_NVDA", "buy_and_hold_MSFT"]
    for name, r in ref_base.items():
        pd.testing.assert_frame_equal(baselines[name].trace.frame, r.trace.frame, check_exact=True)
        assert baselines[name].trace.meta == r.trace.meta
    ev = cfg.evaluation
    assert evaluated(agent.trace, ev).metrics == evaluated(ref_agent.trace, ev).metrics
    # The comparison means something only if the agent trades and some episodes stop early.
    frame = agent.trace.frame
    assert frame["action"].nunique() > 1 and (frame["fill_qty__NVDA"] != 0).any()
    steps = pd.concat([b.trace.frame for b in baselines.values()]).groupby(["session"]).size()
    ran = {
        name: b.trace.frame.groupby("session").size().to_numpy() for name, b in baselines.items()
    }
    assert any((n < np.asarray(LENGTHS)).any() for n in ran.values()), "no drawdown stop-out"
    assert len(steps) == SESSIONS


def test_joint_replay_refuses_the_reward_shim() -> None:
    cfg = _config("refined", "shim")
    panel = _panel(seed=3)
    with pytest.raises(InternalError, match="shim"):
        replay_policies(cfg, panel, agent=None, baselines=baseline_plans(cfg, panel))


def test_cached_baselines_equal_fresh_ones_and_any_change_is_a_new_replay(tmp_path: Path) -> None:
    cfg = _config("v3")
    panel = _panel(seed=8)
    ref, model = _checkpoint(tmp_path, cfg, panel)
    clear_baseline_cache()
    _, first = evaluate_with_baselines(cfg, panel, ref, model, run="a")
    _, second = evaluate_with_baselines(cfg, panel, ref, model, run="b")
    assert not any(r.extra["cached"] for r in first.values())
    assert all(r.extra["cached"] for r in second.values())
    for name, r in first.items():
        pd.testing.assert_frame_equal(second[name].trace.frame, r.trace.frame, check_exact=True)
        assert second[name].trace.meta.run == "b"  # metadata is the caller's, not the cache's
    # A caller that changes its frame cannot change the cached one (copy-on-write).
    second["buy_and_hold_NVDA"].trace.frame.loc[0, "equity"] = -1.0
    _, third = evaluate_with_baselines(cfg, panel, ref, model, run="c")
    pd.testing.assert_frame_equal(
        third["buy_and_hold_NVDA"].trace.frame,
        first["buy_and_hold_NVDA"].trace.frame,
        check_exact=True,
    )
    # One price changed, or one cost setting: another key, a fresh replay equal to the reference.
    close = panel.close.copy()
    close[2, 5, 0] *= 1.01
    moved = dataclasses.replace(panel, close=close)
    pricier = cfg.model_copy(
        update={"market": cfg.market.model_copy(update={"starting_capital": 50_000.0})}
    )
    key = baseline_cache_key(cfg, panel)
    for c, p in ((cfg, moved), (pricier, panel)):
        assert baseline_cache_key(c, p) != key
        _, fresh = evaluate_with_baselines(c, p, ref, model, run="a")
        assert not any(r.extra["cached"] for r in fresh.values())
        for name, r in run_baselines_one_by_one(c, p, run="a").items():
            pd.testing.assert_frame_equal(fresh[name].trace.frame, r.trace.frame, check_exact=True)


def test_run_baselines_in_one_env_equal_one_by_one() -> None:
    cfg = _config("refined")
    panel = _panel(seed=13)
    together = run_baselines(cfg, panel)
    for name, r in run_baselines_one_by_one(cfg, panel).items():
        pd.testing.assert_frame_equal(together[name].trace.frame, r.trace.frame, check_exact=True)


def test_bootstrap_indices_are_kept_read_only_and_equal_a_fresh_draw() -> None:
    idx = resample_indices(40, 200, 7)
    assert resample_indices(40, 200, 7) is idx
    assert not idx.flags.writeable
    fresh = np.random.default_rng(7).integers(0, 40, size=(200, 40), dtype=np.int64)
    np.testing.assert_array_equal(idx, fresh)
