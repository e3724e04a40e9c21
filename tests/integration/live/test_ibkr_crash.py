"""Crash recovery at IBKR: the ``stairways live run --broker ibkr`` process is killed with
SIGKILL at random moments and restarted, against the fake gateway (which keeps its orders,
executions and positions across the client's death, as IB does). Nothing may be lost or sent
twice: every order the loop wrote ahead reached the gateway exactly once or is journaled as
abandoned or refused, the gateway's fills are the journal's fills, and the session ends flat.

Bounded: a fixed number of kills, every process and wait under a wall-clock limit (30 minutes:
the CLI starts in about 10 s on an idle machine, in a minute or more on a loaded one)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from stairways.brokers.ibkr.fake_gateway import FakeIBGateway
from stairways.journal import JournalLocation, JournalReader, JournalRecord, MacKey
from stairways.journal.store import JournalNotFoundError
from stairways.journal.verify import verify_journal
from stairways.live.model import LivePolicy
from stairways.live.observe import session_minutes
from stairways.security.secret import Secret
from stairways.security.vault import Vault
from tests.integration.live.conftest import DAY, PARITY_RISK_DIR, LiveRun
from tests.integration.live.ibkr_helpers import replay_day, replaying_gateway
from tests.unit.security.helpers import CHEAP

PASSPHRASE = "ibkr crash test passphrase 7Qz2"
MAC_KEY = "ibkr-crash-test-mac-key-0123456789abcdef"
STAIRWAYS = str(Path(sys.executable).with_name("stairways"))


def _env(tmp_path: Path) -> dict[str, str]:
    vault = tmp_path / "vault"
    v = Vault.create(vault, Secret(PASSPHRASE), kdf=CHEAP)
    v.set("journal_mac_key", MAC_KEY)
    return {"STAIRWAYS_VAULT": str(vault), "STAIRWAYS_VAULT_PASSPHRASE": PASSPHRASE}


class JournalProbe:
    """Lockstep through the journal another process writes: the gateway serves the next
    minute once the loop's decision on the last one is journaled (or it times out)."""

    def __init__(self, path: Path) -> None:
        self.location = JournalLocation.sqlite(path)
        self.path = path
        self.open_at, _ = session_minutes(DAY)
        self._reader: JournalReader | None = None

    def last_bar(self) -> int:
        if self._reader is None:
            if not self.path.exists():
                return -1
            try:
                self._reader = JournalReader.open(self.location)
            except JournalNotFoundError:  # the loop has not created its tables yet
                return -1
        last = self._reader.tail(1, kinds=["decision"])
        return int(last[0].payload["bar"]) if last else -1

    def ready(self, start: int) -> bool:
        k = int((datetime.fromtimestamp(start, UTC) - self.open_at).total_seconds() // 60)
        return self.last_bar() >= k

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def _start(
    run: LiveRun, tmp_path: Path, env: dict[str, str], broker_yaml: Path
) -> subprocess.Popen[bytes]:
    cmd = [
        STAIRWAYS, "live", "run", "--model", str(run.run_dir), "--broker", "ibkr",
        "--rehearse", DAY.isoformat(), "--split", "test", "--risk-dir", str(PARITY_RISK_DIR),
        "--journal", str(tmp_path / "j.sqlite"), "--broker-config", str(broker_yaml),
        "--store", str(run.store), "--operator", "tester", "--max-seconds", "300",
    ]  # fmt: skip
    with (tmp_path / "loop.log").open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            cmd, env={**os.environ, **env}, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )


def order_accounting(gateway_refs: list[str], records: list[JournalRecord]) -> dict[str, int]:
    """Lost and duplicate orders of a session, from the gateway's orders and the journal.

    - duplicate: an order reference the gateway holds more than once, or an order the gateway
      holds that the journal says was abandoned (it must never have gone out);
    - lost: an order written ahead (``submitting``) that the gateway does not hold and the
      journal does not record as abandoned or refused.
    """
    at_gateway = Counter(gateway_refs)
    last_type: dict[str, str] = {}
    submitted: set[str] = set()
    for r in records:
        if r.kind != "order" or "client_order_id" not in r.payload:
            continue
        cid = str(r.payload["client_order_id"])
        kind = str(r.payload.get("type"))
        last_type[cid] = kind
        if kind == "submitting":
            submitted.add(cid)
    duplicate = sum(n - 1 for n in at_gateway.values() if n > 1)
    duplicate += sum(1 for cid in at_gateway if last_type.get(cid) == "abandoned")
    lost = sum(
        1
        for cid in submitted
        if cid not in at_gateway and last_type.get(cid) not in ("abandoned", "refused")
    )
    return {
        "orders": len(at_gateway),
        "submitted": len(submitted),
        "lost": lost,
        "duplicate": duplicate,
        "abandoned": sum(1 for t in last_type.values() if t == "abandoned"),
    }


