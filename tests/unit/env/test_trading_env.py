import json
import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from stairways.data.panel import SessionPanel
from stairways.env.settings import EnvConfig
from stairways.env.trading_env import TradingEnv
from stairways.errors import DataValidationError, InputError
from stairways.market.costs import fill_orders, parkinson_sigma
from stairways.market.settings import CostConfig, MarketConfig
from tests.unit.env.panels import flat_panel, random_walk_panel

NVDA_LONG = 7  # grid9: 3 * 2 (NVDA long) + 1 (MSFT flat)
FLAT = 4
HOLD = 0


def _stepping_panel(n: int = 8) -> SessionPanel:
    """NVDA closes at 100 + t and opens half a dollar lower, so open[t+1] != close[t]."""
    t = np.arange(n, dtype=float)
    close = np.stack([100.0 + t, 50.0 + 0.0 * t], axis=-1)[None]
    open_ = np.stack([99.5 + t, 50.0 + 0.0 * t], axis=-1)[None]
    return flat_panel((n,), open_, close)


def _run(env: TradingEnv, actions: list[int]) -> list[tuple]:
    out = []
    for a in actions:
        out.append(env.step(a))
    return out


def test_order_fills_at_the_next_open_never_at_the_close_the_agent_saw() -> None:
    panel = _stepping_panel()
    env = TradingEnv(panel)
    env.reset(seed=0)
    _, _, _, _, info = env.step(NVDA_LONG)
    shares = math.floor(5000.0 / 100.0)  # sized at the decision price close[0] = 100
    sigma0 = parkinson_sigma(np.array(100.0), np.array(99.5))  # decision bar's range
    expected = fill_orders(shares, 100.5, sigma0, 1e6, CostConfig())  # open[1] = 100.5
    assert info["fill_shares"][0] == shares
    assert info["fill_prices"][0] == pytest.approx(float(expected.price), rel=1e-12)
    assert info["fill_prices"][0] != pytest.approx(100.0)
    assert info["positions"].tolist() == [shares, 0.0]
    assert info["equity"] == pytest.approx(info["cash"] + shares * 101.0)  # marked at close[1]
    assert info["step_commission"] == pytest.approx(float(expected.commission))


def test_with_latency_two_the_order_fills_two_bars_later() -> None:
    env = TradingEnv(_stepping_panel(), market=MarketConfig(latency_bars=2))
    env.reset(seed=0)
    _, _, _, _, first = env.step(NVDA_LONG)
    assert first["fill_shares"].tolist() == [0.0, 0.0]
    assert math.isnan(first["fill_prices"][0])
    _, _, _, _, second = env.step(NVDA_LONG)  # target unchanged: nothing more is ordered
    assert second["fill_shares"][0] == 50.0
    assert second["fill_prices"][0] > 101.5  # open[2] plus costs
    assert second["fill_prices"][0] < 101.6
    _, _, _, _, third = env.step(NVDA_LONG)
    assert third["fill_shares"][0] == 0.0  # pending order counted: no double order


def test_full_day_is_390_steps_and_half_day_is_210_steps(panel: SessionPanel) -> None:
    env = TradingEnv(panel, env_cfg=EnvConfig(drawdown_cap=1.0), mode="evaluation")
    lengths = []
    for _ in range(3):
        env.reset()
        n = 0
        while True:
            _, _, terminated, truncated, info = env.step(FLAT)
            n += 1
            if terminated or truncated:
                break
        assert terminated and not truncated  # the session is over: nothing to bootstrap
        lengths.append((n, info["session_length"]))
    assert lengths == [(390, 390), (210, 210), (390, 390)]


def test_closing_step_flattens_at_the_last_close_with_costs() -> None:
    panel = _stepping_panel(6)
    env = TradingEnv(panel)
    env.reset(seed=0)
    results = _run(env, [NVDA_LONG] * 6)
    *_, (_, _, terminated, truncated, info) = results
    assert terminated and not truncated
    assert info["terminated_by_drawdown"] == 0
    assert info["positions"].tolist() == [0.0, 0.0]
    assert info["fill_shares"][0] == -50.0
    # sold at the last close (105) less half-spread and impact
    assert 104.9 < info["fill_prices"][0] < 105.0
    assert info["equity"] == pytest.approx(info["cash"])
    # the five earlier steps never filled anything after the first
    assert [r[4]["step_trades"] for r in results] == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def test_without_flatten_at_close_positions_are_kept_at_the_end() -> None:
    env = TradingEnv(_stepping_panel(6), market=MarketConfig(flatten_at_close=False))
    env.reset(seed=0)
    *_, (_, _, terminated, truncated, info) = _run(env, [NVDA_LONG] * 6)
    assert terminated and not truncated  # the episode ends all the same
    assert info["positions"][0] == 50.0


