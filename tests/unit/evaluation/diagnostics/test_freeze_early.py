import pytest

from stairways.errors import InputError
from stairways.evaluation.diagnostics.decision_matrix import Verdict
from stairways.evaluation.diagnostics.freeze_early import (
    CheckpointOutcome,
    judge_freeze_early,
    pick_checkpoint,
    scaled_checkpoints,
)
from stairways.evaluation.diagnostics.settings import FreezeEarlyConfig
from tests.unit.evaluation.diagnostics.helpers import outcomes

CFG = FreezeEarlyConfig()  # min reward 0.5, min length 40


def _ckpt(
    steps: int,
    reward: list[float],
    length: int = 390,
    training: float | None = 1.0,
    pnl: list[float] | None = None,
) -> CheckpointOutcome:
    return CheckpointOutcome(
        target_steps=steps,
        steps=steps,
        checkpoint=f"checkpoint_{steps}.zip",
        training_reward=training,
        training_episodes=10,
        outcomes=outcomes(reward, pnl, [length] * len(reward)),
    )


def test_when_every_checkpoint_keeps_reward_and_length_then_pass() -> None:
    v = judge_freeze_early([_ckpt(5000, [0.6, 0.7]), _ckpt(10000, [0.5, 0.5])], CFG)
    assert v.verdict == Verdict.PASS and v.failures == ()


def test_when_one_checkpoint_drops_below_the_reward_threshold_then_fail_naming_it() -> None:
    v = judge_freeze_early([_ckpt(5000, [0.6, 0.7]), _ckpt(10000, [0.4, 0.5])], CFG)
    assert v.verdict == Verdict.FAIL
    assert len(v.failures) == 1 and "10000 steps" in v.failures[0] and "0.45" in v.failures[0]


def test_when_episodes_are_40_steps_or_shorter_then_fail() -> None:
    v = judge_freeze_early([_ckpt(5000, [1.0, 1.0], length=40)], CFG)
    assert v.verdict == Verdict.FAIL and "length 40.0 <= 40" in v.failures[0]
    assert judge_freeze_early([_ckpt(5000, [1.0, 1.0], length=41)], CFG).verdict == Verdict.PASS


def test_training_reward_looks_fine_is_judged_at_the_failing_checkpoints() -> None:
    good_training_bad_eval = [
        _ckpt(5000, [-1.0, -2.0], training=0.9),
        _ckpt(10000, [1.0, 1.0], training=0.1),
    ]
    v = judge_freeze_early(good_training_bad_eval, CFG)
    assert v.verdict == Verdict.FAIL and v.training_reward_fine is True
    bad_training = [_ckpt(5000, [-1.0, -2.0], training=0.1)]
    assert judge_freeze_early(bad_training, CFG).training_reward_fine is False
    no_episode_yet = [_ckpt(5000, [-1.0, -2.0], training=None)]
    assert judge_freeze_early(no_episode_yet, CFG).training_reward_fine is False


def test_reward_rising_while_pnl_falls_is_found_beyond_noise() -> None:
    first = _ckpt(5000, [1.0, 1.1, 0.9, 1.0], pnl=[10.0, 11.0, 9.0, 10.0])
    last = _ckpt(15000, [2.0, 2.2, 1.9, 2.1], pnl=[-5.0, -4.0, -6.0, -5.5])
    v = judge_freeze_early([first, last], CFG)
    assert v.reward_rises is True and v.pnl_falls is True
    assert v.reward_change is not None and v.reward_change.mean == pytest.approx(1.05)


def test_noisy_changes_do_not_count_as_trends() -> None:
    first = _ckpt(5000, [1.0, 2.0, 1.0, 2.0], pnl=[1.0, -1.0, 1.0, -1.0])
    last = _ckpt(15000, [2.0, 1.0, 2.1, 1.0], pnl=[-1.0, 1.0, -1.1, 1.0])
    v = judge_freeze_early([first, last], CFG)
    assert v.reward_rises is False and v.pnl_falls is False


def test_a_single_checkpoint_leaves_the_trend_undetermined() -> None:
    v = judge_freeze_early([_ckpt(5000, [1.0, 1.0])], CFG)
    assert v.reward_rises is None and v.pnl_falls is None


def test_first_checkpoint_at_or_after_the_freeze_point_is_used() -> None:
    assert pick_checkpoint([4096, 5120, 10240], 5000) == 5120
    assert pick_checkpoint([5000, 10000], 5000) == 5000
    with pytest.raises(InputError, match="no checkpoint saved at or after 20000"):
        pick_checkpoint([5000, 10000], 20000)


def test_freeze_points_scale_with_a_total_timesteps_override() -> None:
    assert scaled_checkpoints((5000, 10000, 15000), None) == (5000, 10000, 15000)
    assert scaled_checkpoints((5000, 10000, 15000), 3000) == (1000, 2000, 3000)
    with pytest.raises(InputError, match="too small"):
        scaled_checkpoints((5000, 10000, 15000), 2)


def test_config_refuses_unordered_freeze_points() -> None:
    with pytest.raises(ValueError, match="ascending"):
        FreezeEarlyConfig(checkpoints=(10000, 5000))
