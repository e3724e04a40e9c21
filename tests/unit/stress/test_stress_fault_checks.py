"""A scenario whose fault did not play out fails, whatever its gates say: the checks read the
journal (the loop's drawdown stop, its decisions, the disconnect and the latency stop)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stairways.clock import EXCHANGE_TZ
from stairways.journal import JournalRecord
from stairways.stress.scenarios import (
    burst_missed,
    disconnect_missed,
    fault_missed,
    last_decision_bar,
    last_live_bar,
    session_stop,
)
from stairways.stress.settings import BrokerDisconnectConfig, OrderBurstConfig

OPEN = datetime(2024, 1, 2, 9, 30, tzinfo=EXCHANGE_TZ)
WHY = "drawdown 1.02% is past the run's cap 1.00% (env.drawdown_cap)"


class _Journal:
    def __init__(self) -> None:
        self.records: list[JournalRecord] = []

    def add(self, kind: str, bar: int, **payload: Any) -> None:
        seq = len(self.records) + 1
        ts = OPEN + timedelta(minutes=bar + 1)
        self.records.append(JournalRecord(seq, ts, kind, {"bar": bar, **payload}, "", "", ""))

    def decisions(self, first: int, last: int) -> None:
        for k in range(first, last + 1):
            self.add("decision", k, action=0)

    def stop(self, bar: int) -> None:
        self.add("alert", bar, type="session_stop", why=WHY)


def test_a_fault_that_played_out_is_no_error() -> None:
    j = _Journal()
    j.decisions(0, 80)
    assert fault_missed(j.records, True, "anything") == ""
    assert burst_missed(j.records, OrderBurstConfig(at_bar=10, changes=50)) == ""
    assert session_stop(j.records) is None
    assert last_live_bar(j.records) == last_decision_bar(j.records) == 80


def test_a_burst_cut_by_the_drawdown_rule_fails_naming_the_stop() -> None:
    j = _Journal()
    j.decisions(0, 21)
    j.stop(22)
    error = burst_missed(j.records, OrderBurstConfig(at_bar=10, changes=50))
    assert error.startswith("the fault did not play out (50 position changes on bars 10..59)")
    assert "the session stopped at bar 22" in error and WHY in error
    assert last_live_bar(j.records) == 22 and last_decision_bar(j.records) == 21


@given(
    last=st.integers(min_value=-1, max_value=120),
    at_bar=st.integers(min_value=1, max_value=60),
    changes=st.integers(min_value=1, max_value=60),
)
def test_a_burst_played_out_exactly_when_every_bar_of_it_was_decided(
    last: int, at_bar: int, changes: int
) -> None:
    j = _Journal()
    j.decisions(0, last)
    error = burst_missed(j.records, OrderBurstConfig(at_bar=at_bar, changes=changes))
    assert (error == "") is (last >= at_bar + changes - 1)
    if error:
        assert f"the session's last decision was at bar {last}" in error


def test_a_disconnect_needs_the_disconnect_and_the_latency_stop_or_its_whole_window() -> None:
    cfg = BrokerDisconnectConfig(at_bar=20, bars=5, latency_from_bar=30, latency_bars=12)
    # the drawdown rule ended the session before the disconnect
    j = _Journal()
    j.decisions(0, 18)
    j.stop(19)
    assert "the session stopped at bar 19" in disconnect_missed(j.records, cfg)
    # disconnected, then stopped by the drawdown rule while the broker was slow
    j = _Journal()
    j.decisions(0, 33)
    j.add("alert", 20, type="broker_disconnect")
    j.stop(34)
    assert "the slow broker on bars 30..41" in disconnect_missed(j.records, cfg)
    # the latency watch stopped trading first: played out (a later stop does not matter)
    j.add("governor_state", 36, state="EMERGENCY_STOP", why="broker latency over 120 ms")
    assert disconnect_missed(j.records, cfg) == ""
    # no latency stop, but the session traded through the slow bars: played out (the
    # latency_flatten gate, not this check, fails it)
    j = _Journal()
    j.decisions(0, 60)
    j.add("alert", 20, type="broker_disconnect")
    assert disconnect_missed(j.records, cfg) == ""
