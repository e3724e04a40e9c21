import json
import math

import numpy as np
import pytest

from stairways.errors import ConfigError, InputError
from stairways.market.step_state import (
    S_ACTION_CHANGED,
    S_CAPITAL,
    S_DRAWDOWN,
    S_EQUITY,
    S_EQUITY_PREV,
    S_IMPACT,
    S_LENGTH,
    S_NOTIONAL,
    S_PEAK,
    S_STEP,
    S_STEP_TRADES,
    S_TERMINATED,
    S_TRUNCATED,
    T_RETURN,
    T_SHARES,
    step_width,
    ticker_offset,
)
from stairways.rewards.registry import build_reward, reward_end_episode
from stairways.rewards.settings import RefinedRewardConfig, RewardConfig, V3RewardConfig

RF_STEP = 0.04 / (252 * 390)


def _step(**fields: float) -> np.ndarray:
    x = np.zeros(step_width(2))
    x[S_CAPITAL] = 10_000.0
    x[S_EQUITY_PREV] = 10_000.0
    x[S_EQUITY] = 10_000.0
    x[S_PEAK] = 10_000.0
    x[S_STEP] = 1.0
    x[S_LENGTH] = 390.0
    names = {
        "equity": S_EQUITY,
        "equity_prev": S_EQUITY_PREV,
        "peak": S_PEAK,
        "impact": S_IMPACT,
        "notional": S_NOTIONAL,
        "trades": S_STEP_TRADES,
        "changed": S_ACTION_CHANGED,
        "step": S_STEP,
        "length": S_LENGTH,
        "terminated": S_TERMINATED,
        "truncated": S_TRUNCATED,
        "drawdown": S_DRAWDOWN,
        "nvda_shares": ticker_offset(T_SHARES, 0),
        "nvda_return": ticker_offset(T_RETURN, 0),
        "msft_shares": ticker_offset(T_SHARES, 1),
        "msft_return": ticker_offset(T_RETURN, 1),
    }
    for key, value in fields.items():
        x[names[key]] = value
    return x


def test_v3_components_match_hand_computation_on_a_winning_trade() -> None:
    # Impact and turnover weights are 0 by default; set them so their arithmetic is checked.
    weights = V3RewardConfig(impact_weight=1.0, turnover_weight=0.001)
    v3 = build_reward(RewardConfig(name="v3", v3=weights))
    x = _step(equity=10_050.0, impact=0.2, notional=5_000.0, trades=1, changed=1)
    total, comps, _ = v3.evaluate(v3.initial_state(1)[0], x)
    assert comps["pnl"] == pytest.approx(100 * (0.005 - RF_STEP))
    assert comps["impact"] == pytest.approx(-100 * 0.2 / 10_000)
    assert comps["turnover"] == pytest.approx(-100 * 0.001 * 0.5)
    assert comps["downside"] == 0.0
    assert comps["kelly"] == pytest.approx(100 * 0.1 * math.log(1.005))
    assert comps["hold"] == 0.0
    assert comps["action_change"] == pytest.approx(-0.01)
    assert comps["ticket"] == pytest.approx(-0.01)
    assert total == pytest.approx(sum(comps.values()))


def test_v3_penalises_losses_and_pays_the_hold_bonus_when_targets_are_kept() -> None:
    cfg = RewardConfig(name="v3", v3=V3RewardConfig(scale=1.0, downside_weight=2.0))
    v3 = build_reward(cfg)
    _, comps, _ = v3.evaluate(v3.initial_state(1)[0], _step(equity=9_950.0))
    assert comps["downside"] == pytest.approx(-2.0 * 0.005)
    assert comps["hold"] == pytest.approx(1e-5)
    assert comps["action_change"] == 0.0
    assert comps["kelly"] == pytest.approx(0.1 * math.log(0.995))


def _refined(**kw: float) -> tuple:
    cfg = RefinedRewardConfig(**kw)  # type: ignore[arg-type]
    rs = build_reward(RewardConfig(name="refined", refined=cfg))
    return rs, rs.initial_state(1)[0]


def test_refined_components_match_hand_computation() -> None:
    rs, state = _refined(holding_lookback=3, drawdown_smoothing=0.5, time_bonus=0.015)
    x = _step(
        equity=10_050.0,
        peak=10_100.0,
        drawdown=1 - 10_050 / 10_100,
        changed=1,
        nvda_shares=10,
        nvda_return=0.001,
        msft_shares=-5,
        msft_return=0.002,
        step=3,
    )
    total, comps, new_state = rs.evaluate(state, x)
    assert comps["pnl"] == pytest.approx(100 * 50 / 10_100)
    assert comps["holding"] == pytest.approx(0.001)  # in a position and the window gained 50
    assert comps["drawdown"] == pytest.approx(-0.01 * math.tanh(0.5 * (1 - 10_050 / 10_100)))
    assert comps["exploration"] == pytest.approx(0.001)
    assert comps["directional"] == pytest.approx(0.0005 * (1 - 1) / 2)  # one right, one wrong
    assert comps["time"] == pytest.approx(0.015)  # time_bonus_start 0
    assert comps["early_exit"] == 0.0 and comps["completion"] == 0.0
    assert total == pytest.approx(sum(comps.values()))
    assert not np.array_equal(new_state, state)  # evaluate returns the new state ...
    assert rs.evaluate(state, x)[0] == total  # ... and leaves its input untouched