def _kill_loop(
    live_run: LiveRun,
    live_policy: LivePolicy,
    tmp_path: Path,
    *,
    kills: int,
    start_at: int,
    seed: int,
) -> tuple[dict[str, Any], FakeIBGateway, list[JournalRecord]]:
    env = _env(tmp_path)
    probe = JournalProbe(tmp_path / "j.sqlite")
    rng = random.Random(seed)
    done_kills = 0
    starts = 0
    minutes = replay_day(live_run, live_policy)
    deadline = time.monotonic() + 1800.0
    try:
        with replaying_gateway(
            minutes, start_at=start_at, away_minutes=kills, ready=probe.ready, ready_timeout=3.0
        ) as gw:
            broker_yaml = tmp_path / "broker.yaml"
            broker_yaml.write_text(
                yaml.safe_dump(
                    {
                        "kind": "ibkr",
                        "ibkr": {
                            "port": gw.port,
                            "connect_timeout_seconds": 5.0,
                            "reconnect_initial_seconds": 0.2,
                        },
                    }
                )
            )
            while True:
                assert time.monotonic() < deadline, "the killed session did not finish in time"
                proc = _start(live_run, tmp_path, env, broker_yaml)
                starts += 1
                if done_kills < kills:
                    seen = probe.last_bar()
                    # wait for progress (a decision this process made), then a random moment
                    while probe.last_bar() <= seen and proc.poll() is None:
                        assert time.monotonic() < deadline
                        time.sleep(0.05)
                    time.sleep(rng.uniform(0.0, 1.0))
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                        proc.wait(timeout=60)
                        done_kills += 1
                        continue
                code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                assert code == 0, (tmp_path / "loop.log").read_text()[-3000:]
                break
            assert gw.replay_error == ""
            refs = gw.run(lambda: [o.order_ref for o in gw.orders.values()])
            fills = gw.run(
                lambda: {
                    (e.exec_id, e.shares if e.order.action == "BUY" else -e.shares, e.price)
                    for e in gw.executions
                }
            )
            positions = gw.run(lambda: {s: q for s, (q, _) in gw.positions.items() if q})
    finally:
        probe.close()
    with JournalReader.open(probe.location) as reader:
        records = list(reader.records())
        verified = verify_journal(reader, MacKey(MAC_KEY.encode())).ok
    counts = order_accounting(refs, records)
    journal_fills = {
        (r.payload["exec_id"], r.payload["quantity"], r.payload["price"])
        for r in records
        if r.kind == "fill"
    }
    counts.update(
        kills=done_kills,
        starts=starts,
        fills=len(fills),
        fills_match=int(journal_fills == fills),
        fill_records=sum(1 for r in records if r.kind == "fill"),
        flat=int(positions == {}),
        verified=int(verified),
        restarts=sum(1 for r in records if r.payload.get("type") == "live_session"),
    )
    return counts, gw, records


def _check(counts: dict[str, Any], least_kills: int) -> None:
    # a session may end (the close, or the run's drawdown cap) before every planned kill
    assert counts["kills"] >= least_kills
    assert counts["starts"] == counts["kills"] + 1
    assert counts["restarts"] == 1, "a restart must resume the session, not start another"
    assert (counts["lost"], counts["duplicate"]) == (0, 0), counts
    assert counts["orders"] >= 2, counts
    assert counts["fills_match"] == 1 and counts["fill_records"] == counts["fills"], counts
    assert counts["flat"] == 1 and counts["verified"] == 1, counts


@pytest.mark.slow
def test_sigkill_at_random_points_against_the_gateway_loses_and_duplicates_no_order(
    live_run: LiveRun, live_policy: LivePolicy, tmp_path: Path
) -> None:
    counts, _, _ = _kill_loop(live_run, live_policy, tmp_path, kills=2, start_at=300, seed=13)
    _check(counts, 2)


@pytest.mark.slow
def test_many_sigkills_over_a_longer_session_lose_and_duplicate_no_order(
    live_run: LiveRun, live_policy: LivePolicy, tmp_path: Path
) -> None:
    counts, _, _ = _kill_loop(live_run, live_policy, tmp_path, kills=6, start_at=150, seed=29)
    _check(counts, 3)


def test_order_accounting_counts_lost_and_duplicate_orders() -> None:
    def rec(seq: int, cid: str, kind: str) -> JournalRecord:
        return JournalRecord(
            seq=seq,
            ts=datetime(2024, 1, 3, 15, 0, tzinfo=UTC),
            kind="order",
            payload={"client_order_id": cid, "type": kind},
            payload_json="",
            prev_mac="",
            mac="",
        )

    records = [
        rec(1, "a", "submitting"), rec(2, "a", "sent"),
        rec(3, "b", "submitting"),  # cut off, never reached the gateway: lost
        rec(4, "c", "submitting"), rec(5, "c", "abandoned"),  # abandoned: not lost
        rec(6, "d", "submitting"), rec(7, "d", "abandoned"),  # abandoned but at the gateway
        rec(8, "e", "submitting"), rec(9, "e", "refused"),
    ]  # fmt: skip
    counts = order_accounting(["a", "a", "d"], records)
    assert (counts["lost"], counts["duplicate"]) == (1, 2)
    assert order_accounting(["a", "d"], records[:2])["duplicate"] == 0


@pytest.mark.slow
def test_live_run_at_an_unreachable_gateway_exits_1_naming_host_and_port(
    live_run: LiveRun,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import socket

    from tests.cli_helpers import stairways

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "broker.yaml").write_text(yaml.safe_dump({"ibkr": {"port": port}}))
    for name, value in _env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    code = stairways(
        monkeypatch, "live", "run", "--model", str(live_run.run_dir), "--broker", "ibkr",
        "--rehearse", DAY.isoformat(), "--split", "test", "--broker-config",
        str(tmp_path / "broker.yaml"), "--store", str(live_run.store), "--journal",
        str(tmp_path / "j.sqlite"),
    )  # fmt: skip
    err = capfd.readouterr().err
    assert code == 1
    assert f"127.0.0.1:{port}" in err and "start IB Gateway or TWS" in err
    assert "Traceback" not in err
    # nothing was journaled and no simulated broker took over
    assert not (tmp_path / "live").exists()
    with JournalReader.open(JournalLocation.sqlite(tmp_path / "j.sqlite")) as reader:
        assert not [r for r in reader.records() if r.payload.get("type") == "live_session"]