def _crash_panel(n: int = 40, crash_at: int = 10) -> SessionPanel:
    t = np.arange(n, dtype=float)
    nvda = np.where(t < crash_at, 100.0, 100.0 - 2.0 * (t - crash_at + 1))
    close = np.stack([nvda, np.full(n, 50.0)], axis=-1)[None]
    open_ = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    return flat_panel((n,), open_, close)


def test_drawdown_beyond_the_cap_terminates_and_flattens() -> None:
    env = TradingEnv(_crash_panel())
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(NVDA_LONG)
        steps += 1
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert info["drawdown"] > 0.02
    assert info["positions"].tolist() == [0.0, 0.0]
    assert info["terminated_by_drawdown"] == 1
    assert info["early_exit"] == 1  # 11 steps < 80
    # 50 shares lose 100 dollars per step from bar 10; 2% of ~10000 is crossed at bar 11
    assert steps == 11


def test_flat_agent_in_the_same_crash_is_terminated_by_the_session_close() -> None:
    env = TradingEnv(_crash_panel())
    env.reset(seed=0)
    results = _run(env, [FLAT] * 40)
    assert [r[2] for r in results] == [False] * 39 + [True]
    assert [r[3] for r in results] == [False] * 40
    assert results[-1][4]["terminated_by_drawdown"] == 0
    assert results[-1][4]["early_exit"] == 0
    assert results[-1][4]["episode_pnl"] == 0.0


def test_set_drawdown_cap_changes_when_the_episode_terminates() -> None:
    env = TradingEnv(_crash_panel())
    env.set_drawdown_cap(0.5)
    assert env.drawdown_cap == 0.5
    env.reset(seed=0)
    results = _run(env, [NVDA_LONG] * 40)
    assert results[-1][4]["terminated_by_drawdown"] == 0
    assert [r[2] for r in results] == [False] * 39 + [True]  # it ran to the session close
    with pytest.raises(InputError):
        env.set_drawdown_cap(0.0)


def test_observation_is_features_by_ticker_then_position_fractions(panel: SessionPanel) -> None:
    env = TradingEnv(panel, mode="evaluation")
    obs, _ = env.reset()
    assert obs.shape == (26,) and obs.dtype == np.float32
    assert np.array_equal(obs[:12], panel.features[0, 0, 0])
    assert np.array_equal(obs[12:24], panel.features[0, 0, 1])
    assert obs[24:].tolist() == [0.0, 0.0]
    obs, _, _, _, info = env.step(NVDA_LONG)
    assert np.array_equal(obs[:12], panel.features[0, 1, 0])
    frac = info["positions"][0] * panel.close[0, 1, 0] / 5000.0
    assert obs[24] == pytest.approx(frac, rel=1e-6)
    assert 0.9 < obs[24] <= 1.0


def test_extras_extend_the_observation(panel: SessionPanel) -> None:
    cfg = EnvConfig(
        obs_cash_fraction=True, obs_unrealised_pnl=True, obs_drawdown=True, obs_time_to_close=True
    )
    env = TradingEnv(panel, env_cfg=cfg, mode="evaluation")
    obs, _ = env.reset()
    assert obs.shape == (30,)
    assert obs[26:].tolist() == [1.0, 0.0, 0.0, 1.0]
    obs, *_ = env.step(FLAT)
    assert obs[29] == pytest.approx(388 / 389)


def test_info_carries_the_step_and_the_episode_summary(short_panel: SessionPanel) -> None:
    env = TradingEnv(short_panel)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    while True:
        _, reward, terminated, truncated, info = env.step(int(rng.integers(9)))
        for key in ("equity", "cash", "positions", "position_fractions", "prices", "fill_shares"):
            assert key in info
        assert info["equity"] == pytest.approx(
            info["cash"] + float(info["positions"] @ info["prices"]), abs=1e-6
        )
        assert sum(info["reward_components"].values()) == pytest.approx(reward)
        if terminated or truncated:
            break
    assert info["episode_trades"] == info["trade_count"]
    assert info["episode_pnl"] == pytest.approx(info["equity"] - 10_000.0)
    assert info["episode_fees"] >= 0.0
    assert 0.0 <= info["hold_rate"] <= 1.0
    assert info["episode_length"] == info["step"]
    json.dumps({k: v for k, v in info.items() if not isinstance(v, np.ndarray)})


def test_hold_rate_counts_steps_that_kept_the_targets() -> None:
    env = TradingEnv(_stepping_panel(6))
    env.reset(seed=0)
    # long (change), long (hold), flat (change), flat, flat, closing step (hold)
    *_, (_, _, _, _, info) = _run(env, [NVDA_LONG, NVDA_LONG, FLAT, FLAT, FLAT, FLAT])
    assert info["hold_rate"] == pytest.approx(4 / 6)


