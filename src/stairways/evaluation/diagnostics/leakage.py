"""Data-leakage audit: lagged features, a planted look-ahead control and shuffled starts.

Three arms train and evaluate on the same sessions; only the features they see differ, built as
modified :class:`~stairways.data.panel.SessionPanel` objects (the production feature function is
never touched):

- ``baseline``: the production features;
- ``lagged``: every feature one more bar old (``lag_bars``); the agent must not do better with
  older information beyond noise;
- ``lookahead`` (positive control): features taken from ``lookahead_bars`` bars in the future;
  on any market with short-term structure this is a large edge and must be detected.

Every arm trains once per seed of ``leakage.seeds`` (the same seeds for every arm). Two
separately trained agents differ even on identical features, so one run per arm compared
session by session measures the difference between two trained policies, not leakage (a clean
pipeline was once called "leakage suspected" at t = 3.6). The audit therefore compares arms
*across training seeds*: each run's outcome is its mean per-session outcome on the evaluation
split (net P&L by default), and the statistic is the t-statistic of the per-seed differences
``arm - baseline`` (paired by seed), with ``seeds - 1`` degrees of freedom. The control is
detected when that t exceeds the one-sided Student-t critical value at ``control_confidence``;
the lagged arm does better when its t exceeds the critical value at ``lag_confidence``.

Verdicts: below ``min_seeds`` seeds per arm or ``min_total_timesteps`` of training per run the
audit refuses a verdict ("insufficient budget", naming both minimums); an audit whose control
is not detected cannot fail, so its verdict is "audit broken" whatever the lagged arm did; a
lagged arm that does better is a FAIL; otherwise PASS.

Shuffled starts: when enabled every arm's training and evaluation sessions start at a random
offset within the session (the same offsets for every arm, drawn from the suite seed), so no
arm can key on the bar index from the open. The env has no start-offset option, so the audit
builds panels whose sessions begin at the offset (:func:`offset_sessions`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

from stairways.data.panel import SessionPanel
from stairways.errors import InputError, InternalError
from stairways.evaluation.diagnostics.decision_matrix import Verdict
from stairways.evaluation.diagnostics.outcomes import OutcomeMetric, Record, SessionOutcomes
from stairways.evaluation.diagnostics.settings import LeakageConfig
from stairways.evaluation.stats import student_t_quantile

log = logging.getLogger(__name__)

ARMS: tuple[str, ...] = ("baseline", "lagged", "lookahead")


def _hold_padding(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Padding steps (index >= length) repeat the session's last real value, in place."""
    for s, n in enumerate(lengths):
        values[s, int(n) :] = values[s, int(n) - 1]
    return values


def lag_features(panel: SessionPanel, bars: int) -> SessionPanel:
    """A panel whose features at step ``t`` are the production features of step ``t - bars``.

    The first ``bars`` steps of a session have no older bar in the session and see zeros, the
    neutral value of normalised features (carrying the current value would leak it).
    """
    if bars < 1:
        raise InputError(f"lag must be at least 1 bar, got {bars}")
    old = panel.features
    new = np.zeros_like(old)
    if bars < old.shape[1]:
        new[:, bars:] = old[:, :-bars]
    new = _hold_padding(new, panel.lengths)
    return dataclasses.replace(panel, features=new, fingerprint=f"{panel.fingerprint}|lag{bars}")


def lead_features(panel: SessionPanel, bars: int) -> SessionPanel:
    """A panel whose features at step ``t`` are those of step ``t + bars`` (planted look-ahead).

    Steps within ``bars`` of the session end see the session's last features; nothing crosses
    into the next session.
    """
    if bars < 1:
        raise InputError(f"look-ahead must be at least 1 bar, got {bars}")
    old = panel.features
    new = np.empty_like(old)
    length = old.shape[1]
    for s, n in enumerate(panel.lengths):
        n = int(n)
        idx = np.minimum(np.arange(length) + bars, n - 1)
        new[s] = old[s, idx]
    return dataclasses.replace(panel, features=new, fingerprint=f"{panel.fingerprint}|lead{bars}")


