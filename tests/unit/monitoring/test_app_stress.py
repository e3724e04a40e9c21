"""The dashboard's stress view: the last nightly stress run's results and report page."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from stairways.clock import EXCHANGE_TZ
from stairways.monitoring.app import create_app
from stairways.monitoring.service import Monitor
from stairways.stress.results import GateResult, ScenarioResult, SuiteResult
from stairways.stress.suite import write_report


def _suite(passed: bool) -> SuiteResult:
    value = 0.0 if passed else 2.0
    gate = GateResult("lost_orders", "==", 0.0, value, passed)
    return SuiteResult(
        started="2026-11-30T20:30:00-05:00",
        finished="2026-11-30T20:41:00-05:00",
        short=False,
        scenarios=[ScenarioResult("restart", "sim", {"lost_orders": value}, [gate])],
    )


def test_stress_view_serves_the_last_run(monitor: Monitor, tmp_path: Path) -> None:
    client = TestClient(create_app(monitor, stress_dir=tmp_path))
    assert client.get("/api/stress").status_code == 404
    assert "stairways stress run" in client.get("/stress").text
    day = date(2023, 7, 3)
    write_report(_suite(True), tmp_path, day, datetime(2026, 11, 30, 20, 30, tzinfo=EXCHANGE_TZ))
    write_report(_suite(False), tmp_path, day, datetime(2026, 12, 1, 20, 30, tzinfo=EXCHANGE_TZ))
    answer = client.get("/api/stress").json()
    assert answer["passed"] is False
    assert answer["scenarios"][0]["figures"]["lost_orders"] == 2.0
    page = client.get("/stress")
    assert page.status_code == 200 and "A stress gate failed." in page.text


def test_a_broken_results_file_is_named(monitor: Monitor, tmp_path: Path) -> None:
    (tmp_path / "latest.json").write_text("{}")
    answer = TestClient(create_app(monitor, stress_dir=tmp_path)).get("/api/stress")
    assert answer.status_code == 409 and "latest.json" in answer.json()["error"]


def test_without_a_stress_folder_the_view_is_hidden(monitor: Monitor) -> None:
    client = TestClient(create_app(monitor))
    assert client.get("/api/stress").status_code == 404
    assert client.get("/stress").status_code == 404
