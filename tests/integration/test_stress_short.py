"""Every stress scenario in its short form (``stairways stress run --short``), in the default
test run: each rehearses a session of a tiny trained run through the live loop, the governor,
the journal and the simulated broker (the restart scenario in its own killed and restarted
process; the IBKR variants against the fake gateway with the real ib_async client), and the
results reach the weekly report and the dashboard.

Gates on wall-clock figures (latency, memory) are the nightly run's to judge: tests never
assert wall-clock times, so they are taken out of the config here; every functional gate of
every scenario of the shipped config is checked, and the command exits 0. The run stressed is
the tiny model trained under a 10% drawdown rule (``tests/integration/stress_helpers.py``), so
that every fault plays out before the model's own rule could end its session.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from stairways.clock import EXCHANGE_TZ
from stairways.journal import Journal, JournalLocation
from stairways.live.registry import register_model
from stairways.stress.suite import ALL_SCENARIOS
from stairways.weekly.build import stress_summary
from tests.cli_helpers import stairways
from tests.integration.live.conftest import KEY, LiveRun
from tests.integration.stress_helpers import (  # noqa: F401
    WALL_CLOCK,
    live_run,
    stress_run,
    suite_config,
)


def test_short_suite_runs_every_scenario_and_every_functional_gate_holds(
    stress_run: LiveRun,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "stress"
    cfg = suite_config(tmp_path, stress_run)
    code = stairways(
        monkeypatch, "stress", "run", "--short", "--stress-config", cfg, "--out", out
    )  # fmt: skip
    printed = capsys.readouterr().out
    results = json.loads((out / "latest.json").read_text())
    assert [s["name"] for s in results["scenarios"]] == list(ALL_SCENARIOS)
    errors = [(s["name"], s["error"]) for s in results["scenarios"] if s["error"]]
    assert errors == [], printed
    # every functional gate of every scenario holds, and the command says so
    failed = [
        (s["name"], g["metric"], g["value"])
        for s in results["scenarios"]
        for g in s["gates"]
        if not g["passed"]
    ]
    assert failed == [], printed
    assert all(s["gates"] for s in results["scenarios"])
    assert not any(
        g["metric"].endswith(WALL_CLOCK) for s in results["scenarios"] for g in s["gates"]
    )
    assert results["short"] is True and results["passed"] is True
    assert code == 0, printed
    by = {s["name"]: s["figures"] for s in results["scenarios"]}
    # each fault happened, and the rule it tests acted
    assert by["flash_crash"]["last_live_bar"] >= 30  # the session saw the shock
    assert by["flash_crash"]["limit_breaches"] == 0 and by["flash_crash"]["orders_sent"] >= 1
    for name in ("broker_disconnect", "broker_disconnect_ibkr"):
        assert by[name]["latency_flatten"] == 1.0, name
        assert by[name]["pause_flag_seconds"] == 0.0, name  # paused in the disconnect's bar
        assert by[name]["orders_leaked"] == 0.0, name
    assert by["broker_disconnect_ibkr"]["reconciliations"] >= 1  # after the reconnect
    assert by["broker_disconnect_ibkr"]["rebuilt_bars"] >= 5  # the minutes the cut lost
    for name in ("order_burst", "order_burst_ibkr"):
        assert by[name]["position_changes"] == 50, name
        assert by[name]["orders_sent"] >= 50, name
        assert by[name]["open_position_at_end"] == 0.0, name
    assert by["order_burst_ibkr"]["gateway_orders"] >= 50  # every order reached the gateway
    assert by["partial_fills"]["partially_filled_orders"] >= 1
    assert by["partial_fills"]["position_difference"] == 0.0
    assert by["rejects"]["rejects"] >= by["rejects"]["reject_limit"] == 3
    assert by["rejects"]["rejects_before_pause"] == 3
    assert by["stale_feed"]["repeated_minutes_journaled"] >= 1
    assert by["stale_feed"]["detect_seconds_max"] > by["stale_feed"]["stale_limit_seconds"]
    assert by["restart"]["kills"] == 1 and by["restart"]["orders"] >= 1
    assert by["restart"]["orders"] == by["restart"]["reference_orders"]
    assert by["half_day"]["session_minutes"] == 210
    assert by["half_day"]["flat_seconds_before_close"] >= 300  # the paper stage's margin
    # the results reach the weekly report (its stress_dir) ...
    summary = stress_summary(out)
    assert summary is not None and summary.passed is True
    assert [line.name for line in summary.scenarios] == list(ALL_SCENARIOS)
    # ... and the dashboard's stress view reads the same file
    (report,) = out.glob("*/report.html")
    page = report.read_text(encoding="utf-8")
    assert "half_day" in page and results["model"] in page and "Every gate held." in page


def test_without_a_run_the_suite_stresses_the_model_at_the_paper_stage(
    stress_run: LiveRun,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = JournalLocation.sqlite(tmp_path / "registry.sqlite")
    at = datetime(2024, 1, 2, 8, 0, tzinfo=EXCHANGE_TZ)
    with Journal.open(registry, KEY) as journal:
        model, _ = register_model(journal, stress_run.run_dir, "final", by="dev", at=at)
        # the tiny run need not pass its test gates: put it in paper as a promotion does
        journal.append(
            "config",
            {
                "type": "ladder_stage", "model_id": model.model_id,
                "fingerprint": model.fingerprint, "from": "research", "to": "paper",
                "action": "promote", "by": "dev", "reason": "test", "request_id": "",
                "details": {},
            },
            at,
        )  # fmt: skip
    data = yaml.safe_load(suite_config(tmp_path, stress_run).read_text(encoding="utf-8"))
    data["run_dir"] = None
    assert data["model"] == "paper"
    cfg = tmp_path / "registered.yaml"
    cfg.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "o"
    code = stairways(
        monkeypatch, "stress", "run", "-s", "rejects", "--short", "--stress-config", cfg,
        "--registry-journal", str(tmp_path / "registry.sqlite"), "--out", out,
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    results = json.loads((out / "latest.json").read_text())
    assert results["model"] == model.model_id
    assert f"model: {model.model_id}" in printed
