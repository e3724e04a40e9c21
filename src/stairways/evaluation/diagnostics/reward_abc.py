"""Reward A/B/C: the same data slice and seed trained with different reward configurations.

Each arm trains with its own reward config and is then replayed with one shared evaluation
reward, so the arms are compared on the same yardstick. The shim arm (reward computed by a
wrapper around the env) and the internal arm (the same reward computed inside the env) must
produce identical training curves given identical seeds; any difference is a wrapper bug and
fails the part loudly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from stairways.errors import InputError
from stairways.evaluation.diagnostics.decision_matrix import Verdict
from stairways.evaluation.diagnostics.outcomes import Record, SessionOutcomes
from stairways.evaluation.diagnostics.settings import RewardABCConfig

log = logging.getLogger(__name__)


class ArmResult(Record):
    """One trained and evaluated arm.

    :param training_rewards: monitor.csv episode rewards in end order (the training curve)
    :param training_lengths: monitor.csv episode lengths in the same order
    :param outcomes: per-session outcomes under the shared evaluation reward
    """

    name: str
    config: str
    run_dir: str
    training_rewards: tuple[float, ...]
    training_lengths: tuple[int, ...]
    outcomes: SessionOutcomes
    metrics: dict[str, float | int | None]


class CurveComparison(Record):
    """How two training curves compare episode by episode."""

    identical: bool
    episodes_a: int
    episodes_b: int
    compared: int
    first_difference: int | None
    max_abs_difference: float
    message: str


class ABCVerdict(Record):
    """The part's verdict: PASS when shim and internal agree, FAIL (wrapper bug) otherwise."""

    verdict: Verdict
    shim_internal_agree: bool
    comparison: CurveComparison
    message: str


class RewardABCResult(Record):
    """Everything the A/B/C part measured (written as abc/result.json)."""

    part: str = "abc"
    eval_split: str
    evaluation_reward: str
    arms: tuple[ArmResult, ...]
    judgement: ABCVerdict


def compare_curves(
    rewards_a: Sequence[float],
    lengths_a: Sequence[int],
    rewards_b: Sequence[float],
    lengths_b: Sequence[int],
    atol: float = 0.0,
) -> CurveComparison:
    """Compare two training curves episode by episode (rewards within ``atol``, equal lengths).

    Curves of different lengths are not identical even if the shared prefix matches: with the
    same seed and timesteps both runs must finish the same episodes.
    """
    if len(rewards_a) != len(lengths_a) or len(rewards_b) != len(lengths_b):
        raise InputError("each curve needs one length per episode reward")
    n = min(len(rewards_a), len(rewards_b))
    first: int | None = None
    worst = 0.0
    for i in range(n):
        diff = abs(float(rewards_a[i]) - float(rewards_b[i]))
        if math.isnan(diff):
            diff = math.inf
        worst = max(worst, diff)
        if first is None and (diff > atol or int(lengths_a[i]) != int(lengths_b[i])):
            first = i
    same_count = len(rewards_a) == len(rewards_b)
    if first is None and not same_count:
        first = n
    identical = first is None
    if identical:
        message = f"identical over {n} episodes (largest reward difference {worst:.3g})"
    elif not same_count and first == n:
        message = (
            f"the curves agree over {n} episodes but one run finished {len(rewards_a)} "
            f"episodes and the other {len(rewards_b)}"
        )
    else:
        assert first is not None
        message = (
            f"the curves first differ at episode {first + 1} (reward {rewards_a[first]:.6g} vs "
            f"{rewards_b[first]:.6g}, length {lengths_a[first]} vs {lengths_b[first]}); "
            f"largest reward difference {worst:.3g}"
        )
    return CurveComparison(
        identical=identical,
        episodes_a=len(rewards_a),
        episodes_b=len(rewards_b),
        compared=n,
        first_difference=first,
        max_abs_difference=worst,
        message=message,
    )


def judge_abc(arms: Sequence[ArmResult], cfg: RewardABCConfig) -> ABCVerdict:
    """FAIL (wrapper bug) unless the shim and internal arms have identical training curves."""
    by_name = {a.name: a for a in arms}
    for key in (cfg.shim, cfg.internal):
        if key not in by_name:
            raise InputError(f"reward A/B/C result lacks arm {key!r} (has {sorted(by_name)})")
    shim, internal = by_name[cfg.shim], by_name[cfg.internal]
    if not shim.training_rewards or not internal.training_rewards:
        comparison = CurveComparison(
            identical=False,
            episodes_a=len(shim.training_rewards),
            episodes_b=len(internal.training_rewards),
            compared=0,
            first_difference=None,
            max_abs_difference=math.nan,
            message="at least one arm finished no training episode, so nothing can be compared",
        )
        message = (
            "WRAPPER CHECK INCONCLUSIVE: no training episodes to compare; train the arms longer "
            "than one session"
        )
        return ABCVerdict(
            verdict=Verdict.FAIL, shim_internal_agree=False, comparison=comparison, message=message
        )
    comparison = compare_curves(
        shim.training_rewards,
        shim.training_lengths,
        internal.training_rewards,
        internal.training_lengths,
        cfg.curve_atol,
    )
    if comparison.identical:
        message = (
            f"{cfg.shim} and {cfg.internal} trained identically with the same seed: "
            f"{comparison.message}"
        )
        return ABCVerdict(
            verdict=Verdict.PASS, shim_internal_agree=True, comparison=comparison, message=message
        )
    message = (
        f"WRAPPER BUG: {cfg.shim} and {cfg.internal} must train identically with the same seed, "
        f"but {comparison.message}. The reward shim does not reproduce the internal reward."
    )
    log.error(message)
    return ABCVerdict(
        verdict=Verdict.FAIL, shim_internal_agree=False, comparison=comparison, message=message
    )
