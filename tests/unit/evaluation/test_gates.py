import dataclasses
import json
from pathlib import Path

from stairways.evaluation.gates import (
    GATES_FAILED_EXIT_CODE,
    evaluate_gates,
    write_verdict,
)
from stairways.evaluation.metrics import compute_metrics
from stairways.evaluation.settings import GateConfig
from tests.unit.evaluation.factory import make_trace, spread


def _metrics(**changes: object):  # type: ignore[no-untyped-def]
    base = compute_metrics(make_trace([spread([100.0, -50.0]), spread([200.0, 50.0])]))
    return dataclasses.replace(base, **changes)


def test_all_thresholds_met_then_verdict_passes_with_exit_code_zero() -> None:
    m = _metrics(sharpe=0.5, episode_reward_mean=0.2, mean_episode_length=390.0)
    verdict = evaluate_gates(m, GateConfig())
    assert verdict.passed
    assert verdict.exit_code == 0
    assert [r.metric for r in verdict.results] == [
        "sharpe",
        "episode_reward_mean",
        "mean_episode_length",
    ]


def test_threshold_equal_to_value_then_gate_passes() -> None:
    m = _metrics(sharpe=0.3, episode_reward_mean=0.1, mean_episode_length=80.0)
    assert evaluate_gates(m, GateConfig()).passed


def test_sharpe_below_threshold_then_verdict_fails_with_dedicated_exit_code() -> None:
    m = _metrics(sharpe=0.29, episode_reward_mean=0.2, mean_episode_length=390.0)
    verdict = evaluate_gates(m, GateConfig())
    assert not verdict.passed
    assert verdict.exit_code == GATES_FAILED_EXIT_CODE == 3
    failed = [r.metric for r in verdict.results if not r.passed]
    assert failed == ["sharpe"]
    table = verdict.table()
    assert "sharpe" in table and "FAIL" in table and "verdict: FAIL" in table


def test_undefined_sharpe_then_gate_fails_even_with_negative_threshold() -> None:
    m = _metrics(sharpe=None, episode_reward_mean=1.0, mean_episode_length=390.0)
    verdict = evaluate_gates(m, GateConfig(min_sharpe=-5.0))
    assert not verdict.passed
    assert "undefined" in verdict.table()


def test_short_episodes_then_length_gate_fails() -> None:
    m = _metrics(sharpe=1.0, episode_reward_mean=1.0, mean_episode_length=79.9)
    verdict = evaluate_gates(m, GateConfig())
    assert [r.passed for r in verdict.results] == [True, True, False]


def test_verdict_saved_as_json_with_every_gate(tmp_path: Path) -> None:
    m = _metrics(sharpe=0.1, episode_reward_mean=0.2, mean_episode_length=390.0)
    path = write_verdict(evaluate_gates(m, GateConfig()), tmp_path / "gates.json")
    data = json.loads(path.read_text())
    assert data["passed"] is False
    assert data["gates"][0] == {"metric": "sharpe", "value": 0.1, "threshold": 0.3, "passed": False}
