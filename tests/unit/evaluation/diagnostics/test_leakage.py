import math
from datetime import date

import numpy as np
import pytest

from stairways.data.panel import SessionPanel
from stairways.errors import InputError, InternalError
from stairways.evaluation.diagnostics.decision_matrix import Verdict
from stairways.evaluation.diagnostics.leakage import (
    LeakageArm,
    judge_leakage,
    lag_features,
    lead_features,
    offset_sessions,
    random_offsets,
    transform_panel,
)
from stairways.evaluation.diagnostics.settings import LeakageConfig
from tests.unit.evaluation.diagnostics.helpers import outcomes

CFG = LeakageConfig()  # net_pnl, seeds 0-2, one-sided 95 % across seeds


def _panel(lengths: tuple[int, ...] = (6, 4), width: int = 6) -> SessionPanel:
    s, t = len(lengths), 2
    step = np.arange(width, dtype=np.float64)
    values = np.zeros((s, width, t))
    for i, n in enumerate(lengths):
        values[i] = np.minimum(step, n - 1)[:, None] + 100 * i + np.array([0.0, 0.5])
    features = (values[..., None] + 1).astype(np.float32)
    return SessionPanel(
        symbols=("NVDA", "MSFT"),
        feature_names=("x",),
        dates=np.array([date(2024, 2, 1 + i) for i in range(s)], dtype="datetime64[D]"),
        lengths=np.asarray(lengths, dtype=np.int64),
        ts=(np.minimum(step, 5)[None, :] * 60e9 + np.arange(s)[:, None] * 86400e9).astype(np.int64),
        open=values.copy(),
        high=values.copy(),
        low=values.copy(),
        close=values.copy(),
        volume=values.copy(),
        features=features,
        split="t",
        synthetic=True,
        fingerprint="fp",
    )


def test_lagged_features_at_t_are_production_features_at_t_minus_one() -> None:
    p = _panel()
    lagged = lag_features(p, 1)
    assert lagged.features[0, 1:6, 0, 0].tolist() == p.features[0, 0:5, 0, 0].tolist()
    assert lagged.features[0, 0].tolist() == [[0.0], [0.0]]  # no older bar in the session
    # session 1 has 4 real bars; padding repeats its last lagged value
    assert lagged.features[1, 3, 0, 0] == p.features[1, 2, 0, 0]
    assert lagged.features[1, 4, 0, 0] == lagged.features[1, 3, 0, 0]
    assert lagged.fingerprint != p.fingerprint
    np.testing.assert_array_equal(lagged.close, p.close)


def test_lookahead_features_at_t_are_production_features_at_t_plus_one_within_the_session() -> None:
    p = _panel()
    lead = lead_features(p, 1)
    assert lead.features[0, 0:5, 1, 0].tolist() == p.features[0, 1:6, 1, 0].tolist()
    assert lead.features[0, 5, 1, 0] == p.features[0, 5, 1, 0]  # last bar: nothing beyond
    assert lead.features[1, 3, 0, 0] == p.features[1, 3, 0, 0]  # never crosses into padding
    assert lead.features[1, 0:3, 0, 0].tolist() == p.features[1, 1:4, 0, 0].tolist()


def test_production_panel_is_not_modified_by_the_transforms() -> None:
    p = _panel()
    before = p.features.copy()
    lag_features(p, 2)
    lead_features(p, 2)
    offset_sessions(p, np.array([1, 1]))
    np.testing.assert_array_equal(p.features, before)


def test_offset_sessions_start_later_and_shrink() -> None:
    p = _panel()
    shifted = offset_sessions(p, np.array([2, 1]))
    assert shifted.lengths.tolist() == [4, 3]
    assert shifted.close[0, :4, 0].tolist() == p.close[0, 2:6, 0].tolist()
    assert shifted.ts[1, 0] == p.ts[1, 1]
    assert shifted.features[1, 3, 0, 0] == shifted.features[1, 2, 0, 0]  # padding holds last
    with pytest.raises(InputError, match="at least 2 bars"):
        offset_sessions(p, np.array([5, 0]))


def test_random_offsets_are_seeded_and_leave_two_bars() -> None:
    lengths = np.array([390, 210, 5])
    a = random_offsets(lengths, 60, seed=7)
    assert a.tolist() == random_offsets(lengths, 60, seed=7).tolist()
    assert (a >= 0).all() and a[0] <= 60 and a[2] <= 3


def test_lagged_arm_is_lagged_before_the_offset() -> None:
    p = _panel()
    out = transform_panel(p, "lagged", CFG, np.array([1, 0]))
    # first offset step sees the real previous bar, not zeros
    assert out.features[0, 0, 0, 0] == p.features[0, 0, 0, 0]
    with pytest.raises(InputError, match="unknown leakage arm"):
        transform_panel(p, "shuffled", CFG, None)


