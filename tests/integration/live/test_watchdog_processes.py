"""The dead-man's switch against a real loop process: frozen with SIGSTOP, or killed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stairways.brokers.settings import SimConfig
from stairways.brokers.sim.broker import SimBroker
from stairways.journal import JournalLocation, JournalReader
from stairways.live.model import LivePolicy
from stairways.risk.state import read_state
from stairways.security.secret import Secret
from stairways.security.vault import Vault
from tests.cli_helpers import stairways
from tests.integration.live.conftest import PARITY_RISK_DIR, Journals, LiveRun, run_rehearsal
from tests.unit.security.helpers import CHEAP

pytestmark = pytest.mark.slow

PASSPHRASE = "watchdog test passphrase 4Rt8"
STAIRWAYS = str(Path(sys.executable).with_name("stairways"))


def _env(tmp_path: Path) -> dict[str, str]:
    vault = tmp_path / "vault"
    v = Vault.create(vault, Secret(PASSPHRASE), kdf=CHEAP)
    v.set("journal_mac_key", "watchdog-test-mac-key-0123456789abcdef")
    return {"STAIRWAYS_VAULT": str(vault), "STAIRWAYS_VAULT_PASSPHRASE": PASSPHRASE}


def _start_loop(
    live_run: LiveRun, tmp_path: Path, env: dict[str, str], pace: float | None = 0.3
) -> subprocess.Popen[bytes]:
    cmd = [
        STAIRWAYS, "live", "run", "--model", str(live_run.run_dir), "--rehearse", "2024-01-03",
        "--split", "test", "--risk-dir", str(PARITY_RISK_DIR), "--journal",
        str(tmp_path / "j.sqlite"), "--state-dir", str(tmp_path / "sim"),
        "--heartbeat", str(tmp_path / "hb.json"), "--store", str(live_run.store),
    ]  # fmt: skip
    if pace is not None:
        cmd += ["--pace", str(pace)]
    return subprocess.Popen(
        cmd, env={**os.environ, **env}, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _between_bars(path: Path, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    """A heartbeat whose exchange time has not changed for 0.6 s (the loop is waiting)."""
    for _ in range(200):
        first = json.loads(path.read_text())
        time.sleep(0.6)
        second = json.loads(path.read_text())
        assert proc.poll() is None
        if first["clock"] == second["clock"] and second["beat"] > first["beat"]:
            return second
    raise AssertionError("the loop never waited between bars")


def _beating(path: Path, proc: subprocess.Popen[bytes], after: float) -> bool:
    """Wait for a heartbeat newer than ``after``; False when the process ended first."""
    deadline = time.monotonic() + 240.0
    while time.monotonic() < deadline and proc.poll() is None:
        if path.is_file() and path.stat().st_mtime > after:
            return True
        time.sleep(0.05)
    return False


def _wait_for_beats(path: Path, proc: subprocess.Popen[bytes], beats: int) -> dict[str, object]:
    deadline = time.monotonic() + 240.0
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the loop process ended before it was frozen"
        if path.is_file():
            try:
                doc = json.loads(path.read_text())
            except json.JSONDecodeError:
                doc = {}
            if doc.get("in_session") and int(doc.get("beat", 0)) >= beats:
                return doc
        time.sleep(0.1)
    raise AssertionError("no heartbeat from the loop within 240 s")


@pytest.mark.parametrize("how", ["SIGSTOP", "SIGKILL"])
def test_watchdog_halts_and_flattens_a_frozen_or_killed_loop(
    how: str,
    live_run: LiveRun,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _env(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("stairways.security.passphrase.terminal_prompt", lambda: None)
    proc = _start_loop(live_run, tmp_path, env, pace=2.0)
    try:
        doc = _wait_for_beats(tmp_path / "hb.json", proc, beats=8)
        # Freeze it between bars (the clock it shows has not moved for a while): a loop frozen
        # inside a journal transaction holds the journal's lock, and the watchdog would then
        # flatten first and latch the halt only once the process is gone.
        doc = _between_bars(tmp_path / "hb.json", proc)
        os.kill(proc.pid, getattr(signal, how))
        code = stairways(
            monkeypatch, "live", "watchdog", "--heartbeat", str(tmp_path / "hb.json"),
            "--timeout", "2", "--interval", "0.2", "--max-actions", "1", "--max-seconds", "90",
        )  # fmt: skip
        assert code == 0
    finally:
        proc.kill()
        proc.wait(timeout=60)
    record = json.loads((tmp_path / "hb.json.watchdog.json").read_text())
    assert record["session_id"] == doc["session_id"] and record["halted"] is True
    location = JournalLocation.sqlite(tmp_path / "j.sqlite")
    with JournalReader.open(location) as reader:
        state = read_state(reader)
        alerts = [r.payload for r in reader.records(kinds=["alert"])]
    assert state.state.value == "EMERGENCY_STOP" and state.who == "watchdog"
    assert any(a.get("type") == "watchdog" for a in alerts)
    state_file = next((tmp_path / "sim").glob(f"*-{doc['session_id']}.sqlite"))
    sim = SimBroker(
        SimConfig(state_path=state_file, account=f"SIM-{doc['session_id']}"),
        ("NVDA", "MSFT"),
    )
    sim.connect()
    try:
        assert sim.positions() == [] and sim.open_orders() == []
    finally:
        sim.close()


def test_sigkill_at_random_points_loses_and_duplicates_no_order(
    live_run: LiveRun,
    live_policy: LivePolicy,
    journals: Journals,
    tmp_path: Path,
) -> None:
    """Kill the loop process at random moments (bounded: 4 kills, 15 minutes), restart it each
    time, and compare the broker's orders and fills with an uninterrupted rehearsal."""
    reference = run_rehearsal(live_policy, journals.location(), tmp_path / "ref")
    env = _env(tmp_path)
    rng = random.Random(13)
    kills = 0
    deadline = time.monotonic() + 900.0
    while time.monotonic() < deadline:
        proc = _start_loop(live_run, tmp_path, env, pace=None)
        if kills < 4 and _beating(tmp_path / "hb.json", proc, after=time.time()):
            time.sleep(rng.uniform(0.0, 2.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                kills += 1
                continue
        assert proc.wait(timeout=600) == 0
        break
    else:
        raise AssertionError("the killed session did not finish within 15 minutes")
    assert kills >= 1
    (state_file,) = (tmp_path / "sim").glob("*-1.sqlite")
    sim = SimBroker(SimConfig(state_path=state_file, account=f"SIM-{state_file.stem[9:]}"),
                    ("NVDA", "MSFT"))  # fmt: skip
    sim.connect()
    try:
        orders = [o.client_order_id for o in sim.all_orders()]
        fills = [(e.client_order_id, e.quantity, e.price) for e in sim.executions()]
    finally:
        sim.close()
    ref_orders = [o.client_order_id for o in reference.orders]
    lost = len(set(ref_orders) - set(orders))
    duplicated = len(orders) - len(set(orders)) + len(set(orders) - set(ref_orders))
    assert (lost, duplicated) == (0, 0), (kills, lost, duplicated)
    assert fills == [(e.client_order_id, e.quantity, e.price) for e in reference.executions]
