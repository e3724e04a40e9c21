"""``/metrics``: promtool accepts it, and its values are the journal's."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stairways.monitoring.metrics import registry_for
from stairways.monitoring.service import Monitor
from tests.unit.monitoring.promtool import promtool
from tests.unit.monitoring.session_writer import SessionWriter

NAMES = {
    "stairways_decision_latency_seconds",
    "stairways_order_executions",
    "stairways_position_shares",
    "stairways_daily_pnl_dollars",
    "stairways_daily_turnover_dollars",
    "stairways_drawdown_ratio",
    "stairways_hard_limit_breaches",
    "stairways_system_errors",
    "stairways_governor_state",
    "stairways_broker_connected",
    "stairways_feed_age_seconds",
    "stairways_gate_progress",
}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_of_an_active_session_pass_promtool_check_metrics(
    monitor: Monitor, writer: SessionWriter
) -> None:
    writer.start()
    writer.bar({"NVDA": 100.0, "MSFT": 50.0}, trade={"NVDA": 10.0})
    writer.journal.append(
        "alert", {"session_id": writer.sid, "type": "broker_connected", "attempt": 1}, writer.at
    )
    writer.journal.append(
        "alert", {"kind": "stop", "rule": "loss_limit", "message": "x"}, writer.at
    )
    text = generate_latest(registry_for(monitor)).decode()
    out = promtool("check", "metrics", stdin=text)
    assert out.returncode == 0 and out.stdout.strip() == "" and out.stderr.strip() == "", (
        out.stdout + out.stderr
    )
    families = {f.name for f in text_string_to_metric_families(text)}
    assert families >= NAMES


def test_metric_values_are_the_journals(monitor: Monitor, writer: SessionWriter) -> None:
    writer.start()
    writer.bar({"NVDA": 100.0, "MSFT": 50.0}, latency_ms=0.4)
    writer.bar({"NVDA": 100.0, "MSFT": 50.0}, trade={"NVDA": 10.0}, fee=2.0, latency_ms=12.0)
    writer.journal.append(
        "order_status",
        {"session_id": writer.sid, "client_order_id": "zz", "state": "rejected", "reason": "x"},
        writer.at,
    )
    s = _samples(generate_latest(registry_for(monitor)).decode())
    assert s[("stairways_daily_pnl_dollars", ())] == -2.0
    assert s[("stairways_daily_turnover_dollars", ())] == 1000.0
    assert s[("stairways_position_shares", (("symbol", "NVDA"),))] == 10.0
    assert s[("stairways_governor_state", (("state", "RUNNING"),))] == 1.0
    assert s[("stairways_governor_state", (("state", "EMERGENCY_STOP"),))] == 0.0
    assert s[("stairways_order_executions_total", (("status", "filled"), ("symbol", "NVDA")))] == 1
    assert s[("stairways_system_errors_total", ())] == 1.0
    assert s[("stairways_decision_latency_seconds_count", ())] == 2.0
    assert s[("stairways_decision_latency_seconds_bucket", (("le", "0.001"),))] == 1.0
    assert s[("stairways_decision_latency_seconds_bucket", (("le", "0.015"),))] == 2.0
    assert s[("stairways_drawdown_limit_ratio", ())] == 0.1
    assert ("stairways_broker_connected", ()) not in s  # no connection event journaled yet


def test_empty_journal_exports_state_but_no_trading_figures(monitor: Monitor) -> None:
    text = generate_latest(registry_for(monitor)).decode()
    s = _samples(text)
    assert s[("stairways_governor_state", (("state", "PAUSED"),))] == 1.0
    assert ("stairways_daily_pnl_dollars", ()) not in s
    assert ("stairways_drawdown_ratio", ()) not in s
    assert promtool("check", "metrics", stdin=text).returncode == 0