def test_refined_holding_bonus_needs_a_working_position_over_the_window() -> None:
    rs, state = _refined(holding_lookback=2)
    # losing 30 then gaining 20: window sum -10, no bonus
    _, _, state = rs.evaluate(state, _step(equity=9_970.0, nvda_shares=10))
    _, comps, state = rs.evaluate(state, _step(equity_prev=9_970.0, equity=9_990, nvda_shares=10))
    assert comps["holding"] == 0.0
    # next +20 pushes the -30 out of the 2-step window: 20 + 20 > 0
    _, comps, state = rs.evaluate(state, _step(equity_prev=9_990.0, equity=10_010, nvda_shares=10))
    assert comps["holding"] == pytest.approx(0.001)
    # flat: no bonus however good the window
    _, comps, _ = rs.evaluate(state, _step(equity_prev=10_010.0, equity=10_030))
    assert comps["holding"] == 0.0


@pytest.mark.parametrize(
    ("step", "terminated", "truncated", "expected"),
    [
        (10, 1, 0, -5.0),  # terminated before the threshold: taxed
        (79, 1, 0, -5.0),
        (80, 1, 0, 0.0),  # at the threshold: not taxed
        (200, 1, 0, 0.0),
        (10, 0, 1, 0.0),  # truncated (a time limit outside the env), never taxed
        (10, 0, 0, 0.0),  # still running
    ],
)
def test_early_exit_tax_applies_exactly_to_early_terminations(
    step: int, terminated: int, truncated: int, expected: float
) -> None:
    rs, state = _refined(min_episode_length=80, early_exit_tax=5.0)
    x = _step(step=step, terminated=terminated, truncated=truncated)
    _, comps, _ = rs.evaluate(state, x)
    assert comps["early_exit"] == expected


def test_the_close_of_a_short_session_is_not_an_early_exit() -> None:
    # The session's close terminates the episode at step == session_length; only the drawdown
    # cap ends one earlier, and only that is taxed.
    rs, state = _refined(min_episode_length=80, early_exit_tax=5.0)
    _, comps, _ = rs.evaluate(state, _step(step=50, length=50, terminated=1))
    assert comps["early_exit"] == 0.0
    _, comps, _ = rs.evaluate(state, _step(step=49, length=50, terminated=1))
    assert comps["early_exit"] == -5.0


def test_secondary_tax_and_completion_bonuses_apply_at_their_own_thresholds() -> None:
    rs, state = _refined(
        min_episode_length=75,
        secondary_exit_threshold=20,
        secondary_exit_tax=2.0,
        completion_threshold=85,
        completion_bonus=1.5,
        major_completion_threshold=200,
        major_completion_bonus=3.0,
    )
    taxes = [rs.evaluate(state, _step(step=s, terminated=1))[1]["early_exit"] for s in (10, 30)]
    assert taxes == [-7.0, -5.0]
    bonus = {s: rs.evaluate(state, _step(step=s))[1]["completion"] for s in (84, 85, 86, 200)}
    assert bonus == {84: 0.0, 85: 1.5, 86: 0.0, 200: 3.0}


def test_time_bonus_starts_at_its_step() -> None:
    rs, state = _refined(time_bonus=0.015, time_bonus_start=65)
    got = [rs.evaluate(state, _step(step=s))[1]["time"] for s in (64, 65, 66)]
    assert got == [0.0, 0.015, 0.015]


def test_exploration_bonus_decays_per_episode_and_survives_json() -> None:
    rs, _ = _refined(exploration_coef=0.01, exploration_decay=0.5)
    state = rs.initial_state(1)
    for _ in range(3):
        reward_end_episode(rs.rid, state[0], rs.params)
    saved = json.loads(json.dumps(rs.state_to_json(state)))
    restored = rs.state_from_json(saved, 1)
    _, comps, _ = rs.evaluate(restored[0], _step(changed=1))
    assert comps["exploration"] == pytest.approx(0.01 * 0.5**3)
    with pytest.raises(InputError, match="saved for"):
        build_reward(RewardConfig(name="v3")).state_from_json(saved, 1)


def test_unknown_reward_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown reward"):
        build_reward(RewardConfig(), "v4")


def test_secondary_threshold_above_the_main_one_is_refused() -> None:
    with pytest.raises(ValueError, match="secondary_exit_threshold"):
        RefinedRewardConfig(min_episode_length=50, secondary_exit_threshold=60)
