"""Stops and restarts of the live loop on a replayed 2024 session: crashes at every write-ahead
point, the operator's halt, SIGTERM, a broker disconnect and a slow broker."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from stairways.brokers.sim.faults import Disconnect, FaultPlan
from stairways.clock import ManualClock
from stairways.journal import Journal, JournalLocation, JournalReader
from stairways.live.loop import LiveLoop
from stairways.live.model import LivePolicy
from stairways.live.session import RehearsalResult
from stairways.risk.governor import memory_key
from stairways.risk.operator import halt
from stairways.risk.store import SqlStateStore
from tests.integration.live.conftest import KEY, Journals, run_rehearsal

pytestmark = pytest.mark.slow

POINTS = ("after_broker_bars", "after_decision_record", "after_verdict", "after_submitting")
POINTS_PLACED = ("after_place",)


class Crash(BaseException):
    """A process death at a named point (BaseException: nothing in the loop catches it)."""


def crash_at(point: str, nth: int) -> Callable[[str], None]:
    seen = {"n": 0}

    def hook(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Crash(f"{point} #{nth}")

    return hook


def _orders(result: RehearsalResult) -> list[str]:
    return [o.client_order_id for o in result.orders]


def _fills(result: RehearsalResult) -> list[tuple[str, str, float, float]]:
    return [(e.client_order_id, e.symbol, e.quantity, e.price) for e in result.executions]


def test_crash_at_every_write_ahead_point_loses_and_duplicates_no_order(
    live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    ref_location = journals.location()
    reference = run_rehearsal(live_policy, ref_location, tmp_path / "ref")
    assert _memory_fills(ref_location, reference) == _exec_ids(reference)
    ref_orders = _orders(reference)
    assert len(ref_orders) >= 4
    kills = lost = duplicated = 0
    for point in (*POINTS, *POINTS_PLACED):
        for nth in (2,):
            location = journals.location()
            state = tmp_path / f"{point}-{nth}"
            with pytest.raises(Crash):
                run_rehearsal(live_policy, location, state, crash_hook=crash_at(point, nth))
            kills += 1
            result = run_rehearsal(live_policy, location, state)
            assert result.resumed
            orders = _orders(result)
            lost += len(set(ref_orders) - set(orders))
            duplicated += len(orders) - len(set(orders)) + len(set(orders) - set(ref_orders))
            assert _fills(result) == _fills(reference), (point, nth)
            assert result.summary["figures"]["pnl"] == reference.summary["figures"]["pnl"]
            with JournalReader.open(location) as reader:
                sent = [
                    r.payload["client_order_id"]
                    for r in reader.records(kinds=["order"])
                    if r.payload.get("type") in ("sent", "recovered")
                ]
            # every order the broker holds is journaled as sent exactly once
            decided = [o for o in orders if not o.startswith("sw-flatten")]
            assert sorted(sent) == sorted(decided), (point, nth)
            # the governor's memory accounted every execution once, whatever the crash missed
            assert _memory_fills(location, result) == _exec_ids(result), (point, nth)
    assert kills == 5
    assert (lost, duplicated) == (0, 0)


def _exec_ids(result: RehearsalResult) -> list[str]:
    return sorted(e.exec_id for e in result.executions)


def _memory_fills(location: JournalLocation, result: RehearsalResult) -> list[str]:
    states = SqlStateStore(location)
    try:
        memory = states.load_state(f"{memory_key('paper')}.{result.session_id}")
    finally:
        states.close()
    assert memory is not None
    return sorted(memory["fills"])


def _state_events(location: JournalLocation) -> list[dict[str, Any]]:
    with JournalReader.open(location) as reader:
        return [dict(r.payload) for r in reader.records(kinds=["governor_state"])]


def test_operator_halt_from_another_handle_stops_cancels_flattens_and_refuses(
    live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    location = journals.location()
    other = Journal.open(location, KEY)  # the operator's terminal: its own connection
    halted_at: list[datetime] = []

    def beat(at: datetime, session_id: str) -> None:
        if not halted_at and at.hour == 10 and at.minute == 15:
            halt(other, "alice", "test halt", at)
            halted_at.append(at)

    result = run_rehearsal(live_policy, location, tmp_path / "sim", heartbeat=beat)
    other.close()
    assert halted_at
    assert result.summary["emergency_stop"] is True
    assert result.summary["positions"] == {"NVDA": 0.0, "MSFT": 0.0}
    with JournalReader.open(location) as reader:
        records = list(reader.records())
    stop = next(r for r in records if r.kind == "order" and r.payload.get("type") == "close_out")
    # carried out within the bar the halt arrived in (exchange time of the rehearsal)
    assert stop.ts == halted_at[0]
    after = [r for r in records if r.seq > stop.seq]
    assert not [r for r in after if r.kind == "order" and r.payload.get("type") == "submitting"]
    verdicts = [r.payload for r in after if r.kind == "verdict" and r.payload["type"] == "intent"]
    assert all(v["decision"] == "reject" for v in verdicts)
    assert all(v["reasons"][0]["check"] == "trading_state" for v in verdicts)


def test_sigterm_latches_the_same_stop_and_ends_the_session(
    live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    location = journals.location()
    sent: list[bool] = []
    loops: list[LiveLoop] = []

    def beat(at: datetime, session_id: str) -> None:
        if not sent and at.hour == 10 and at.minute == 30:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    try:
        result = run_rehearsal(
            live_policy,
            location,
            tmp_path / "sim",
            heartbeat=beat,
            on_loop=lambda loop: (loop.install_signal_handlers(), loops.append(loop)),
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sent and result.summary["emergency_stop"] is True
    assert result.summary["positions"] == {"NVDA": 0.0, "MSFT": 0.0}
    states = _state_events(location)
    assert states[-1]["state"] == "EMERGENCY_STOP"
    assert states[-1]["who"] == "governor:live_loop" and "SIGTERM" in states[-1]["why"]
    # the session ended at the stop, long before the close
    assert result.steps[-1].bar < 120


def test_broker_disconnect_pauses_trading_at_once(
    live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    location = journals.location()
    faults = FaultPlan(disconnects=(Disconnect(start=40, bars=5),))
    run_rehearsal(live_policy, location, tmp_path / "sim", faults=faults)
    with JournalReader.open(location) as reader:
        records = list(reader.records())
    down = next(r for r in records if r.payload.get("type") == "broker_disconnect")
    paused = next(
        r
        for r in records
        if r.kind == "governor_state" and r.payload["who"] == "governor:broker_disconnect"
    )
    assert paused.payload["state"] == "PAUSED"
    # the safe state is reached within the bar the disconnect was noticed in (25 s allowed)
    assert paused.ts == down.ts
    after = [r for r in records if r.seq > paused.seq]
    assert not [r for r in after if r.kind == "order" and r.payload.get("type") == "submitting"]


class _SlowBroker:
    """Forwards to the simulated broker; from bar ``slow_from`` every call takes 150 ms."""

    def __init__(self, inner: Any, clock: ManualClock, slow_from: int) -> None:
        self._inner = inner
        self._clock = clock
        self._slow_from = slow_from
        self.bars = 0

    def on_bars(self, bars: Any) -> Any:
        self.bars += 1
        self._lag()
        return self._inner.on_bars(bars)

    def _lag(self) -> None:
        if self.bars > self._slow_from:
            self._clock.advance(0.15)

    def events(self, timeout: float = 0.0) -> Any:
        self._lag()
        return self._inner.events(timeout)

    def place(self, req: Any) -> Any:
        self._lag()
        return self._inner.place(req)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_broker_latency_over_120_ms_for_5_s_flattens_and_latches(
    live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    location = journals.location()
    result = run_rehearsal(
        live_policy,
        location,
        tmp_path / "sim",
        wrap_broker=lambda broker, clock: _SlowBroker(broker, clock, slow_from=50),
    )
    states = _state_events(location)
    stop = [s for s in states if s["state"] == "EMERGENCY_STOP"]
    assert stop and stop[0]["who"] == "governor:live_loop"
    assert "broker latency over 120 ms for 5 s" in stop[0]["why"]
    assert result.summary["emergency_stop"] is True
    assert result.summary["positions"] == {"NVDA": 0.0, "MSFT": 0.0}


def test_resuming_into_a_memory_saved_before_fills_were_listed_is_refused_first(
    live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    import json
    import sqlite3

    from stairways.risk.state import StateStoreError

    location = journals.location()
    state = tmp_path / "sim"
    # a crash after several orders, so the broker holds executions of the session
    with pytest.raises(Crash):
        run_rehearsal(live_policy, location, state, crash_hook=crash_at("after_place", 4))
    path = location.path
    assert path is not None
    # the memory as the version before fills were listed by execution id saved it
    with sqlite3.connect(path) as conn:
        (key, document) = conn.execute("SELECT key, document FROM risk_memory").fetchone()
        doc = json.loads(document)
        assert doc["fills"]
        del doc["fills"], doc["fills_complete"]
        conn.execute("UPDATE risk_memory SET document = ? WHERE key = ?", (json.dumps(doc), key))
    with JournalReader.open(location) as reader:
        fills_before = sum(1 for _ in reader.records(kinds=["fill"]))
    with pytest.raises(StateStoreError) as err:
        run_rehearsal(live_policy, location, state)
    session_id = key.rsplit(".", 1)[-1]
    assert f"session {session_id} cannot resume" in str(err.value)
    assert "Finish this session with the Stairways version that started it" in str(err.value)
    # refused before the catch-up journaled anything of its own or counted a fill
    with JournalReader.open(location) as reader:
        assert sum(1 for _ in reader.records(kinds=["fill"])) == fills_before
    states = SqlStateStore(location)
    try:
        assert states.load_state(key) == doc
    finally:
        states.close()
