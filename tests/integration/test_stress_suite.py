"""The first three stress scenarios in their short form on a tiny trained run (the whole
suite's short form is ``tests/integration/test_stress_short.py``, in the default run).

Gates on wall-clock figures (latency in ms, memory in MB) are left to the nightly run: tests
never assert wall-clock times. Every other shipped gate is checked here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from stairways.resources import shipped_config
from tests.cli_helpers import stairways
from tests.integration.live.conftest import PARITY_RISK_DIR, LiveRun, live_run  # noqa: F401

pytestmark = pytest.mark.slow

WALL_CLOCK = ("_ms", "_mb")
SCENARIOS = ("flash_crash", "broker_disconnect", "order_burst")


def _suite_config(tmp_path: Path, run: LiveRun) -> Path:
    data = yaml.safe_load(shipped_config("stress/suite").read_text(encoding="utf-8"))
    # The tiny run's store holds Nov 2023..Jan 2024, with too little history before the
    # shipped validation split's first stored session for the features' warm-up; its 2024
    # sessions are the fixture's own, not a user's test year.
    data.update({"run_dir": str(run.run_dir), "risk_dir": str(PARITY_RISK_DIR), "split": "test"})
    # The tiny run's 1% drawdown rule ends its 2024-01-02 session near bar 22 (and a close-out
    # during a disconnect cannot flatten): the disconnect and the slow broker come early here so
    # that both play out before it.
    data["broker_disconnect"].update({"at_bar": 4, "bars": 3, "latency_from_bar": 8})
    for name in SCENARIOS:
        gates = data[name]["gates"]
        data[name]["gates"] = [g for g in gates if not g["metric"].endswith(WALL_CLOCK)]
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_short_suite_passes_every_gate_and_writes_results(
    live_run: LiveRun,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = _suite_config(tmp_path, live_run)
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


def test_a_failed_gate_exits_3(
    live_run: LiveRun,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = yaml.safe_load(_suite_config(tmp_path, live_run).read_text())
    # An order burst of 50 changes cannot leave fewer than 50 orders.
    data["order_burst"]["gates"] = [{"metric": "orders_sent", "op": "<", "threshold": 10}]
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(data))
    args = ["stress", "run", "-s", "order_burst", "--stress-config", path, "--out", tmp_path / "s"]
    assert stairways(monkeypatch, *args) == 3
    results = json.loads((tmp_path / "s" / "latest.json").read_text())
    assert results["passed"] is False
