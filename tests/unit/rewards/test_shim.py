import numpy as np
import pytest

from stairways.config import CONFIG_DIR, load_config
from stairways.data.panel import SessionPanel
from stairways.env.trading_env import TradingEnv, make_env
from stairways.env.vector import BatchedTradingEnv, make_vec_env
from stairways.rewards.shim import RewardShim, VecRewardShim
from tests.unit.env.panels import random_walk_panel


@pytest.fixture
def panel() -> SessionPanel:
    return random_walk_panel((40, 25, 60, 30), seed=9, vol=0.004)


@pytest.mark.parametrize("reward", ["v3", "refined"])
def test_shim_rewards_equal_internal_rewards_on_the_single_env(
    panel: SessionPanel, reward: str
) -> None:
    over = {"reward.name": reward, "env.drawdown_cap": 0.01}
    internal = make_env(load_config(CONFIG_DIR / "reward_internal.yaml", over), panel)
    shim = make_env(load_config(CONFIG_DIR / "reward_shim.yaml", over), panel)
    assert isinstance(internal, TradingEnv) and isinstance(shim, RewardShim)
    rng = np.random.default_rng(4)
    internal.reset(seed=3)
    shim.reset(seed=3)
    episodes = early = 0
    for _ in range(500):
        a = int(rng.integers(9))
        _, r_int, te_i, tr_i, info_i = internal.step(a)
        _, r_shim, te_s, tr_s, info_s = shim.step(a)
        assert r_shim == r_int
        assert info_s["reward_components"] == info_i["reward_components"]
        assert (te_s, tr_s) == (te_i, tr_i)
        if te_i or tr_i:
            episodes += 1
            early += int(te_i)
            internal.reset()
            shim.reset()
    assert episodes > 5 and early > 0
    assert shim.get_state() == {**internal.get_state()}  # type: ignore[attr-defined]


@pytest.mark.parametrize("reward", ["v3", "refined"])
def test_vector_shim_rewards_equal_internal_rewards(panel: SessionPanel, reward: str) -> None:
    over = {"reward.name": reward, "env.drawdown_cap": 0.01}
    internal = make_vec_env(
        load_config(CONFIG_DIR / "reward_internal.yaml", over), panel, 3, seed=1
    )
    shim = make_vec_env(load_config(CONFIG_DIR / "reward_shim.yaml", over), panel, 3, seed=1)
    assert isinstance(internal, BatchedTradingEnv) and isinstance(shim, VecRewardShim)
    assert np.array_equal(internal.reset(), shim.reset())
    rng = np.random.default_rng(8)
    dones = 0
    for _ in range(300):
        a = rng.integers(0, 9, 3)
        _, r_int, d_int, i_int = internal.step(a)
        _, r_shim, d_shim, i_shim = shim.step(a)
        assert np.array_equal(r_int, r_shim)
        assert np.array_equal(d_int, d_shim)
        assert [i["reward_components"] for i in i_int] == [i["reward_components"] for i in i_shim]
        dones += int(d_int.sum())
    assert dones > 10
    assert shim.get_state() == internal.get_state()
