import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.evaluation.diagnostics.decision_matrix import (
    RULES,
    Findings,
    interpret,
    triggered,
)

ALL_CLEAR = Findings(
    shim_internal_agree=True,
    freeze_early_passed=True,
    training_reward_fine=True,
    leakage_control_detected=True,
    lagged_does_better=False,
    in_sample_passed=True,
    out_of_sample_passed=True,
    reward_rises=True,
    pnl_falls=False,
)
tri = st.sampled_from([True, False, None])
findings = st.builds(
    Findings,
    shim_internal_agree=tri,
    freeze_early_passed=tri,
    training_reward_fine=tri,
    leakage_control_detected=tri,
    lagged_does_better=tri,
    in_sample_passed=tri,
    out_of_sample_passed=tri,
    reward_rises=tri,
    pnl_falls=tri,
)


def _with(**changes: bool | None) -> Findings:
    return Findings(**{**ALL_CLEAR.__dict__, **changes})


def test_when_every_diagnostic_passes_then_no_rule_triggers() -> None:
    assert triggered(ALL_CLEAR) == []
    assert all(i.status == "clear" for i in interpret(ALL_CLEAR))


def test_when_nothing_ran_then_every_rule_is_undetermined() -> None:
    assert all(i.status == "undetermined" for i in interpret(Findings()))


def test_when_shim_and_internal_disagree_then_wrapper_bug() -> None:
    assert triggered(_with(shim_internal_agree=False)) == ["wrapper_bug"]


@pytest.mark.parametrize(
    ("freeze_passed", "training_fine", "expected"),
    [(False, True, True), (False, False, False), (True, True, False), (True, False, False)],
)
def test_early_rewards_are_noise_only_when_freeze_fails_and_training_looks_fine(
    freeze_passed: bool, training_fine: bool, expected: bool
) -> None:
    keys = triggered(_with(freeze_early_passed=freeze_passed, training_reward_fine=training_fine))
    assert ("early_rewards_noise" in keys) is expected


@pytest.mark.parametrize(
    ("control", "lagged_better", "expected"),
    [
        (True, True, ["env_or_data_issue"]),
        (True, False, []),
        (False, False, ["audit_broken"]),
        (False, True, ["audit_broken"]),
    ],
)
def test_leakage_rows_follow_control_and_lagged_arm(
    control: bool, lagged_better: bool, expected: list[str]
) -> None:
    assert (
        triggered(_with(leakage_control_detected=control, lagged_does_better=lagged_better))
        == expected
    )


def test_when_the_audit_is_broken_then_env_issue_is_undetermined_not_clear() -> None:
    rows = {i.key: i for i in interpret(_with(leakage_control_detected=False))}
    assert rows["env_or_data_issue"].status == "undetermined"
    assert rows["audit_broken"].status == "TRIGGERED"


@pytest.mark.parametrize(
    ("in_sample", "out_of_sample", "expected"),
    [(True, False, True), (True, True, False), (False, False, False), (False, True, False)],
)
def test_regime_overfit_only_when_in_sample_passes_and_out_of_sample_fails(
    in_sample: bool, out_of_sample: bool, expected: bool
) -> None:
    keys = triggered(_with(in_sample_passed=in_sample, out_of_sample_passed=out_of_sample))
    assert ("regime_overfit" in keys) is expected


@pytest.mark.parametrize(("rises", "falls"), list(itertools.product([True, False], repeat=2)))
def test_reward_hacking_only_when_reward_rises_and_pnl_falls(rises: bool, falls: bool) -> None:
    keys = triggered(_with(reward_rises=rises, pnl_falls=falls))
    assert ("reward_hacking" in keys) is (rises and falls)


@given(findings)
def test_a_rule_never_triggers_without_its_inputs(f: Findings) -> None:
    rows = {i.key: i.triggered for i in interpret(f)}
    if f.shim_internal_agree is None:
        assert rows["wrapper_bug"] is None
    if f.in_sample_passed is None or f.out_of_sample_passed is None:
        assert rows["regime_overfit"] is not True
    if f.leakage_control_detected is not True:
        assert rows["env_or_data_issue"] is None
    if f.reward_rises is None or f.pnl_falls is None:
        assert rows["reward_hacking"] is not True
    assert [i.key for i in interpret(f)] == [r.key for r in RULES]


@given(findings)
def test_interpretation_is_a_pure_function(f: Findings) -> None:
    assert interpret(f) == interpret(f)
