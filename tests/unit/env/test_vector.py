import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecMonitor

from stairways.data.panel import SessionPanel
from stairways.env.settings import EnvConfig
from stairways.env.trading_env import TradingEnv
from stairways.env.vector import BatchedTradingEnv
from stairways.errors import InputError, InternalError
from stairways.market.settings import MarketConfig
from stairways.rewards.registry import build_reward
from stairways.rewards.settings import RewardConfig
from tests.unit.env.panels import random_walk_panel

REFINED = build_reward(RewardConfig(name="refined"))


def _vec(panel: SessionPanel, n: int, mode: str = "train", **kw: object) -> BatchedTradingEnv:
    market = kw.pop("market", MarketConfig())
    env_cfg = kw.pop("env_cfg", EnvConfig(drawdown_cap=0.01))
    return BatchedTradingEnv(panel, market, env_cfg, REFINED, n, mode, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("action_set", ["grid9", "step5"])
def test_vector_env_follows_exactly_the_trajectories_of_single_envs(
    short_panel: SessionPanel, action_set: str
) -> None:
    n, seed, steps = 4, 100, 400
    market = MarketConfig(action_set=action_set, latency_bars=2)
    env_cfg = EnvConfig(drawdown_cap=0.01)  # some episodes terminate early
    venv = _vec(short_panel, n, market=market, env_cfg=env_cfg, seed=seed)
    singles = [TradingEnv(short_panel, market, env_cfg, REFINED) for _ in range(n)]
    obs_v = venv.reset()
    obs_s = [e.reset(seed=seed + i)[0] for i, e in enumerate(singles)]
    assert np.array_equal(obs_v, np.stack(obs_s))
    rng = np.random.default_rng(1)
    done_count = drawdown_count = 0
    for _ in range(steps):
        actions = rng.integers(0, venv.action_space.n, n)
        obs_v, rew_v, done_v, infos_v = venv.step(actions)
        for i, env in enumerate(singles):
            obs, rew, terminated, truncated, info = env.step(int(actions[i]))
            assert rew_v[i] == np.float32(rew)
            assert done_v[i] == (terminated or truncated)
            assert infos_v[i]["equity"] == info["equity"]
            assert infos_v[i]["reward_components"] == info["reward_components"]
            assert not truncated  # both ends of an episode are terminations
            if terminated:
                done_count += 1
                drawdown_count += info["terminated_by_drawdown"]
                assert infos_v[i]["terminated_by_drawdown"] == info["terminated_by_drawdown"]
                assert np.array_equal(infos_v[i]["terminal_observation"], obs)
                # SB3 bootstraps a value only past a time limit: never past a session close
                assert infos_v[i]["TimeLimit.truncated"] is False
                assert infos_v[i]["episode_pnl"] == info["episode_pnl"]
                assert infos_v[i]["early_exit"] == info["early_exit"]
                obs, _ = env.reset()
            assert np.array_equal(obs_v[i], obs)
    # some episodes end by the drawdown cap, the others at the session close
    assert done_count > 20 and 0 < drawdown_count < done_count
    assert venv.get_state() == {
        "reward": "refined",
        "state": [e.get_state()["state"][0] for e in singles],
    }


def test_evaluation_mode_plays_every_session_exactly_once(short_panel: SessionPanel) -> None:
    for n in (3, 7, 10):
        venv = _vec(short_panel, n, mode="evaluation", env_cfg=EnvConfig(drawdown_cap=1.0))
        summaries = venv.run_evaluation(lambda obs: np.full(len(obs), 4, dtype=np.int64))
        assert [s["session"] for s in summaries] == list(range(7))
        assert [s["episode_length"] for s in summaries] == short_panel.lengths.tolist()
        assert [s["session_date"] for s in summaries] == [
            str(d) for d in short_panel.dates.astype("datetime64[D]")
        ]
        assert not venv.active.any()


def test_evaluation_mode_idles_finished_envs(short_panel: SessionPanel) -> None:
    venv = _vec(short_panel, 10, mode="evaluation", env_cfg=EnvConfig(drawdown_cap=1.0))
    obs = venv.reset()
    assert venv.active.tolist() == [True] * 7 + [False] * 3
    assert not obs[7:].any()
    _, rewards, dones, infos = venv.step(np.full(10, 4))
    assert infos[8] == {"active": False}
    assert rewards[8] == 0.0 and not dones[8]


def test_vecenv_interface(short_panel: SessionPanel) -> None:
    venv = _vec(short_panel, 3, seed=0)
    venv.reset()
    assert venv.get_attr("drawdown_cap") == [0.01, 0.01, 0.01]
    venv.env_method("set_drawdown_cap", 0.05)
    assert venv.drawdown_cap == 0.05
    assert venv.env_is_wrapped(VecMonitor) == [False, False, False]
    # Calling it on part of the batch is a programming error, not the user's input.
    with pytest.raises(InternalError, match="every env"):
        venv.env_method("set_drawdown_cap", 0.05, indices=[0])
    with pytest.raises(InputError, match=r"outside \[0, 8\]"):
        venv.step(np.array([0, 9, 0]))
    with pytest.raises(InputError, match="integers"):
        venv.step(np.array([0.5, 1, 2]))
    assert venv.seed(7) == [7, 8, 9]
    first = venv.reset()
    venv.seed(7)
    assert np.array_equal(venv.reset(), first)


def test_infos_are_a_snapshot_that_later_steps_do_not_change(short_panel: SessionPanel) -> None:
    venv = _vec(short_panel, 2, seed=0)
    venv.reset()
    _, _, _, infos = venv.step(np.array([8, 0]))
    equity = [infos[0]["equity"], infos[1]["equity"]]
    later = infos[1:]
    for _ in range(5):
        venv.step(np.array([0, 8]))
    assert [infos[0]["equity"], later[0]["equity"]] == equity
    assert len(infos) == 2 and [i["active"] for i in infos] == [True, True]


def test_state_round_trips_through_json_and_refuses_another_shape(
    short_panel: SessionPanel,
) -> None:
    venv = _vec(short_panel, 2, seed=0)
    venv.reset()
    for _ in range(60):
        venv.step(np.random.default_rng(0).integers(0, 9, 2))
    saved = venv.get_state()
    other = _vec(short_panel, 2, seed=0)
    other.set_state(saved)
    assert other.get_state() == saved
    assert saved["state"][0][0] < 1.0  # exploration scale decayed after finished episodes
    with pytest.raises(InputError, match="shape"):
        _vec(short_panel, 3).set_state(saved)


def test_ppo_learns_on_the_batched_env_with_vecmonitor() -> None:
    from stable_baselines3 import PPO

    panel = random_walk_panel((40, 30), seed=2)
    venv = VecMonitor(_vec(panel, 2, seed=0))
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256
    assert len(model.ep_info_buffer) > 0