def random_offsets(lengths: np.ndarray, max_offset: int, seed: int) -> np.ndarray:
    """Seeded start offsets, one per session, in ``[0, min(max_offset, length - 2)]``."""
    if max_offset < 0:
        raise InputError(f"max_offset must be >= 0, got {max_offset}")
    rng = np.random.default_rng(seed)
    highs = np.minimum(max_offset, np.asarray(lengths, dtype=np.int64) - 2)
    return np.asarray([rng.integers(0, h + 1) for h in highs], dtype=np.int64)


def offset_sessions(panel: SessionPanel, offsets: np.ndarray) -> SessionPanel:
    """A panel whose sessions begin ``offsets[s]`` bars after the open (every array shifted).

    Lengths shrink by the offset; padding holds the last real value, as in any panel.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.shape != (panel.n_sessions,):
        raise InputError(f"need one offset per session ({panel.n_sessions}), got {offsets.shape}")
    if (offsets < 0).any() or (panel.lengths - offsets < 2).any():
        raise InputError("offsets must be >= 0 and leave at least 2 bars in every session")
    length = panel.max_length

    def shift(arr: np.ndarray) -> np.ndarray:
        out = np.empty_like(arr)
        for s, (off, n) in enumerate(zip(offsets, panel.lengths, strict=True)):
            idx = np.minimum(np.arange(length) + int(off), int(n) - 1)
            out[s] = arr[s, idx]
        return out

    return dataclasses.replace(
        panel,
        lengths=panel.lengths - offsets,
        ts=shift(panel.ts),
        open=shift(panel.open),
        high=shift(panel.high),
        low=shift(panel.low),
        close=shift(panel.close),
        volume=shift(panel.volume),
        features=shift(panel.features),
        fingerprint=f"{panel.fingerprint}|offsets{hash_offsets(offsets)}",
    )


def hash_offsets(offsets: np.ndarray) -> str:
    """Short stable digest of an offset vector (for panel fingerprints)."""
    import hashlib

    return hashlib.sha256(np.asarray(offsets, dtype=np.int64).tobytes()).hexdigest()[:12]


def transform_panel(
    panel: SessionPanel, arm: str, cfg: LeakageConfig, offsets: np.ndarray | None
) -> SessionPanel:
    """The panel an audit arm sees: features transformed first, then starts offset.

    Features are shifted on whole sessions before the start offset is applied, so the lagged
    arm's first offset step sees the real previous bar rather than zeros.
    """
    if arm == "baseline":
        out = panel
    elif arm == "lagged":
        out = lag_features(panel, cfg.lag_bars)
    elif arm == "lookahead":
        out = lead_features(panel, cfg.lookahead_bars)
    else:
        raise InputError(f"unknown leakage arm {arm!r}; expected one of {list(ARMS)}")
    if offsets is not None:
        out = offset_sessions(out, offsets)
    return out


class LeakageArm(Record):
    """One trained and evaluated audit run: an arm trained with one seed."""

    name: str
    seed: int
    description: str
    run_dir: str
    outcomes: SessionOutcomes


class SeedDifference(Record):
    """``arm - baseline`` of per-run mean outcomes, paired by training seed.

    ``t`` is ``mean / se`` with ``se = std(ddof=1) / sqrt(n)``; identical differences (se 0)
    give +inf, -inf or 0 by the sign of the mean. ``critical`` is the one-sided Student-t
    value with ``n - 1`` degrees of freedom that ``t`` must exceed.
    """

    metric: str
    n: int
    mean: float
    se: float
    t: float
    critical: float
    baseline_mean: float
    treatment_mean: float


class LeakageVerdict(Record):
    """The audit verdict with both statistics."""

    verdict: Verdict
    metric: str
    control: SeedDifference
    control_detected: bool | None
    lag: SeedDifference
    lagged_does_better: bool | None
    message: str


class LeakageResult(Record):
    """Everything the leakage audit measured (written as leakage/result.json)."""

    part: str = "leakage"
    eval_split: str
    lag_bars: int
    lookahead_bars: int
    shuffled_offsets: bool
    max_start_offset: int
    total_timesteps: int
    seeds: tuple[int, ...]
    arms: tuple[LeakageArm, ...]
    judgement: LeakageVerdict


def run_means(arms: Sequence[LeakageArm], arm: str, metric: OutcomeMetric) -> dict[int, float]:
    """Mean per-session ``metric`` of every run of ``arm``, by training seed."""
    return {a.seed: a.outcomes.mean(metric) for a in arms if a.name == arm}


def seed_difference(
    baseline: Mapping[int, float],
    treatment: Mapping[int, float],
    metric: str,
    confidence: float,
) -> SeedDifference:
    """Paired-by-seed comparison of per-run means (the seeds of both arms must match)."""
    if sorted(baseline) != sorted(treatment):
        raise InternalError(
            f"leakage arms were trained with different seeds: {sorted(baseline)} and "
            f"{sorted(treatment)}"
        )
    seeds = sorted(baseline)
    if len(seeds) < 2:
        raise InputError(f"comparing arms across seeds needs at least 2 seeds, got {len(seeds)}")
    base = np.array([baseline[k] for k in seeds])
    treat = np.array([treatment[k] for k in seeds])
    d = treat - base
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    constant = math.copysign(math.inf, mean) if mean != 0 else 0.0
    return SeedDifference(
        metric=metric,
        n=len(d),
        mean=mean,
        se=se,
        t=mean / se if se > 0 else constant,
        critical=student_t_quantile(confidence, len(d) - 1),
        baseline_mean=float(base.mean()),
        treatment_mean=float(treat.mean()),
    )


def judge_leakage(
    arms: Sequence[LeakageArm], cfg: LeakageConfig, total_timesteps: int
) -> LeakageVerdict:
    """Audit verdict across seeds: insufficient budget, broken control, FAIL or PASS."""
    base = run_means(arms, "baseline", cfg.metric)
    control = seed_difference(
        base, run_means(arms, "lookahead", cfg.metric), cfg.metric, cfg.control_confidence
    )
    lag = seed_difference(
        base, run_means(arms, "lagged", cfg.metric), cfg.metric, cfg.lag_confidence
    )
    detected = control.t > control.critical
    better = lag.t > lag.critical
    control_text = (
        f"look-ahead control ({cfg.lookahead_bars} bar) vs baseline over {control.n} seeds: "
        f"mean {cfg.metric} change {control.mean:+.4g} per session, t = {control.t:.2f} "
        f"(detected above {control.critical:.2f}, one-sided {cfg.control_confidence:.0%})"
    )
    lag_text = (
        f"lagged ({cfg.lag_bars} bar) vs baseline over {lag.n} seeds: mean {cfg.metric} change "
        f"{lag.mean:+.4g} per session, t = {lag.t:.2f} (better beyond noise above "
        f"{lag.critical:.2f}, one-sided {cfg.lag_confidence:.0%})"
    )
    short = []
    if control.n < cfg.min_seeds:
        short.append(f"{control.n} seeds per arm (minimum {cfg.min_seeds}, leakage.min_seeds)")
    if total_timesteps < cfg.min_total_timesteps:
        short.append(
            f"{total_timesteps} training timesteps per run (minimum {cfg.min_total_timesteps}, "
            "leakage.min_total_timesteps)"
        )
    if short:
        message = (
            "INSUFFICIENT BUDGET: no leakage verdict with "
            + " and ".join(short)
            + "; differences between briefly trained agents are noise, not leakage. "
            f"Measured anyway: {lag_text}. {control_text}."
        )
        log.warning(message)
        return LeakageVerdict(
            verdict=Verdict.INSUFFICIENT,
            metric=cfg.metric,
            control=control,
            control_detected=None,
            lag=lag,
            lagged_does_better=None,
            message=message,
        )
    if not detected:
        verdict = Verdict.AUDIT_BROKEN
        message = (
            "AUDIT BROKEN: the planted look-ahead was not detected, so this audit cannot fail "
            f"and says nothing about leakage. {control_text}. {lag_text}."
        )
        log.error(message)
    elif better:
        verdict = Verdict.FAIL
        message = (
            "LEAKAGE SUSPECTED: the agent does better with older information, which points at "
            f"misaligned features or fills (env or data issue). {lag_text}. {control_text}."
        )
        log.error(message)
    else:
        verdict = Verdict.PASS
        message = (
            f"no leakage found; the positive control was detected. {lag_text}. {control_text}."
        )
    return LeakageVerdict(
        verdict=verdict,
        metric=cfg.metric,
        control=control,
        control_detected=detected,
        lag=lag,
        lagged_does_better=better,
        message=message,
    )
