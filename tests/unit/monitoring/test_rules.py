"""Alert rules: promtool checks and unit-tests them; the monitor's evaluator states the same
alerts; every Grafana panel expression is valid PromQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stairways.monitoring import rules
from tests.unit.monitoring.promtool import DEPLOY, promtool

ALERTS = DEPLOY / "prometheus" / "alerts.yml"


def _alert_rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_alert_rules_pass_promtool_check() -> None:
    out = promtool("check", "rules", str(ALERTS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules.RULES)} rules found" in out.stdout


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    out = promtool("test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_has_a_firing_and_a_not_firing_unit_test() -> None:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())
    fires: set[str] = set()
    silent: set[str] = set()
    for t in doc["tests"]:
        for case in t["alert_rule_test"]:
            (fires if case["exp_alerts"] else silent).add(case["alertname"])
    names = {r.name for r in rules.RULES}
    assert fires == names and silent == names


def test_prometheus_rules_and_the_monitors_evaluator_name_the_same_alerts() -> None:
    shipped = {str(r["alert"]): dict(r["labels"])["severity"] for r in _alert_rules()}  # type: ignore[call-overload]
    assert shipped == {r.name: r.severity for r in rules.RULES}


def test_scrape_config_passes_promtool_and_scrapes_the_monitors_default_port() -> None:
    cfg = DEPLOY / "prometheus" / "prometheus.yml"
    out = promtool("check", "config", str(cfg))
    assert out.returncode == 0, out.stdout + out.stderr
    doc = yaml.safe_load(cfg.read_text())
    assert doc["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:8787"]


def test_every_grafana_panel_expression_is_valid_promql(tmp_path: Path) -> None:
    dash = json.loads((DEPLOY / "grafana" / "stairways.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= len(dash["panels"]) >= 12
    records = [{"record": f"grafana:panel_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "grafana_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": records}]}))
    out = promtool("check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in out.stdout
    # A broken expression is caught (so the check above checks something).
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "x:y", "expr": "sum(("}]}]})
    )
    assert promtool("check", "rules", str(path)).returncode != 0


FIGURES = {
    "drawdown": 0.01,
    "drawdown_limit": 0.10,
    "day_net_pnl": -10.0,
    "loss_limit": 1000.0,
    "governor_state": "RUNNING",
    "broker_down_seconds": 0.0,
    "feed_age": 5.0,
    "feed_stale_seconds": 120.0,
    "session_open": 1.0,
    "latency_p99_ms": 1.0,
    "errors_in_window": 0,
}


@pytest.mark.parametrize(
    ("change", "alert"),
    [
        ({"drawdown": 0.0801}, "StairwaysDrawdownWarning"),
        ({"drawdown": 0.10}, "StairwaysDrawdownCritical"),
        ({"day_net_pnl": -1000.0}, "StairwaysDailyLossLimit"),
        ({"governor_state": "EMERGENCY_STOP"}, "StairwaysEmergencyStop"),
        ({"broker_down_seconds": 61.0}, "StairwaysBrokerDisconnected"),
        ({"feed_age": 121.0}, "StairwaysStaleFeed"),
        ({"latency_p99_ms": 10.5}, "StairwaysDecisionLatencyHigh"),
        ({"errors_in_window": 3}, "StairwaysErrorRate"),
    ],
)
def test_evaluator_fires_exactly_the_alert_whose_condition_holds(
    change: dict[str, object], alert: str
) -> None:
    assert rules.evaluate(FIGURES) == []
    fired = [f.rule.name for f in rules.evaluate({**FIGURES, **change})]
    assert fired == [alert]


@pytest.mark.parametrize(
    "change",
    [
        {"drawdown": 0.0799},
        {"day_net_pnl": -999.99},
        {"broker_down_seconds": 60.0},
        {"feed_age": 120.0},
        {"feed_age": 500.0, "session_open": 0.0},
        {"latency_p99_ms": 10.0},
        {"errors_in_window": 2},
        {"governor_state": "PAUSED"},
    ],
)
def test_evaluator_stays_silent_just_inside_each_level(change: dict[str, object]) -> None:
    assert rules.evaluate({**FIGURES, **change}) == []


def test_alert_levels_are_pinned() -> None:
    assert rules.DRAWDOWN_WARNING_FRACTION == 0.8
    assert rules.BROKER_DOWN_SECONDS == 60.0
    assert rules.LATENCY_P99_LIMIT_MS == 10.0
    assert (rules.ERROR_WINDOW_SECONDS, rules.MAX_ERRORS_IN_WINDOW) == (300.0, 3)
    text = ALERTS.read_text()
    assert "0.8 * stairways_drawdown_limit_ratio" in text and "> 0.010" in text
    assert "increase(stairways_system_errors_total[5m]) >= 3" in text
