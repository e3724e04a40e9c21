"""The monitor on what the live loop really writes: a rehearsed 2024 session of a tiny trained
run. The dashboard's figures equal the loop's end figures, and the dashboard's emergency stop
halts a running (paced) rehearsal: the loop cancels, flattens and records the stop."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stairways.clock import EXCHANGE_TZ, ManualClock
from stairways.journal import Journal, JournalReader
from stairways.live.model import LivePolicy
from stairways.monitoring.app import create_app
from stairways.monitoring.service import Monitor
from stairways.risk.state import read_state
from stairways.security.secret import Secret
from tests.integration.live.conftest import (  # noqa: F401  (fixtures)
    KEY,
    Journals,
    LiveRun,
    journals,
    live_policy,
    live_run,
    run_rehearsal,
)
from tests.unit.monitoring.conftest import Tick

pytestmark = pytest.mark.slow

TOKEN = "rehearsal-operator-token-0123456789"


def _monitor(reader: JournalReader, writer: Journal | None = None) -> Monitor:
    from datetime import datetime

    clock = ManualClock(datetime(2024, 1, 3, 16, 0, tzinfo=EXCHANGE_TZ))
    return Monitor(reader, clock, writer=writer, operator_token=Secret(TOKEN), monotonic=Tick())


def test_dashboard_figures_equal_the_rehearsed_sessions_end_figures(
    live_policy: LivePolicy,  # noqa: F811  (fixture)
    journals: Journals,  # noqa: F811  (fixture)
    tmp_path: Path,
) -> None:
    location = journals.location("monitor.sqlite")
    live_policy.new_session()
    result = run_rehearsal(live_policy, location, tmp_path / "state")
    with JournalReader.open(location) as reader:
        m = _monitor(reader)
        m.refresh()
        snap = m.snapshot()
    figures = result.summary["figures"]
    assert snap["session"]["session_id"] == result.session_id and snap["session"]["ended"]
    assert snap["pnl"]["today"]["net"] == pytest.approx(figures["pnl"], abs=0.01)
    assert snap["pnl"]["today"]["fees"] == pytest.approx(figures["fees"], abs=0.01)
    assert max(p["drawdown"] for p in snap["curve"]) == pytest.approx(
        figures["max_drawdown"], abs=1e-9
    )
    assert snap["positions"] == pytest.approx(result.summary["positions"])
    assert snap["latency"]["decisions"] == result.summary["decisions"]
    assert snap["session"]["fills"] == len(result.executions) > 0


def test_emergency_stop_from_the_dashboard_halts_a_running_rehearsal(
    live_policy: LivePolicy,  # noqa: F811  (fixture)
    journals: Journals,  # noqa: F811  (fixture)
    tmp_path: Path,
) -> None:
    location = journals.location("halt.sqlite")
    live_policy.new_session()
    Journal.open(location, KEY).close()  # created before the monitor opens it
    out: dict[str, Any] = {}

    def trade() -> None:
        # An exception here is printed by threading's hook; the main thread then finds no
        # result and fails.
        out["result"] = run_rehearsal(
            live_policy,
            location,
            tmp_path / "state",
            plan={"pace": 0.05, "poll_seconds": 0.01},
        )

    thread = threading.Thread(target=trade, daemon=True)
    with JournalReader.open(location) as reader, Journal.open(location, KEY) as writer:
        m = _monitor(reader, writer)
        client = TestClient(create_app(m))
        thread.start()
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            snap = client.get("/api/snapshot").json()
            if snap["latency"]["decisions"] >= 20 and snap["governor"]["state"] == "RUNNING":
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the rehearsal did not reach 20 decisions: {out}")
        r = client.post(
            "/api/control/halt",
            json={
                "operator": "erin",
                "reason": "halt from the page",
                "token": TOKEN,
                "confirm": True,
            },
        )
        assert r.status_code == 200, r.text
        thread.join(timeout=300.0)
        assert not thread.is_alive(), "the rehearsal did not finish after the stop"
        assert "result" in out, "the rehearsal thread failed (its traceback is above)"
        result = out["result"]
        assert result.summary["emergency_stop"] is True
        assert all(q == 0.0 for q in result.summary["positions"].values())
        rec = read_state(reader)
        assert (rec.state.value, rec.who) == ("EMERGENCY_STOP", "erin")
        m.refresh()
        snap = m.snapshot()
        assert snap["positions"] == {s: 0.0 for s in snap["positions"]}
        assert any(a["name"] == "StairwaysEmergencyStop" for a in snap["alerts"]["active"])