def _runs(arm: str, per_seed: dict[int, list[float]]) -> list[LeakageArm]:
    """One audit run per seed whose per-session net P&L is given."""
    return [
        LeakageArm(
            name=arm,
            seed=seed,
            description=arm,
            run_dir=f"{arm}-{seed}",
            outcomes=outcomes([0.0] * len(pnl), pnl),
        )
        for seed, pnl in per_seed.items()
    ]


def _audit(
    base: dict[int, list[float]],
    lagged: dict[int, list[float]],
    ahead: dict[int, list[float]],
    cfg: LeakageConfig = CFG,
    steps: int = 15_000,
):  # type: ignore[no-untyped-def]
    arms = [*_runs("baseline", base), *_runs("lagged", lagged), *_runs("lookahead", ahead)]
    return judge_leakage(arms, cfg, steps)


# Three seeds; per-run means: baseline 0.0, 2.0, -1.0.
BASE = {0: [1.0, -1.0], 1: [3.0, 1.0], 2: [-2.0, 0.0]}
NOISE = {0: [0.5, -0.3], 1: [2.5, 1.3], 2: [-2.4, 0.6]}  # means 0.1, 1.9, -0.9
AHEAD = {0: [50.0, 48.0], 1: [55.0, 51.0], 2: [47.0, 49.0]}


def test_when_lookahead_does_markedly_better_across_seeds_and_lag_does_not_then_pass() -> None:
    v = _audit(BASE, NOISE, AHEAD)
    assert v.verdict == Verdict.PASS
    assert v.control_detected is True and v.lagged_does_better is False
    # per-seed control differences 49, 51, 49.3...: mean of (49, 51, 48) - baseline
    assert v.control.n == 3
    assert v.control.mean == pytest.approx((49.0 - 0.0 + 53.0 - 2.0 + 48.0 + 1.0) / 3)
    assert v.control.critical == pytest.approx(2.919986, abs=1e-5)  # t(0.95, df=2)


def test_when_control_is_not_detected_then_audit_broken_whatever_lag_did() -> None:
    weak = {0: [1.5, -0.5], 1: [2.0, 2.0], 2: [-2.5, 0.5]}
    for lagged in (NOISE, {0: [9.0, 9.0], 1: [9.5, 9.5], 2: [9.2, 9.2]}):
        v = _audit(BASE, lagged, weak)
        assert v.verdict == Verdict.AUDIT_BROKEN
        assert "AUDIT BROKEN" in v.message and v.control_detected is False


def test_when_lagged_features_do_better_in_every_seed_then_fail() -> None:
    better = {0: [3.0, 1.0], 1: [5.1, 2.9], 2: [0.2, 1.8]}  # +2.0, +2.0, +2.0 (about)
    v = _audit(BASE, better, AHEAD)
    assert v.verdict == Verdict.FAIL and v.lagged_does_better is True
    assert "LEAKAGE SUSPECTED" in v.message


def test_one_seed_that_happens_to_do_better_is_noise_across_seeds() -> None:
    # Seed 0's lagged run beats its baseline by 10 a session (a paired t over sessions would
    # call that leakage); the other seeds do worse, so across seeds it is noise.
    lucky = {0: [11.0, 9.0], 1: [0.0, 1.0], 2: [-5.0, -3.0]}
    v = _audit(BASE, lucky, AHEAD)
    assert v.verdict == Verdict.PASS and v.lagged_does_better is False
    assert v.lag.t < v.lag.critical


def test_below_the_minimum_budget_the_audit_refuses_a_verdict_and_names_it() -> None:
    short = _audit(BASE, NOISE, AHEAD, steps=1_500)
    assert short.verdict == Verdict.INSUFFICIENT
    assert short.control_detected is None and short.lagged_does_better is None
    assert "1500 training timesteps per run (minimum 10000" in short.message
    two = {k: v for k, v in BASE.items() if k < 2}
    v = _audit(two, {k: NOISE[k] for k in two}, {k: AHEAD[k] for k in two})
    assert v.verdict == Verdict.INSUFFICIENT
    assert "2 seeds per arm (minimum 3, leakage.min_seeds)" in v.message


def test_leakage_budget_defaults_are_pinned() -> None:
    assert CFG.seeds == (0, 1, 2)
    assert CFG.min_seeds == 3
    assert CFG.min_total_timesteps == 10_000
    assert CFG.control_confidence == 0.95 and CFG.lag_confidence == 0.95


def test_a_constant_edge_has_infinite_t_and_is_detected() -> None:
    ahead = {k: [x + 10.0 for x in v] for k, v in BASE.items()}
    v = _audit(BASE, BASE, ahead)
    assert math.isinf(v.control.t) and v.control_detected
    assert v.lag.t == 0.0


def test_arms_trained_with_other_seeds_cannot_be_compared() -> None:
    other = {5: [1.0, 2.0], 6: [0.0, 0.0], 7: [1.0, 1.0]}
    # The runner trains every arm with the same seeds: a mismatch is a fault, not user input.
    with pytest.raises(InternalError, match="different seeds"):
        _audit(BASE, NOISE, other)
