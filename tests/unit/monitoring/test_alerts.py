"""Alerts without Prometheus: delivered to a loopback webhook and a loopback SMTP server,
deduplicated, rate-limited and journaled."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from stairways.journal import Journal
from stairways.monitoring.alerts import AlertEvaluator, AlertSettings, sinks_from
from stairways.monitoring.rules import evaluate
from stairways.monitoring.service import Monitor
from tests.unit.monitoring.conftest import Tick
from tests.unit.monitoring.session_writer import T0, SessionWriter


class Hook:
    """A loopback webhook receiver recording every JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers["Content-Length"])
                outer.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield box, port
    finally:
        ctl.stop()


def _settings(hook: Hook, port: int, **kw: Any) -> AlertSettings:
    return AlertSettings(
        webhook_url=hook.url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="stairways@localhost",
        smtp_to=("ops@localhost",),
        **kw,
    )


def _wait(cond: Any, what: str) -> None:
    end = time.monotonic() + 10.0
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_drawdown_breach_is_sent_once_to_webhook_and_email_and_journaled(
    monitor: Monitor,
    writer: SessionWriter,
    journal: Journal,
    hook: Hook,
    mailbox: tuple[Mailbox, int],
    tick: Tick,
) -> None:
    box, port = mailbox
    settings = _settings(hook, port, repeat_seconds=600.0)
    monitor.evaluator = AlertEvaluator(sinks_from(settings), journal.append, tick, settings)
    writer.start()
    writer.bar({"NVDA": 100.0, "MSFT": 50.0}, trade={"NVDA": 50.0}, fee=0.0)
    monitor.refresh()
    assert hook.bodies == []  # no alert yet
    writer.bar({"NVDA": 82.0, "MSFT": 50.0})  # 50 * 18 = 900 lost of 10,000: 9% drawdown
    monitor.refresh()
    tick.t += 5.0
    monitor.refresh()  # still firing: deduplicated
    assert len(hook.bodies) == 1
    body = hook.bodies[0]
    assert body["text"].startswith("[WARNING] StairwaysDrawdownWarning")
    assert "drawdown 9.00% is past 80% of its limit 10.00%" in body["text"]
    assert body["attachments"][0]["color"] == "warning"
    _wait(lambda: len(box.messages) == 1, "the alert email")
    assert box.messages[0]["Subject"] == "[WARNING] StairwaysDrawdownWarning"
    assert box.messages[0]["To"] == "ops@localhost"
    records = [r.payload for r in journal.records(kinds=["alert"])]
    mine = [p for p in records if p.get("type") == "monitor_alert"]
    assert len(mine) == 1
    assert mine[0]["delivered"] == ["webhook", "smtp"] and mine[0]["status"] == "firing"
    # A repeat after the interval, then the resolution when the price recovers.
    tick.t += 600.0
    monitor.refresh()
    assert len(hook.bodies) == 2
    writer.bar({"NVDA": 100.0, "MSFT": 50.0})
    monitor.refresh()
    mine = [
        p
        for p in (r.payload for r in journal.records(kinds=["alert"]))
        if p.get("type") == "monitor_alert"
    ]
    assert [p["status"] for p in mine] == ["firing", "firing", "resolved"]
    assert monitor.snapshot()["alerts"]["active"] == []


def test_rate_limit_holds_back_messages_past_the_limit_and_journals_them(
    hook: Hook, journal: Journal
) -> None:
    tick = Tick()
    settings = AlertSettings(webhook_url=hook.url, max_per_minute=1)
    ev = AlertEvaluator(sinks_from(settings), journal.append, tick, settings)
    both = evaluate(
        {"governor_state": "EMERGENCY_STOP", "governor_why": "x", "errors_in_window": 5}
    )
    assert len(both) == 2
    ev.update(both, T0)
    assert len(hook.bodies) == 1
    kinds = [r.payload.get("delivery") for r in journal.records(kinds=["alert"])]
    assert kinds.count("rate_limited") == 1
    assert len(ev.firing()) == 2  # both are shown as firing


def test_failed_delivery_is_journaled_and_does_not_stop_the_monitor(journal: Journal) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens here once the socket is closed
    settings = AlertSettings(webhook_url=f"http://127.0.0.1:{dead}/x", timeout_seconds=2.0)
    ev = AlertEvaluator(sinks_from(settings), journal.append, Tick(), settings)
    ev.update(evaluate({"governor_state": "EMERGENCY_STOP", "governor_why": "x"}), T0)
    rec = [r.payload for r in journal.records(kinds=["alert"])][-1]
    assert rec["delivered"] == [] and "webhook" in rec["failed"]


def test_email_settings_missing_a_recipient_are_refused() -> None:
    with pytest.raises(ValueError, match="smtp_to"):
        sinks_from(AlertSettings(smtp_host="127.0.0.1", smtp_from="a@b"))


def test_alert_defaults_are_pinned() -> None:
    s = AlertSettings()
    assert (s.repeat_seconds, s.max_per_minute, s.timeout_seconds) == (3600.0, 10, 5.0)
    assert sinks_from(s) == []
