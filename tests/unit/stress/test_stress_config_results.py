"""The stress suite's gates, settings and results file (the scenarios run in
tests/integration/test_stress_suite.py)."""

from __future__ import annotations

import json
import operator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.clock import EXCHANGE_TZ, ManualClock
from stairways.configbase import validate_model
from stairways.errors import ConfigError, InputError
from stairways.stress.results import (
    GateResult,
    ScenarioResult,
    SuiteResult,
    read_latest,
    read_results,
    write_results,
)
from stairways.stress.scenarios import check_gates
from stairways.stress.settings import GateConfig, StressConfig, load_stress_config
from stairways.stress.suite import build_context, run_suite
from tests.cli_helpers import stairways

PY_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


@given(
    value=st.floats(-1e6, 1e6),
    threshold=st.floats(-1e6, 1e6),
    op=st.sampled_from(sorted(PY_OPS)),
)
def test_gate_holds_exactly_when_its_comparison_holds(
    value: float, threshold: float, op: str
) -> None:
    gate = GateConfig(metric="x", op=op, threshold=threshold)  # type: ignore[arg-type]
    (result,) = check_gates({"x": value}, (gate,))
    assert result.passed is PY_OPS[op](value, threshold)
    assert result.value == value


def test_a_gate_on_a_figure_the_scenario_lacks_fails() -> None:
    (result,) = check_gates({}, (GateConfig(metric="nope", op="<", threshold=1.0),))
    assert result.passed is False and result.value is None
    assert "n/a" in result.line()


def test_shipped_gates_are_the_issue_thresholds() -> None:
    cfg = load_stress_config()
    gates = {
        name: {(g.metric, g.op): g.threshold for g in getattr(cfg, name).gates}
        for name in ("flash_crash", "broker_disconnect", "order_burst")
    }
    assert gates["flash_crash"] == {
        ("max_drawdown", "<"): 0.15,
        ("decision_p99_ms", "<"): 15.0,
        ("limit_breaches", "=="): 0.0,
        ("open_position_at_end", "=="): 0.0,
    }
    assert gates["broker_disconnect"] == {
        ("safe_state_seconds", "<="): 25.0,
        ("pause_flag_seconds", "<="): 2.0,
        ("orders_leaked", "=="): 0.0,
        ("latency_flatten", "=="): 1.0,
    }
    assert gates["order_burst"] == {
        ("limit_breaches", "=="): 0.0,
        ("pnl_difference", "<="): 1.0,
        ("filled_share", ">"): 0.95,
        ("position_changes", "=="): 50.0,
    }
    fc = cfg.flash_crash
    assert (fc.shock, fc.spread_multiplier, fc.recovery_bars) == (-0.03, 3.0, 30)
    assert cfg.broker_disconnect.added_latency_ms == 250.0
    assert cfg.order_burst.changes == 50
    assert cfg.run_dir is None and cfg.out_dir == Path("reports/stress")


def test_unknown_gate_operator_is_refused_with_its_key() -> None:
    data = {"flash_crash": {"gates": [{"metric": "x", "op": "~", "threshold": 1}]}}
    with pytest.raises(ConfigError, match="flash_crash"):
        validate_model(StressConfig, data, "suite.yaml")


def _suite(passed: bool) -> SuiteResult:
    gate = GateResult("max_drawdown", "<", 0.15, 0.02 if passed else 0.2, passed)
    return SuiteResult(
        started="2026-11-30T20:30:00-05:00",
        finished="2026-11-30T20:31:00-05:00",
        short=True,
        scenarios=[ScenarioResult("flash_crash", "sim", {"max_drawdown": 0.02}, [gate])],
    )


def test_results_round_trip_and_latest_follows_the_last_run(tmp_path: Path) -> None:
    first = write_results(_suite(True), tmp_path / "a", tmp_path)
    write_results(_suite(False), tmp_path / "b", tmp_path)
    assert read_results(first).passed is True
    latest = read_latest(tmp_path)
    assert latest is not None and latest.passed is False
    assert json.loads((tmp_path / "latest.json").read_text())["passed"] is False
    assert read_latest(tmp_path / "none") is None


def test_a_scenario_without_gates_or_with_an_error_does_not_pass() -> None:
    assert not ScenarioResult("x", "sim").passed
    ok = _suite(True).scenarios[0]
    ok.error = "could not run"
    assert not ok.passed


def test_a_file_that_is_not_a_results_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "latest.json"
    bad.write_text('{"scenarios": 3}')
    with pytest.raises(InputError, match=r"latest\.json"):
        read_latest(tmp_path)


def test_unknown_scenario_is_refused_before_anything_runs() -> None:
    clock = ManualClock(datetime(2026, 11, 30, 20, 30, tzinfo=EXCHANGE_TZ))
    with pytest.raises(InputError, match="flash_crash, broker_disconnect, order_burst"):
        run_suite(cast(Any, None), StressConfig(), ["meltdown"], short=True, clock=clock)


def test_no_run_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="--run RUN_DIR"):
        build_context(StressConfig(), None, tmp_path)
    assert stairways(monkeypatch, "stress", "run", "--out", tmp_path) == 2
