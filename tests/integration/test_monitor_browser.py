"""The dashboard as an operator uses it, in headless Chromium (Debian's, through Playwright).

The page must show the journal's figures, show a new fill without a reload (server-sent
events), halt trading through the emergency stop with its confirmation (the governor's state in
the journal becomes EMERGENCY_STOP), and refuse a control without the operator token (the
refusal is journaled). Screenshots are kept under the test's temporary folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stairways.clock import ManualClock
from stairways.journal import Journal, JournalLocation, JournalReader
from stairways.live.ladder_config import load_ladder_config
from stairways.monitoring.app import create_app
from stairways.monitoring.service import Monitor
from stairways.risk.state import read_state
from stairways.security.secret import Secret
from tests.browser import chromium_page
from tests.integration.monitor_helpers import served
from tests.unit.monitoring.session_writer import T0, SessionWriter, open_journal

TOKEN = "browser-test-operator-token-0123456789"
WAIT_MS = 15_000


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = open_journal(tmp_path / "journal.sqlite")
    try:
        yield j
    finally:
        j.close()


@pytest.fixture
def dashboard(journal: Journal) -> Iterator[str]:
    reader = JournalReader.open(JournalLocation.sqlite(journal.location.path))  # type: ignore[arg-type]
    monitor = Monitor(
        reader,
        ManualClock(T0),
        writer=journal,
        operator_token=Secret(TOKEN),
        ladder_config=load_ladder_config(None),
    )
    try:
        with served(create_app(monitor, poll_seconds=0.2)) as url:
            yield url
    finally:
        reader.close()


def _text(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text()).strip()


def _live(page: Any, url: str) -> None:
    page.goto(url + "/", wait_until="load")
    page.wait_for_function(
        "document.getElementById('stream').textContent === 'live'", timeout=WAIT_MS
    )


def test_empty_journal_says_no_trading_yet(dashboard: str, tmp_path: Path) -> None:
    with chromium_page() as page:
        _live(page, dashboard)
        page.screenshot(path=str(tmp_path / "empty.png"), full_page=True)
        assert page.locator("#empty").is_visible()
        assert "No trading yet" in _text(page, "#empty")
        assert _text(page, "#governor-state") == "PAUSED"
        assert _text(page, "#pnl-today-net") == "no trading yet"


def test_page_shows_the_journals_figures_and_a_new_fill_without_reload(
    dashboard: str, journal: Journal, tmp_path: Path
) -> None:
    w = SessionWriter(journal)
    w.start()
    w.bar({"NVDA": 100.0, "MSFT": 50.0}, trade={"NVDA": 40.0}, fee=1.5, latency_ms=0.5)
    w.bar({"NVDA": 95.0, "MSFT": 50.0}, latency_ms=1.5)
    with chromium_page() as page:
        _live(page, dashboard)
        # Net: -4000 - 1.5 + 40 * 95 = -201.50; drawdown 201.5 from the peak (the capital).
        assert _text(page, "#pnl-today-net") == "-$201.50"
        assert _text(page, "#pnl-today-fees") == "-$1.50"
        assert _text(page, "#pnl-today-gross") == "-$200.00"
        assert _text(page, "#governor-state") == "RUNNING"
        assert _text(page, "#drawdown") == f"{100 * 201.5 / 10_000.0:.2f}%"
        assert _text(page, "#drawdown-limit") == "10.00%"
        assert _text(page, "#latency-p50") == "1 ms"
        assert "NVDA" in _text(page, "#positions") and "40" in _text(page, "#positions")
        assert page.locator("#fills tbody tr").count() == 1
        assert page.locator("#chart .main-svg").count() > 0  # plotly drew the chart
        page.screenshot(path=str(tmp_path / "loaded.png"), full_page=True)
        page.evaluate("window.__sameDocument = true")
        w.bar({"NVDA": 96.0, "MSFT": 51.0}, trade={"MSFT": -20.0}, fee=0.75)
        page.wait_for_function(
            "document.querySelectorAll('#fills tbody tr').length === 2", timeout=WAIT_MS
        )
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        newest = _text(page, "#fills tbody tr:first-child")
        assert "MSFT" in newest and "-20" in newest and "$51.00" in newest
        page.screenshot(path=str(tmp_path / "new_fill.png"), full_page=True)


def test_emergency_stop_with_confirmation_halts_and_a_control_without_token_is_refused(
    dashboard: str, journal: Journal, tmp_path: Path
) -> None:
    w = SessionWriter(journal)
    w.start()
    w.bar({"NVDA": 100.0, "MSFT": 50.0})
    with chromium_page() as page:
        _live(page, dashboard)
        # Without the token: refused, journaled, nothing changes.
        page.click("#resume-button")
        page.fill("#control-operator", "dave")
        page.fill("#control-reason", "try without a token")
        page.click("#control-confirm")
        page.wait_for_function(
            "document.getElementById('control-result').textContent.startsWith('Refused')",
            timeout=WAIT_MS,
        )
        assert _text(page, "#control-result") == "Refused: no operator token given"
        refused = [r.payload for r in journal.records(kinds=["operator_action"])][-1]
        assert refused["action"] == "refused" and refused["operator"] == "dave"
        assert read_state(journal).state.value == "RUNNING"
        # Cancelling the confirmation sends nothing.
        before = journal.count()
        page.click("#halt-button")
        assert page.locator("#control-dialog").is_visible()
        page.click("#control-cancel")
        assert journal.count() == before
        # The emergency stop, confirmed with name, reason and token.
        page.click("#halt-button")
        assert "Confirm the emergency stop" in _text(page, "#control-title")
        page.fill("#control-operator", "dave")
        page.fill("#control-reason", "feed looks frozen")
        page.fill("#control-token", TOKEN)
        page.screenshot(path=str(tmp_path / "confirm.png"))
        page.click("#control-confirm")
        page.wait_for_function(
            "document.getElementById('governor-state').textContent === 'EMERGENCY_STOP'",
            timeout=WAIT_MS,
        )
        assert _text(page, "#control-result") == "halt done: RUNNING -> EMERGENCY_STOP"
        page.screenshot(path=str(tmp_path / "halted.png"), full_page=True)
    rec = read_state(journal)
    assert (rec.state.value, rec.who, rec.why) == ("EMERGENCY_STOP", "dave", "feed looks frozen")
