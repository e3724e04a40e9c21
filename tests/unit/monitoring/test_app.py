"""The web app: controls with token, confirmation and reason (refusals journaled), the event
stream, the research view, the charting library from the installed package, loopback only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from stairways.journal import Journal
from stairways.monitoring.app import create_app, plotly_js_path
from stairways.monitoring.research import evaluations, research_blocks
from stairways.monitoring.service import Monitor
from stairways.risk.state import read_state
from tests.unit.monitoring.conftest import TOKEN
from tests.unit.monitoring.session_writer import SessionWriter


def _halt(client: TestClient, **body: object) -> tuple[int, dict[str, object]]:
    base = {
        "operator": "carol",
        "reason": "price feed looks wrong",
        "token": TOKEN,
        "confirm": True,
    }
    r = client.post("/api/control/halt", json={**base, **body})
    return r.status_code, r.json()


@pytest.mark.parametrize(
    ("body", "status", "why"),
    [
        ({"token": ""}, 401, "no operator token given"),
        ({"token": "not-the-token"}, 403, "the operator token is wrong"),
        ({"confirm": False}, 400, "the action was not confirmed"),
        ({"reason": "  "}, 400, "the reason is missing"),
        ({"operator": ""}, 400, "the operator's name is missing"),
    ],
)
def test_control_without_token_confirmation_or_reason_is_refused_and_journaled(
    monitor: Monitor,
    writer: SessionWriter,
    journal: Journal,
    body: dict[str, object],
    status: int,
    why: str,
) -> None:
    writer.start()
    client = TestClient(create_app(monitor))
    code, answer = _halt(client, **body)
    assert (code, answer["error"], answer["refused"]) == (status, why, True)
    assert read_state(journal).state.value == "RUNNING"  # nothing changed
    last = [r.payload for r in journal.records(kinds=["operator_action"])][-1]
    assert last["action"] == "refused" and last["requested"] == "halt" and last["reason"] == why
    assert "not-the-token" not in json.dumps(last) and TOKEN not in json.dumps(last)


def test_halt_with_token_and_confirmation_latches_the_emergency_stop_then_resume_steps_back(
    monitor: Monitor, writer: SessionWriter, journal: Journal
) -> None:
    writer.start()
    client = TestClient(create_app(monitor))
    code, answer = _halt(client)
    assert code == 200 and answer["before"] == "RUNNING" and answer["after"] == "EMERGENCY_STOP"
    rec = read_state(journal)
    assert (rec.state.value, rec.who, rec.why) == (
        "EMERGENCY_STOP",
        "carol",
        "price feed looks wrong",
    )
    code, answer = _halt(client)
    assert code == 409 and "already EMERGENCY_STOP" in str(answer["error"])
    r = client.post(
        "/api/control/resume",
        json={"operator": "carol", "reason": "checked", "token": TOKEN, "confirm": True},
    )
    assert r.status_code == 200 and r.json()["after"] == "PAUSED"
    snap = client.get("/api/snapshot").json()
    assert snap["governor"]["state"] == "PAUSED"
    actions = [a["action"] for a in snap["operator_actions"]]
    assert actions[:3] == ["resume", "refused", "halt"]


def test_controls_are_off_without_the_vault(monitor: Monitor) -> None:
    monitor.writer = None
    client = TestClient(create_app(monitor))
    code, answer = _halt(client)
    assert code == 503 and "operator_token" in str(answer["error"])
    assert client.get("/api/snapshot").json()["controls"] is False


def test_event_stream_sends_a_snapshot_of_the_journal(
    monitor: Monitor, writer: SessionWriter
) -> None:
    writer.start()
    writer.bar({"NVDA": 100.0, "MSFT": 50.0}, trade={"NVDA": 3.0})
    client = TestClient(create_app(monitor, poll_seconds=0.05))
    with client.stream("GET", "/events") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        assert next(lines) == "event: snapshot"
        data = next(lines)
    snap = json.loads(data.removeprefix("data: "))
    assert snap["session"]["session_id"] == writer.sid
    assert snap["positions"]["NVDA"] == 3.0


def test_page_and_charting_library_are_served_from_the_installed_packages(
    monitor: Monitor,
) -> None:
    client = TestClient(create_app(monitor))
    page = client.get("/").text
    assert '<script src="/static/plotly.min.js">' in page and "http" not in page.split("<body>")[0]
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200
    assert js.content == plotly_js_path().read_bytes()
    assert "site-packages" in str(plotly_js_path()) or "dist-packages" in str(plotly_js_path())
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_remote_serving_needs_the_token_for_every_request(monitor: Monitor) -> None:
    client = TestClient(create_app(monitor, require_token=True))
    assert client.get("/api/snapshot").status_code == 401
    assert client.get("/metrics").status_code == 401
    ok = client.get("/api/snapshot", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    r = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/snapshot").status_code == 200  # the cookie now


def test_monitor_refuses_a_non_loopback_host_without_the_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stairways.cli.main import run

    monkeypatch.setattr(
        sys, "argv", ["stairways", "monitor", "serve", "--host", "0.0.0.0", "--read-only"]
    )
    with pytest.raises(SystemExit) as stop:
        run()
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert "not loopback" in err and "--allow-remote" in err
    assert "Traceback" not in err


def test_monitor_serve_defaults_are_loopback_and_port_8787() -> None:
    from stairways.cli import monitor as cli

    assert (cli.DEFAULT_HOST, cli.DEFAULT_PORT) == ("127.0.0.1", 8787)
    assert cli.is_loopback("127.0.0.1") and cli.is_loopback("::1")
    assert not cli.is_loopback("0.0.0.0") and not cli.is_loopback("10.0.0.5")


def test_research_view_lists_evaluations_and_their_gates(tmp_path: Path) -> None:
    folder = tmp_path / "run1" / "eval" / "validation" / "final"
    folder.mkdir(parents=True)
    (folder / "gates.json").write_text(
        json.dumps({"passed": False, "gates": [{"metric": "daily_sharpe", "passed": False}]})
    )
    (folder / "metrics.json").write_text(
        json.dumps({"agent": {"mean_daily_pnl": 12.5, "daily_sharpe": 0.4}})
    )
    rows = evaluations(tmp_path / "run1")
    assert rows == [
        {
            "run": "run1",
            "split": "validation",
            "checkpoint": "final",
            "verdict": "FAIL",
            "failed": "daily_sharpe",
            "mean_daily_pnl": 12.5,
            "daily_sharpe": 0.4,
            "max_drawdown": None,
            "win_rate": None,
        }
    ]
    blocks = research_blocks(tmp_path / "missing")
    assert "does not exist" in blocks[0].text  # type: ignore[union-attr]
