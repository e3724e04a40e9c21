"""The first three stress scenarios in their short form on a tiny trained run (the whole
suite's short form is ``tests/integration/test_stress_short.py``, in the default run), at the
shipped fault positions, and a failed gate's exit code.

Gates on wall-clock figures (latency in ms, memory in MB) are left to the nightly run: tests
never assert wall-clock times. Every other shipped gate is checked here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import stairways
from tests.integration.live.conftest import LiveRun
from tests.integration.stress_helpers import live_run, stress_run, suite_config  # noqa: F401

pytestmark = pytest.mark.slow

SCENARIOS = ("flash_crash", "broker_disconnect", "order_burst")


def test_short_suite_passes_every_gate_and_writes_results(
    stress_run: LiveRun,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = suite_config(tmp_path, stress_run, SCENARIOS)
    chosen = [arg for name in SCENARIOS for arg in ("-s", name)]
    code = stairways(
        monkeypatch, "stress", "run", *chosen, "--short", "--stress-config", cfg,
        "--out", tmp_path / "o",
    )  # fmt: skip
    out = capsys.readouterr().out
    results = json.loads((tmp_path / "o" / "latest.json").read_text())
    names = [s["name"] for s in results["scenarios"]]
    assert names == list(SCENARIOS)
    assert code == 0, out
    assert results["passed"] is True and results["short"] is True
    by = {s["name"]: s["figures"] for s in results["scenarios"]}
    assert by["flash_crash"]["open_position_at_end"] == 0.0
    assert by["broker_disconnect"]["latency_flatten"] == 1.0
    assert by["order_burst"]["position_changes"] == 50
    assert by["order_burst"]["orders_sent"] >= 50
    assert all(math.isfinite(f["decision_p99_ms"]) for f in by.values())
    reports = list((tmp_path / "o").glob("*/report.html"))
    assert len(reports) == 1 and "Every gate held." in reports[0].read_text()


def test_a_fault_the_session_never_reaches_fails_the_scenario(
    stress_run: LiveRun,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A disconnect after the session's last bar (390) never happens: the scenario fails with
    # that reason even though no gate is left that could fail.
    data = yaml.safe_load(suite_config(tmp_path, stress_run, ("broker_disconnect",)).read_text())
    data["broker_disconnect"].update({"at_bar": 400, "latency_from_bar": 410})
    data["broker_disconnect"]["gates"] = [{"metric": "limit_breaches", "op": "==", "threshold": 0}]
    path = tmp_path / "late.yaml"
    path.write_text(yaml.safe_dump(data))
    args = ["stress", "run", "-s", "broker_disconnect", "--stress-config", path]
    assert stairways(monkeypatch, *args, "--out", tmp_path / "s") == 3
    printed = capsys.readouterr().out
    (scenario,) = json.loads((tmp_path / "s" / "latest.json").read_text())["scenarios"]
    assert scenario["passed"] is False and all(g["passed"] for g in scenario["gates"])
    assert scenario["error"].startswith("the fault did not play out")
    assert "bar 400" in scenario["error"] and scenario["error"] in printed


def test_a_failed_gate_exits_3(
    stress_run: LiveRun,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = yaml.safe_load(suite_config(tmp_path, stress_run, SCENARIOS).read_text())
    # An order burst of 50 changes cannot leave fewer than 50 orders.
    data["order_burst"]["gates"] = [{"metric": "orders_sent", "op": "<", "threshold": 10}]
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(data))
    args = ["stress", "run", "-s", "order_burst", "--stress-config", path, "--out", tmp_path / "s"]
    assert stairways(monkeypatch, *args) == 3
    results = json.loads((tmp_path / "s" / "latest.json").read_text())
    assert results["passed"] is False