def test_same_seed_gives_the_same_sessions_and_evaluation_visits_each_once_in_order(
    short_panel: SessionPanel,
) -> None:
    def sessions(env: TradingEnv, n: int, seed: int | None) -> list[int]:
        seen = [env.reset(seed=seed)[1]["session"]]
        seen += [env.reset()[1]["session"] for _ in range(n - 1)]
        return seen

    a = sessions(TradingEnv(short_panel), 14, seed=5)
    b = sessions(TradingEnv(short_panel), 14, seed=5)
    assert a == b
    assert sorted(a[:7]) == list(range(7)) and sorted(a[7:]) == list(range(7))
    assert a[:7] != list(range(7))  # random order in training
    ev = sessions(TradingEnv(short_panel, mode="evaluation"), 9, seed=None)
    assert ev == [0, 1, 2, 3, 4, 5, 6, 0, 1]


def test_reset_can_choose_the_session(short_panel: SessionPanel) -> None:
    env = TradingEnv(short_panel)
    _, info = env.reset(seed=0, options={"session": 4})
    assert info["session"] == 4 and info["session_length"] == 22
    with pytest.raises(InputError, match="session"):
        env.reset(options={"session": 7})


def test_bad_actions_and_stepping_without_reset_are_refused(short_panel: SessionPanel) -> None:
    env = TradingEnv(short_panel)
    with pytest.raises(InputError, match="reset"):
        env.step(FLAT)
    env.reset(seed=0)
    with pytest.raises(InputError, match=r"\[0, 8\]"):
        env.step(9)
    with pytest.raises(InputError, match="integer"):
        env.step(1.5)  # type: ignore[arg-type]
    env5 = TradingEnv(short_panel, market=MarketConfig(action_set="step5"))
    env5.reset(seed=0)
    assert env5.action_space.n == 5
    with pytest.raises(InputError, match=r"\[0, 4\]"):
        env5.step(5)


def test_step5_env_moves_one_leg_at_a_time(short_panel: SessionPanel) -> None:
    env = TradingEnv(short_panel, market=MarketConfig(action_set="step5"))
    env.reset(seed=0)
    infos = [r[4] for r in _run(env, [1, 0, 3, 2, 0])]
    assert [i["targets"].tolist() for i in infos] == [
        [1.0, 0.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [0.0, 1.0],
        [0.0, 1.0],
    ]
    assert infos[1]["positions"][0] > 0  # hold did not flatten


def test_panel_with_bad_prices_or_features_is_refused() -> None:
    good = random_walk_panel((20,), seed=1)
    close = good.close.copy()
    close[0, 5, 1] = np.nan
    bad = SessionPanel(**{**good.__dict__, "close": close})
    with pytest.raises(DataValidationError, match="minute 5 MSFT"):
        TradingEnv(bad)
    feats = good.features.copy()
    feats[0, 3, 0, 0] = 50.0
    with pytest.raises(DataValidationError, match="feature_bound"):
        TradingEnv(SessionPanel(**{**good.__dict__, "features": feats}))


def test_gymnasium_env_checker_passes(short_panel: SessionPanel) -> None:
    gym_check_env(TradingEnv(short_panel), skip_render_check=True)


def test_stable_baselines3_env_checker_passes(short_panel: SessionPanel) -> None:
    sb3_check_env(TradingEnv(short_panel), warn=True)


@settings(max_examples=40, deadline=None)
@given(
    cap=st.floats(min_value=0.001, max_value=1.0),
    seed=st.integers(min_value=0, max_value=10_000),
    flatten=st.booleans(),
)
def test_every_episode_ends_once_terminated_never_truncated_and_says_why(
    cap: float, seed: int, flatten: bool
) -> None:
    panel = random_walk_panel((30, 25, 40), seed=5, vol=0.004)
    market, env_cfg = MarketConfig(flatten_at_close=flatten), EnvConfig(drawdown_cap=cap)
    env = TradingEnv(panel, market, env_cfg, mode="evaluation")
    rng = np.random.default_rng(seed)
    for _ in range(3):
        env.reset()
        for _ in range(41):  # no session is longer than 40 bars
            _, _, terminated, truncated, info = env.step(int(rng.integers(9)))
            assert not truncated
            if terminated:
                break
        assert terminated
        length, steps = info["session_length"], info["step"]
        if info["terminated_by_drawdown"]:
            assert steps < length and info["drawdown"] > cap
        else:
            assert steps == length  # the closing step
        if flatten:  # at the close and at a drawdown stop alike
            assert info["positions"].tolist() == [0.0, 0.0]
