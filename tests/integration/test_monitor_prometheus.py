"""Prometheus scrapes the monitor while a session breaches a drawdown level, and the shipped
drawdown warning goes pending, then firing.

Debian's Prometheus server runs on loopback with a temporary configuration: 1-second scrape and
evaluation intervals, and the shipped alerts.yml with the warning's ``for: 1m`` shortened to
3 s (the expression is the shipped one). The session is written record by record as the live
loop writes it (tests/unit/monitoring/session_writer.py).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stairways.clock import ManualClock
from stairways.journal import JournalLocation, JournalReader
from stairways.monitoring.app import create_app
from stairways.monitoring.service import Monitor
from tests.integration.monitor_helpers import served
from tests.unit.monitoring.promtool import DEPLOY
from tests.unit.monitoring.session_writer import T0, SessionWriter, open_journal

ALERT = "StairwaysDrawdownWarning"
WAIT_SECONDS = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return dict(json.loads(resp.read()))


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    exe = shutil.which("prometheus")
    if exe is None:
        raise AssertionError(
            "the prometheus server is missing; install Debian's prometheus package "
            "(`apt-get install -y prometheus`, one of the Makefile's system packages)"
        )
    yield tmp_path, exe


def test_drawdown_breach_goes_pending_then_firing_in_prometheus(
    tmp_path: Path, prometheus: tuple[Path, str]
) -> None:
    _, exe = prometheus
    journal = open_journal(tmp_path / "journal.sqlite")
    reader = JournalReader.open(JournalLocation.sqlite(tmp_path / "journal.sqlite"))
    monitor = Monitor(reader, ManualClock(T0))
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        if rule["alert"] == ALERT:
            assert rule["for"] == "1m"
            rule["for"] = "3s"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    port = _free_port()
    proc = None
    try:
        with served(create_app(monitor)) as app_url:
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp_path / "alerts.yml")],
                "scrape_configs": [
                    {
                        "job_name": "stairways",
                        "static_configs": [{"targets": [app_url.removeprefix("http://")]}],
                    }
                ],
            }
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
            proc = subprocess.Popen(
                [
                    exe,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "prometheus.log").open("w"),
            )
            base = f"http://127.0.0.1:{port}"
            w = SessionWriter(journal)
            w.start()
            w.bar({"NVDA": 100.0, "MSFT": 50.0}, trade={"NVDA": 50.0}, fee=0.0)
            seen: list[str] = []
            deadline = time.monotonic() + WAIT_SECONDS
            breached = False
            while time.monotonic() < deadline and "firing" not in seen:
                time.sleep(0.5)
                try:
                    up = _get(f"{base}/api/v1/query?query=up")
                except OSError:
                    continue  # not listening yet
                result = up["data"]["result"]  # type: ignore[index]
                if not breached and result and result[0]["value"][1] == "1":
                    # Scraped at least once: now 50 shares lose 18 dollars each, a 9% drawdown
                    # (past 80% of the 10% halt level, under the level itself).
                    w.bar({"NVDA": 82.0, "MSFT": 50.0})
                    breached = True
                alerts = _get(f"{base}/api/v1/alerts")["data"]["alerts"]  # type: ignore[index]
                for a in alerts:
                    if a["labels"]["alertname"] == ALERT and (not seen or seen[-1] != a["state"]):
                        seen.append(a["state"])
                    assert a["labels"]["alertname"] != "StairwaysDrawdownCritical"
            log = (tmp_path / "prometheus.log").read_text()[-2000:]
            assert breached, f"Prometheus never scraped the monitor; its log ends:\n{log}"
            assert seen == ["pending", "firing"], f"states seen: {seen}; log ends:\n{log}"
            value = _get(f"{base}/api/v1/query?query=stairways_drawdown_ratio")
            assert abs(float(value["data"]["result"][0]["value"][1]) - 0.09) < 1e-9  # type: ignore[index]
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        reader.close()
        journal.close()
