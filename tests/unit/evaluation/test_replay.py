import json
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from stairways.config import StairwaysConfig
from stairways.env.trading_env import make_env
from stairways.errors import MissingResourceError
from stairways.evaluation.replay import sequential_replay
from stairways.evaluation.runner import (
    CheckpointRef,
    _complete,
    evaluate_policy_on_panel,
)
from stairways.rewards.registry import build_reward
from stairways.training.rundir import CheckpointFiles
from tests.unit.evaluation.factory import random_walk_panel

SESSIONS, LENGTH = 5, 40


def _checkpoint(tmp_path: Path, cfg: StairwaysConfig, panel) -> tuple[CheckpointRef, PPO]:  # type: ignore[no-untyped-def]
    """A random-init PPO with non-trivial VecNormalize statistics, saved like a checkpoint."""
    venv = DummyVecEnv([lambda: make_env(cfg, panel)])
    model = PPO("MlpPolicy", venv, seed=3, device="cpu", n_steps=32, batch_size=32)
    norm = VecNormalize(DummyVecEnv([lambda: make_env(cfg, panel)]), norm_reward=False)
    rng = np.random.default_rng(7)
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
    files.reward_state.write_text(json.dumps(reward.state_to_json(reward.initial_state(4))))
    return CheckpointRef("checkpoint_100", files), PPO.load(files.model, device="cpu")


@pytest.mark.parametrize(
    ("reward", "mode"), [("v3", "internal"), ("refined", "internal"), ("refined", "shim")]
)
def test_batched_replay_matches_single_env_predict_loop(
    tmp_path: Path, reward: str, mode: str
) -> None:
    cfg = StairwaysConfig.model_validate({"reward": {"name": reward, "mode": mode}})
    panel = random_walk_panel(SESSIONS, LENGTH, seed=11)
    ref, model = _checkpoint(tmp_path, cfg, panel)
    result = evaluate_policy_on_panel(cfg, panel, ref, model=model)
    frame = result.trace.frame
    assert len(frame) == SESSIONS * LENGTH
    assert result.vector_steps == LENGTH

    norm = VecNormalize.load(
        str(ref.files.vecnormalize), DummyVecEnv([lambda: make_env(cfg, panel)])
    )
    state = json.loads(ref.files.reward_state.read_text())
    seq = sequential_replay(
        cfg,
        panel,
        lambda o, s, e: model.predict(o, state=s, episode_start=e, deterministic=True),
        normalize_obs=norm.normalize_obs,
        reward_state={"reward": state["reward"], "state": state["state"][:1]},
    )
    all_actions = []
    for one in seq:
        rows = frame[frame["session"] == one.session]
        np.testing.assert_array_equal(rows["action"].to_numpy(), one.actions)
        np.testing.assert_allclose(rows["equity"].to_numpy(), one.equity, rtol=0, atol=1e-9)
        # The shim returns float32 rewards (the SB3 vector-env contract).
        np.testing.assert_allclose(rows["reward"].to_numpy(), one.rewards, rtol=1e-6, atol=1e-7)
        comps = rows[[f"reward__{c}" for c in result.trace.meta.reward_components]].to_numpy()
        np.testing.assert_allclose(comps.sum(axis=1), rows["reward"].to_numpy(), atol=1e-5)
        fills = rows[["fill_qty__NVDA", "fill_qty__MSFT"]].to_numpy()
        np.testing.assert_array_equal(fills, one.fill_qty)
        all_actions.extend(one.actions.tolist())
    # The test means something only if the policy really acts and trades.
    assert len(set(all_actions)) > 1
    assert (frame["fill_qty__NVDA"] != 0).sum() > 0


def test_trace_accounting_identities_hold_for_every_step(tmp_path: Path) -> None:
    cfg = StairwaysConfig()
    panel = random_walk_panel(SESSIONS, LENGTH, seed=5)
    ref, model = _checkpoint(tmp_path, cfg, panel)
    f = evaluate_policy_on_panel(cfg, panel, ref, model=model).trace.frame
    capital = cfg.market.starting_capital
    for _, rows in f.groupby("session"):
        np.testing.assert_allclose(capital + rows["step_pnl"].cumsum(), rows["equity"], atol=1e-8)
        # Everything is flat after the closing step.
        assert rows["position__NVDA"].iloc[-1] == 0.0 and rows["position__MSFT"].iloc[-1] == 0.0
        assert rows["step"].tolist() == list(range(len(rows)))
    gross = f["step_pnl"] + f["fees"] + f["spread_cost"] + f["impact_cost"]
    np.testing.assert_allclose(f["gross_pnl"], gross)
    filled = f["fill_qty__NVDA"] != 0
    assert f.loc[filled, "fill_price__NVDA"].notna().all()
    assert f.loc[~filled, "fill_price__NVDA"].isna().all()


def test_checkpoint_without_vecnormalize_is_refused(tmp_path: Path) -> None:
    files = CheckpointFiles(
        timesteps=5,
        model=tmp_path / "checkpoint_5.zip",
        vecnormalize=tmp_path / "vecnormalize_5.pkl",
        reward_state=tmp_path / "reward_state_5.json",
    )
    files.model.write_bytes(b"zip")
    files.reward_state.write_text("{}")
    with pytest.raises(MissingResourceError, match="VecNormalize statistics"):
        _complete(files)
