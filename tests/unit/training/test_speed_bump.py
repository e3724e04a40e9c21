import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from stairways.config import CONFIG_DIR, load_config
from stairways.training.callbacks import (
    EpisodeLog,
    rolling_mean,
    rolling_sharpe,
    speed_bump_reason,
)
from stairways.training.settings import SpeedBumpConfig

CFG = SpeedBumpConfig(
    enabled=True, window=1000, min_timesteps=30_000, min_episodes=30, threshold=-0.5
)


def test_negative_rewards_after_min_timesteps_trigger_the_speed_bump() -> None:
    rewards = [-1.0 + 0.1 * (i % 3) for i in range(100)]  # mean -0.9, std 0.08
    reason = speed_bump_reason(rewards, 30_000, CFG)
    assert reason is not None
    assert "below -0.5" in reason
    assert "last 100 episode rewards" in reason


def test_same_rewards_before_min_timesteps_do_not_stop_the_run() -> None:
    rewards = [-1.0 + 0.1 * (i % 3) for i in range(100)]
    assert speed_bump_reason(rewards, 29_999, CFG) is None


def test_too_few_episodes_do_not_stop_the_run() -> None:
    assert speed_bump_reason([-1.0, -2.0] * 14, 10**6, CFG) is None  # 28 < 30


def test_disabled_speed_bump_never_stops() -> None:
    cfg = CFG.model_copy(update={"enabled": False})
    assert speed_bump_reason([-5.0, -6.0] * 100, 10**6, cfg) is None


def test_only_the_last_window_counts() -> None:
    cfg = CFG.model_copy(update={"window": 50})
    # Old losses followed by 50 mixed but positive-on-average episodes.
    rewards = [-10.0] * 500 + [1.0, -0.5] * 25
    assert speed_bump_reason(rewards, 10**6, cfg) is None
    assert speed_bump_reason(rewards, 10**6, CFG) is not None


def test_identical_losses_count_as_minus_infinity() -> None:
    assert rolling_sharpe([-1.0] * 10, 10) == -math.inf
    assert rolling_sharpe([0.0] * 10, 10) == 0.0
    assert speed_bump_reason([-1.0] * 40, 10**6, CFG) is not None


@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=200), st.integers(2, 300))
def test_rolling_sharpe_matches_numpy_on_the_tail(rewards: list[float], window: int) -> None:
    tail = np.asarray(rewards[-window:])
    got = rolling_sharpe(rewards, window)
    assert got is not None
    if tail.std() > 1e-9 * max(1.0, abs(tail.mean())):
        assert got == np.float64(tail.mean() / tail.std()) or math.isclose(
            got, tail.mean() / tail.std(), rel_tol=1e-9, abs_tol=1e-9
        )


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=200), st.integers(1, 300))
def test_rolling_mean_is_the_mean_of_the_last_window(rewards: list[float], window: int) -> None:
    got = rolling_mean(rewards, window)
    assert got is not None
    assert math.isclose(got, float(np.mean(rewards[-window:])), rel_tol=1e-9, abs_tol=1e-9)


def test_episode_log_keeps_a_bounded_tail_but_counts_everything() -> None:
    log = EpisodeLog(maxlen=3)
    for r in (1.0, 2.0, 3.0, 4.0):
        log.add(r)
    assert list(log.rewards) == [2.0, 3.0, 4.0]
    assert log.episodes == 4
    assert log.rolling(2) == 3.5


def test_speed_bump_is_off_by_default_and_on_in_phase2_oos_with_the_issue_rule() -> None:
    assert load_config(None).training.speed_bump.enabled is False
    bump = load_config(CONFIG_DIR / "curriculum" / "phase2_oos.yaml").training.speed_bump
    assert bump.enabled is True
    assert (bump.window, bump.min_timesteps, bump.threshold) == (1000, 30_000, -0.5)
