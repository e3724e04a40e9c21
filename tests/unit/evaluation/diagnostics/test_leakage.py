import math
from datetime import date

import numpy as np
import pytest

from stairways.data.panel import SessionPanel
from stairways.errors import InputError
from stairways.evaluation.diagnostics.decision_matrix import Verdict
from stairways.evaluation.diagnostics.leakage import (
    judge_leakage,
    lag_features,
    lead_features,
    offset_sessions,
    random_offsets,
    transform_panel,
)
from stairways.evaluation.diagnostics.settings import LeakageConfig
from tests.unit.evaluation.diagnostics.helpers import outcomes

CFG = LeakageConfig()  # net_pnl, control_z 3, lag_z 2


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


def test_when_lookahead_does_markedly_better_and_lag_does_not_then_pass() -> None:
    base = outcomes([0] * 5, [1.0, -1.0, 0.5, -0.5, 0.0])
    lagged = outcomes([0] * 5, [0.8, -1.1, 0.6, -0.7, 0.1])
    ahead = outcomes([0] * 5, [50.0, 48.0, 52.0, 49.0, 51.0])
    v = judge_leakage(base, lagged, ahead, CFG)
    assert v.verdict == Verdict.PASS
    assert v.control_detected and not v.lagged_does_better
    assert v.control.mean == pytest.approx(50.0)


def test_when_control_is_not_detected_then_audit_broken_whatever_lag_did() -> None:
    base = outcomes([0] * 5, [1.0, -1.0, 0.5, -0.5, 0.0])
    ahead = outcomes([0] * 5, [1.2, -1.3, 0.4, -0.2, 0.1])
    for lagged in (base, outcomes([0] * 5, [9.0, 9.0, 9.5, 9.0, 9.2])):
        v = judge_leakage(base, lagged, ahead, CFG)
        assert v.verdict == Verdict.AUDIT_BROKEN
        assert "AUDIT BROKEN" in v.message and not v.control_detected


def test_when_lagged_features_do_better_beyond_noise_then_fail() -> None:
    base = outcomes([0] * 5, [1.0, -1.0, 0.5, -0.5, 0.0])
    lagged = outcomes([0] * 5, [3.0, 1.1, 2.4, 1.6, 2.0])
    ahead = outcomes([0] * 5, [50.0, 48.0, 52.0, 49.0, 51.0])
    v = judge_leakage(base, lagged, ahead, CFG)
    assert v.verdict == Verdict.FAIL and v.lagged_does_better
    assert "LEAKAGE SUSPECTED" in v.message


def test_a_constant_edge_has_infinite_t_and_is_detected() -> None:
    base = outcomes([0] * 3, [1.0, 2.0, 3.0])
    ahead = outcomes([0] * 3, [11.0, 12.0, 13.0])
    v = judge_leakage(base, base, ahead, CFG)
    assert math.isinf(v.control.t) and v.control_detected
    assert v.lag.t == 0.0


def test_arms_on_different_sessions_cannot_be_paired() -> None:
    base = outcomes([0] * 3, [1.0, 2.0, 3.0])
    other = base.model_copy(update={"sessions": ("2024-03-01", "2024-03-02", "2024-03-03")})
    with pytest.raises(InputError, match="same sessions"):
        judge_leakage(base, base, other, CFG)
