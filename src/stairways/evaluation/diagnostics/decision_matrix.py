"""The roadmap's decision matrix: from diagnostic findings to what they mean and what to do.

Findings are three-valued: True, False, or None when the diagnostic that would tell was not
run (or cannot be trusted, as with a broken leakage audit). A rule is triggered only when
every finding it needs is known; otherwise it is reported as undetermined, never as clear.

| condition                                              | interpretation               |
| ------------------------------------------------------ | ---------------------------- |
| shim and internal reward disagree                      | wrapper bug                  |
| freeze-early fails while training reward looks fine    | early rewards are noise      |
| leakage found (lagged features do better)              | env or data issue            |
| look-ahead control not detected                        | leakage audit broken         |
| passes in-sample, fails out-of-sample                  | overfitting to a regime      |
| reward rises while P&L falls                           | reward hacking               |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Tri = bool | None


class Verdict(StrEnum):
    """Outcome of one diagnostic."""

    PASS = "pass"
    FAIL = "fail"
    AUDIT_BROKEN = "audit broken"
    INSUFFICIENT = "insufficient budget"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class Findings:
    """What the diagnostics found; None where the diagnostic did not run.

    :param shim_internal_agree: reward shim and internal reward gave identical training curves
    :param freeze_early_passed: every frozen checkpoint met the evaluation thresholds
    :param training_reward_fine: the rolling training reward met the threshold at the
        checkpoints that failed evaluation
    :param leakage_control_detected: the planted look-ahead did markedly better (audit works)
    :param lagged_does_better: the agent did better with features one bar older, beyond noise
    :param in_sample_passed: the evaluation gates passed on the training split
    :param out_of_sample_passed: the evaluation gates passed on the evaluation split
    :param reward_rises: evaluation reward rose from the first to the last frozen checkpoint
    :param pnl_falls: evaluation net P&L fell from the first to the last frozen checkpoint
    """

    shim_internal_agree: Tri = None
    freeze_early_passed: Tri = None
    training_reward_fine: Tri = None
    leakage_control_detected: Tri = None
    lagged_does_better: Tri = None
    in_sample_passed: Tri = None
    out_of_sample_passed: Tri = None
    reward_rises: Tri = None
    pnl_falls: Tri = None


def _and(*values: Tri) -> Tri:
    """Three-valued AND: False if any is False, None if any is unknown, else True."""
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def _not(value: Tri) -> Tri:
    return None if value is None else not value


def _env_or_data(f: Findings) -> Tri:
    # A lagged arm that "does better" means nothing when the audit cannot even detect planted
    # look-ahead: the agents are then not using their features, so the rule is undetermined.
    if f.leakage_control_detected is not True:
        return None
    return f.lagged_does_better


@dataclass(frozen=True)
class Rule:
    """One row of the decision matrix."""

    key: str
    condition: str
    interpretation: str
    action: str
    test: Callable[[Findings], Tri]


RULES: tuple[Rule, ...] = (
    Rule(
        key="wrapper_bug",
        condition="shim and internal reward disagree",
        interpretation="wrapper bug",
        action=(
            "The reward wrapper (shim) does not compute what the env computes internally; "
            "fix the wrapper before trusting any reward comparison."
        ),
        test=lambda f: _not(f.shim_internal_agree),
    ),
    Rule(
        key="early_rewards_noise",
        condition="freeze-early fails while training reward looks fine",
        interpretation="early rewards are noise",
        action=(
            "Do not select or stop on early training reward; train longer and judge frozen "
            "checkpoints on held-out sessions."
        ),
        test=lambda f: _and(_not(f.freeze_early_passed), f.training_reward_fine),
    ),
    Rule(
        key="env_or_data_issue",
        condition="leakage found: the agent does better with features lagged one more bar",
        interpretation="env or data issue",
        action=(
            "Check feature timestamps against the bar the env fills at and the data for "
            "shifted or duplicated bars before any further training."
        ),
        test=_env_or_data,
    ),
    Rule(
        key="audit_broken",
        condition="planted look-ahead (positive control) not detected",
        interpretation="leakage audit broken",
        action=(
            "The audit cannot see leakage it was handed, so its pass means nothing; train the "
            "audit arms longer or check the panel transforms."
        ),
        test=lambda f: _not(f.leakage_control_detected),
    ),
    Rule(
        key="regime_overfit",
        condition="passes in-sample but fails out-of-sample",
        interpretation="overfitting to a regime",
        action=(
            "Shorten training, add regularisation or more varied training periods, and "
            "validate on several temporal splits."
        ),
        test=lambda f: _and(f.in_sample_passed, _not(f.out_of_sample_passed)),
    ),
    Rule(
        key="reward_hacking",
        condition="reward rises while P&L falls",
        interpretation="reward hacking",
        action=(
            "The agent optimises a reward term that does not pay; audit the reward "
            "components and re-weight or remove the one it exploits."
        ),
        test=lambda f: _and(f.reward_rises, f.pnl_falls),
    ),
)


@dataclass(frozen=True)
class Interpretation:
    """A decision-matrix row applied to findings; ``triggered`` None means undetermined."""

    key: str
    condition: str
    interpretation: str
    action: str
    triggered: Tri

    @property
    def status(self) -> str:
        """``TRIGGERED``, ``clear`` or ``undetermined``."""
        if self.triggered is None:
            return "undetermined"
        return "TRIGGERED" if self.triggered else "clear"


def interpret(findings: Findings) -> list[Interpretation]:
    """Apply every decision-matrix rule to ``findings`` (pure; one entry per rule, in order)."""
    return [
        Interpretation(
            key=r.key,
            condition=r.condition,
            interpretation=r.interpretation,
            action=r.action,
            triggered=r.test(findings),
        )
        for r in RULES
    ]


def triggered(findings: Findings) -> list[str]:
    """Keys of the rules the findings trigger."""
    return [i.key for i in interpret(findings) if i.triggered is True]
