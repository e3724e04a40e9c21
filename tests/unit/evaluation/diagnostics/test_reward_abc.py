import pytest

from stairways.errors import InputError
from stairways.evaluation.diagnostics.decision_matrix import Verdict
from stairways.evaluation.diagnostics.reward_abc import ArmResult, compare_curves, judge_abc
from stairways.evaluation.diagnostics.settings import RewardABCConfig
from tests.unit.evaluation.diagnostics.helpers import outcomes

CFG = RewardABCConfig()


def _arm(name: str, rewards: list[float], lengths: list[int] | None = None) -> ArmResult:
    return ArmResult(
        name=name,
        config=f"config/{name}.yaml",
        run_dir=f"runs/{name}",
        training_rewards=tuple(rewards),
        training_lengths=tuple(lengths or [390] * len(rewards)),
        outcomes=outcomes([0.1, 0.2]),
        metrics={"sharpe": 0.4},
    )


def test_when_shim_and_internal_curves_are_identical_then_pass() -> None:
    curve = [0.1, -0.2, 0.35]
    arms = [
        _arm("reward_v3", [1.0, 2.0, 3.0]),
        _arm("reward_shim", curve),
        _arm("reward_internal", curve),
    ]
    v = judge_abc(arms, CFG)
    assert v.verdict == Verdict.PASS and v.shim_internal_agree
    assert v.comparison.compared == 3


def test_when_shim_and_internal_differ_then_fail_loudly_as_wrapper_bug() -> None:
    arms = [
        _arm("reward_v3", [1.0]),
        _arm("reward_shim", [0.1, -0.2, 0.35]),
        _arm("reward_internal", [0.1, -0.2000001, 0.35]),
    ]
    v = judge_abc(arms, CFG)
    assert v.verdict == Verdict.FAIL and not v.shim_internal_agree
    assert v.message.startswith("WRAPPER BUG")
    assert v.comparison.first_difference == 1
    assert "episode 2" in v.message


def test_a_difference_within_tolerance_counts_as_identical() -> None:
    c = compare_curves([0.1, 0.2], [390, 390], [0.1, 0.2 + 1e-12], [390, 390], atol=1e-9)
    assert c.identical


def test_different_episode_counts_are_not_identical() -> None:
    c = compare_curves([0.1, 0.2], [390, 390], [0.1], [390])
    assert not c.identical and c.first_difference == 1 and "finished 2" in c.message


def test_different_episode_lengths_are_not_identical() -> None:
    c = compare_curves([0.1, 0.2], [390, 200], [0.1, 0.2], [390, 390])
    assert not c.identical and c.first_difference == 1


def test_arm_without_training_episodes_fails_as_inconclusive() -> None:
    arms = [_arm("reward_v3", [1.0]), _arm("reward_shim", []), _arm("reward_internal", [])]
    v = judge_abc(arms, CFG)
    assert v.verdict == Verdict.FAIL and "INCONCLUSIVE" in v.message


def test_missing_arm_is_named() -> None:
    with pytest.raises(InputError, match="reward_internal"):
        judge_abc([_arm("reward_shim", [1.0])], CFG)


def test_config_refuses_a_shim_that_is_not_an_arm() -> None:
    with pytest.raises(ValueError, match="shim"):
        RewardABCConfig(shim="nope")
