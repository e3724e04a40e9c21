"""Parts of the live loop that need no trained model: the latency watch, the mode checks, the
heartbeat and the watchdog, session ids, the restart cursor and lineage."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.brokers.base import PlaceResult
from stairways.brokers.settings import load_broker_config
from stairways.clock import ManualClock
from stairways.errors import InputError
from stairways.live.lineage import trace_order
from stairways.live.loop import LatencyWatch
from stairways.live.modes import ModeRefusedError, check_mode, live_conditions
from stairways.live.observe import observation_hash
from stairways.live.records import END_TYPE, SESSION_TYPE
from stairways.live.recovery import JournalCursor, read_session
from stairways.live.session import session_id_for
from stairways.live.watchdog import Heartbeat, read_heartbeat, watchdog_check
from stairways.risk.ports import InMemoryEventLog
from stairways.risk.state import read_state

NY = ZoneInfo("America/New_York")
T0 = datetime(2024, 1, 3, 10, 0, tzinfo=NY)


# latency watch ---------------------------------------------------------------------------


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.floats(0.01, 2.0), st.floats(0.0, 400.0)), min_size=1, max_size=60))
def test_latency_watch_trips_only_after_a_whole_window_of_slow_samples(
    samples: list[tuple[float, float]],
) -> None:
    watch = LatencyWatch(120.0, 5.0)
    t = 0.0
    slow_since: float | None = None
    for gap, ms in samples:
        t += gap
        tripped = watch.sample(t, ms)
        if ms <= 120.0:
            slow_since = None
        elif slow_since is None:
            slow_since = t
        assert tripped == (slow_since is not None and t - slow_since >= 5.0)


def test_latency_watch_defaults_are_the_issue_figures() -> None:
    from stairways.live.loop import LoopSettings

    s = LoopSettings(stage="paper", rehearsal=True, close_at_last_close=True)
    assert (s.latency_flatten_ms, s.latency_flatten_seconds) == (120.0, 5.0)


# mode checks -----------------------------------------------------------------------------


def _broker(mode: str, port: int | None = None) -> Any:
    overrides: dict[str, Any] = {"kind": "ibkr", "mode": mode}
    if port is not None:
        overrides["ibkr.port"] = port
    return load_broker_config(None, overrides)


def test_live_stage_refuses_each_missing_condition_by_name() -> None:
    checks = live_conditions(
        stage="micro_10",
        broker=_broker("paper"),
        live_flag=False,
        vault_names=lambda: ["journal_mac_key"],
        ladder=lambda: (False, "model m is in stage paper"),
    )
    with pytest.raises(ModeRefusedError) as err:
        check_mode(checks, "micro_10")
    text = str(err.value)
    for name in ("live port", "--live flag", "vault credentials", "ladder stage"):
        assert f"  {name}:" in text
    assert "ib_gateway_user" in text and "4 condition(s) failed" in text


def test_live_stage_passes_when_every_condition_holds() -> None:
    checks = live_conditions(
        stage="scale_50",
        broker=_broker("live", 4001),
        live_flag=True,
        vault_names=lambda: ["ib_gateway_user", "ib_gateway_password"],
        ladder=lambda: (True, "model m is in stage scale_50"),
    )
    check_mode(checks, "scale_50")
    assert [c.name for c in checks] == [
        "live port",
        "--live flag",
        "vault credentials",
        "ladder stage",
    ]


def test_live_stage_names_a_missing_vault() -> None:
    def no_vault() -> list[str]:
        raise InputError("no vault configured: set security.vault_path")

    checks = live_conditions(
        stage="micro_10",
        broker=_broker("live", 4001),
        live_flag=True,
        vault_names=no_vault,
        ladder=lambda: (True, "ok"),
    )
    with pytest.raises(ModeRefusedError, match="vault credentials: no vault configured"):
        check_mode(checks, "micro_10")


def test_paper_stage_refuses_the_live_flag() -> None:
    checks = live_conditions(
        stage="paper",
        broker=_broker("paper"),
        live_flag=True,
        vault_names=lambda: [],
        ladder=lambda: (True, "ok"),
    )
    with pytest.raises(ModeRefusedError, match="paper port"):
        check_mode(checks, "paper")


# observation hash, session ids, restart cursor ---------------------------------------------


def test_observation_hash_is_of_the_float32_bytes() -> None:
    a = np.array([0.1, -2.0, 3.5], dtype=np.float32)
    assert observation_hash(a) == observation_hash(a.astype(np.float64))
    b = a.copy()
    b[1] = np.nextafter(b[1], np.float32(0.0))
    assert observation_hash(a) != observation_hash(b)
    assert len(observation_hash(a)) == 32


def _start(log: InMemoryEventLog, sid: str) -> None:
    log.append(
        "config",
        {
            "type": SESSION_TYPE,
            "session_id": sid,
            "rehearsal": True,
            "day": "2024-01-03",
            "stage": "paper",
            "model_id": "m",
            "fingerprint": "abcdef0123",
            "broker": "sim",
            "clock": "manual",
        },
        T0,
    )


def test_session_id_resumes_an_unfinished_session_and_numbers_new_ones() -> None:
    log = InMemoryEventLog()
    args = {
        "rehearsal": True,
        "day": date(2024, 1, 3),
        "stage": "paper",
        "fingerprint": "abcdef0123",
    }
    assert session_id_for(log, **args) == ("R240103pabcdef-1", False)
    _start(log, "R240103pabcdef-1")
    assert session_id_for(log, **args) == ("R240103pabcdef-1", True)
    log.append("config", {"type": END_TYPE, "session_id": "R240103pabcdef-1"}, T0)
    assert session_id_for(log, **args) == ("R240103pabcdef-2", False)
    live = {**args, "rehearsal": False}
    assert session_id_for(log, **live) == ("L240103pabcdef-1", False)


def test_journal_cursor_sums_the_sessions_fills() -> None:
    log = InMemoryEventLog()
    sid = "R240103pabcdef-1"
    _start(log, sid)
    for i, (sym, q) in enumerate((("NVDA", 10.0), ("NVDA", -4.0), ("MSFT", 3.0))):
        log.append(
            "fill",
            {
                "session_id": sid,
                "exec_id": f"X{i}",
                "symbol": sym,
                "quantity": q,
                "price": 1.0,
                "fee": 0.35,
                "time": T0.isoformat(),
            },
            T0,
        )
    log.append(
        "fill",
        {
            "session_id": "other",
            "exec_id": "Y",
            "symbol": "NVDA",
            "quantity": 99.0,
            "price": 1.0,
            "fee": 0.0,
            "time": T0.isoformat(),
        },
        T0,
    )
    cursor = JournalCursor(read_session(log, sid))
    assert cursor.known_positions() == {"NVDA": 6.0, "MSFT": 3.0}
    assert set(cursor.known_execution_ids()) == {"X0", "X1", "X2"}
    assert cursor.last_execution_time() == T0


def test_lineage_refuses_an_unknown_order_and_flags_a_missing_link() -> None:
    log = InMemoryEventLog()
    with pytest.raises(InputError, match="no order 'sw-x-NVDA'"):
        trace_order(log, "sw-x-NVDA")
    log.append(
        "order",
        {
            "type": "sent",
            "client_order_id": "sw-s-001-NVDA",
            "intent_id": "i",
            "decision_id": "s-001",
            "session_id": "s",
            "quantity": 5.0,
            "symbol": "NVDA",
        },
        T0,
    )
    chain = trace_order(log, "sw-s-001-NVDA")
    assert not chain.complete
    assert chain.lines()[-1].startswith("lineage INCOMPLETE")


# heartbeat and watchdog ------------------------------------------------------------------


class _FakeBroker:
    def __init__(self) -> None:
        self.flattened = 0
        self.closed = False

    def flatten(self) -> list[PlaceResult]:
        self.flattened += 1
        return [PlaceResult("sw-flatten-1", sent=True)]

    def close(self) -> None:
        self.closed = True


def test_heartbeat_is_rate_limited_but_writes_state_changes(tmp_path: Path) -> None:
    wall = ManualClock(T0)
    beat = Heartbeat(tmp_path / "hb.json", {"journal": "j"}, wall=wall, every=1.0)
    beat(T0, "s1")
    beat(T0, "s1")  # within a second: not written
    assert read_heartbeat(tmp_path / "hb.json")["beat"] == 1  # type: ignore[index]
    wall.advance(1.0)
    beat(T0, "s1")
    assert read_heartbeat(tmp_path / "hb.json")["beat"] == 2  # type: ignore[index]
    beat.stop(T0, "s1")  # a state change is written at once
    doc = read_heartbeat(tmp_path / "hb.json")
    assert doc is not None and doc["in_session"] is False and doc["pid"] == os.getpid()


def test_watchdog_halts_and_flattens_once_on_a_stale_heartbeat_in_session(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    wall = ManualClock(T0)
    Heartbeat(path, {"journal": "j", "broker": "sim"}, wall=wall)(T0, "s1")
    log = InMemoryEventLog()
    broker = _FakeBroker()
    handled: set[tuple[str, int]] = set()

    def check() -> Any:
        return watchdog_check(
            path,
            10.0,
            open_journal=lambda d: log,
            open_broker=lambda d: broker,
            wall=wall,
            handled=handled,
        )

    os.utime(path, (T0.timestamp(), T0.timestamp()))
    wall.set(T0.replace(second=5))
    assert check() is None  # 5 s: still alive
    wall.set(T0.replace(second=11))
    action = check()
    assert action is not None and action.halted and broker.flattened == 1 and broker.closed
    assert read_state(log).state.value == "EMERGENCY_STOP"
    assert read_state(log).who == "watchdog"
    wall.set(T0.replace(second=40))
    assert check() is None and broker.flattened == 1  # acts once per stale beat
    Heartbeat(path, {"journal": "j"}, wall=wall).stop(T0, "s1")
    os.utime(path, (T0.timestamp(), T0.timestamp()))
    assert check() is None  # no session running: nothing to guard
