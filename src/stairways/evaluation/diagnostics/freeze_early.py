"""Freeze-early validity: do checkpoints frozen early in training hold up on unseen sessions?

One run trains with checkpoints at (by default) 5k, 10k and 15k timesteps. Each checkpoint is
replayed deterministically (learning off) on the evaluation split. The part passes when every
checkpoint keeps a mean episode reward of at least ``min_episode_reward_mean`` and a mean
episode length above ``min_episode_length``.

The same run also feeds two rows of the decision matrix:

- reward versus P&L: a paired comparison of the first and last frozen checkpoints on the same
  sessions; reward "rises" (P&L "falls") when the mean paired change exceeds ``trend_z``
  standard errors upwards (downwards);
- in-sample versus out-of-sample: the last checkpoint is replayed on the last sessions of the
  training split and judged by the evaluation gates there and on the evaluation split.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from stairways.errors import InputError
from stairways.evaluation.diagnostics.decision_matrix import Verdict
from stairways.evaluation.diagnostics.outcomes import (
    PairedDifference,
    Record,
    SessionOutcomes,
    paired_difference,
)
from stairways.evaluation.diagnostics.settings import FreezeEarlyConfig

log = logging.getLogger(__name__)


class CheckpointOutcome(Record):
    """One frozen checkpoint: where it was saved, its training reward and its evaluation.

    :param target_steps: the configured freeze point
    :param steps: timesteps of the checkpoint actually used (first save at or after the target)
    :param training_reward: rolling training episode reward when it was saved (None: no
        episode had finished yet)
    """

    target_steps: int
    steps: int
    checkpoint: str
    training_reward: float | None
    training_episodes: int
    outcomes: SessionOutcomes


class GeneralisationCheck(Record):
    """Evaluation gates of the last checkpoint in sample and out of sample."""

    in_sample_split: str
    out_of_sample_split: str
    in_sample_passed: bool
    out_of_sample_passed: bool
    in_sample_gates: dict[str, object]
    out_of_sample_gates: dict[str, object]


class FreezeEarlyVerdict(Record):
    """The part's verdict and the findings it hands to the decision matrix."""

    verdict: Verdict
    failures: tuple[str, ...]
    training_reward_fine: bool
    reward_change: PairedDifference | None
    pnl_change: PairedDifference | None
    reward_rises: bool | None
    pnl_falls: bool | None
    message: str


class FreezeEarlyResult(Record):
    """Everything the freeze-early part measured (written as freeze/result.json)."""

    part: str = "freeze"
    run_dir: str
    eval_split: str
    min_episode_reward_mean: float
    min_episode_length: float
    checkpoints: tuple[CheckpointOutcome, ...]
    generalisation: GeneralisationCheck | None
    judgement: FreezeEarlyVerdict


def _trend(change: PairedDifference, z: float) -> tuple[bool, bool]:
    """(rose, fell) beyond ``z`` standard errors."""
    return change.t > z, change.t < -z


def judge_freeze_early(
    checkpoints: Sequence[CheckpointOutcome], cfg: FreezeEarlyConfig
) -> FreezeEarlyVerdict:
    """Pass when every checkpoint keeps mean reward >= and mean length > the thresholds.

    :param checkpoints: evaluated checkpoints in training order
    :param cfg: thresholds and the trend z-score
    """
    if not checkpoints:
        raise InputError("freeze-early needs at least one evaluated checkpoint")
    steps = [c.steps for c in checkpoints]
    if steps != sorted(steps):
        raise InputError(f"freeze-early checkpoints must be in training order, got {steps}")
    failures: list[str] = []
    failed: list[CheckpointOutcome] = []
    for c in checkpoints:
        if c.outcomes.n == 0:
            failures.append(f"checkpoint at {c.steps} steps: no evaluated sessions")
            failed.append(c)
            continue
        reward = c.outcomes.mean("reward")
        length = c.outcomes.mean("length")
        problems = []
        if not reward >= cfg.min_episode_reward_mean:
            problems.append(f"mean reward {reward:.4f} < {cfg.min_episode_reward_mean:g}")
        if not length > cfg.min_episode_length:
            problems.append(f"mean episode length {length:.1f} <= {cfg.min_episode_length:g}")
        if problems:
            failures.append(f"checkpoint at {c.steps} steps: " + "; ".join(problems))
            failed.append(c)
    # "Training reward looks fine" is judged where it matters: at the checkpoints that failed
    # on held-out sessions (at every checkpoint when none failed).
    judged = failed or list(checkpoints)
    training_fine = all(
        c.training_reward is not None and c.training_reward >= cfg.min_episode_reward_mean
        for c in judged
    )
    reward_change = pnl_change = None
    rises = falls = None
    first, last = checkpoints[0], checkpoints[-1]
    if (
        len(checkpoints) >= 2
        and first.outcomes.n >= 2
        and first.outcomes.sessions == last.outcomes.sessions
    ):
        reward_change = paired_difference(first.outcomes, last.outcomes, "reward")
        pnl_change = paired_difference(first.outcomes, last.outcomes, "net_pnl")
        rises = _trend(reward_change, cfg.trend_z)[0]
        falls = _trend(pnl_change, cfg.trend_z)[1]
    passed = not failures
    if passed:
        message = (
            f"every frozen checkpoint ({', '.join(str(s) for s in steps)} steps) kept mean "
            f"reward >= {cfg.min_episode_reward_mean:g} and mean length > "
            f"{cfg.min_episode_length:g}"
        )
    else:
        message = "frozen checkpoints failed: " + " | ".join(failures)
    return FreezeEarlyVerdict(
        verdict=Verdict.PASS if passed else Verdict.FAIL,
        failures=tuple(failures),
        training_reward_fine=training_fine,
        reward_change=reward_change,
        pnl_change=pnl_change,
        reward_rises=rises,
        pnl_falls=falls,
        message=message,
    )


def pick_checkpoint(available: Sequence[int], target: int) -> int:
    """The first saved checkpoint at or after ``target`` timesteps.

    Saves happen when a rollout ends past the interval, so a checkpoint meant for 5000 steps
    may be stored as 5120; taking the first at or after keeps the freeze point honest.
    """
    later = sorted(s for s in available if s >= target)
    if not later:
        raise InputError(
            f"no checkpoint saved at or after {target} timesteps (saved: {sorted(available)}); "
            "train longer or lower diagnostics.freeze.checkpoints"
        )
    return later[0]


def scaled_checkpoints(checkpoints: Sequence[int], total_timesteps: int | None) -> tuple[int, ...]:
    """Freeze points scaled to ``total_timesteps`` (the last point lands on it).

    With no override the configured points are used as they are; an override keeps their
    proportions (5k/10k/15k at 3000 total become 1000/2000/3000).
    """
    points = tuple(int(c) for c in checkpoints)
    if total_timesteps is None or total_timesteps == points[-1]:
        return points
    scale = total_timesteps / points[-1]
    scaled = tuple(max(1, math.floor(c * scale)) for c in points)
    if len(set(scaled)) != len(scaled):
        raise InputError(
            f"--total-timesteps {total_timesteps} is too small to keep the freeze points "
            f"{list(points)} apart; pass at least {len(points)}"
        )
    log.info("freeze-early checkpoints scaled from %s to %s", list(points), list(scaled))
    return scaled
