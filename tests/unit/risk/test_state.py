"""The state machine: exactly the issue's transitions, who and why on every one, latched stop."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from stairways.risk.ports import KIND_OPERATOR, KIND_STATE, InMemoryEventLog, RecordedEvent
from stairways.risk.state import (
    TRANSITIONS,
    Actor,
    StateStoreError,
    TradingStateMachine,
    TransitionError,
)
from stairways.risk.types import TradingState
from tests.unit.risk.helpers import DAY, OPERATOR

P, R, E, M = (
    TradingState.PAUSED,
    TradingState.RUNNING,
    TradingState.EMERGENCY_STOP,
    TradingState.MAINTENANCE,
)
ALLOWED = {(P, R), (P, M), (P, E), (R, P), (R, E), (R, M), (E, P), (E, M), (M, P)}
PATH_TO = {P: [], R: [R], E: [E], M: [M]}


def _machine_in(state: TradingState) -> TradingStateMachine:
    machine = TradingStateMachine(InMemoryEventLog())
    for step in PATH_TO[state]:
        machine.transition(step, OPERATOR, f"to {step}", DAY)
    assert machine.state is state
    return machine


def test_the_table_is_exactly_the_issues_transitions() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


def test_a_new_machine_starts_paused() -> None:
    assert TradingStateMachine(InMemoryEventLog()).state is P


@pytest.mark.parametrize(("a", "b"), list(itertools.product([P, R, E, M], repeat=2)))
def test_every_pair_is_allowed_or_refused_as_the_table_says(
    a: TradingState, b: TradingState
) -> None:
    machine = _machine_in(a)
    if (a, b) in ALLOWED:
        record = machine.transition(b, OPERATOR, "because", DAY)
        assert (machine.state, record.previous, record.who, record.why) == (
            b,
            a,
            "alice",
            "because",
        )
    else:
        with pytest.raises(TransitionError):
            machine.transition(b, OPERATOR, "because", DAY)
        assert machine.state is a


def test_every_transition_is_one_journal_event_with_who_and_why() -> None:
    log = InMemoryEventLog()
    machine = TradingStateMachine(log)
    machine.transition(R, OPERATOR, "open", DAY)
    machine.transition(P, Actor.governor("latency"), "slow decisions", DAY + timedelta(minutes=1))
    events = log.of_kind(KIND_STATE)
    assert [(e.payload["previous"], e.payload["state"]) for e in events] == [
        ("PAUSED", "RUNNING"),
        ("RUNNING", "PAUSED"),
    ]
    assert [(e.payload["who"], e.payload["role"], e.payload["why"]) for e in events] == [
        ("alice", "operator", "open"),
        ("governor:latency", "governor", "slow decisions"),
    ]
    assert [e.payload["seq"] for e in events] == [1, 2]


@pytest.mark.parametrize(("who", "why"), [("", "reason"), ("   ", "reason"), ("bob", " ")])
def test_a_transition_needs_a_name_and_a_reason(who: str, why: str) -> None:
    machine = _machine_in(P)
    with pytest.raises(TransitionError, match=r"name|reason"):
        machine.transition(R, Actor.operator(who), why, DAY)
    assert machine.state is P


def test_only_a_named_operator_releases_an_emergency_stop() -> None:
    machine = _machine_in(E)
    with pytest.raises(TransitionError, match="only by a named operator"):
        machine.transition(P, Actor.governor("auto"), "looks fine", DAY)
    assert machine.state is E
    machine.transition(P, Actor.operator("carol"), "broker checked", DAY)
    assert machine.state is P


def test_an_emergency_stop_is_still_in_force_after_a_restart() -> None:
    log = InMemoryEventLog()
    TradingStateMachine(log).transition(E, OPERATOR, "runaway orders", DAY)
    restarted = TradingStateMachine(log)
    assert restarted.state is E
    assert restarted.record.who == "alice" and restarted.record.why == "runaway orders"


def test_a_stale_writer_cannot_overwrite_a_stop_set_by_another_process() -> None:
    log = InMemoryEventLog()
    trader = TradingStateMachine(log)
    trader.transition(R, OPERATOR, "open", DAY)
    cli = TradingStateMachine(log)
    cli.transition(E, OPERATOR, "halt from the CLI", DAY)
    # the trader has not read the halt yet; its own pause must not replace it
    with pytest.raises(TransitionError, match="only by a named operator"):
        trader.transition(P, Actor.governor("loss_limit"), "loss", DAY)
    assert trader.state is E and TradingStateMachine(log).state is E


class _InterleavedLog(InMemoryEventLog):
    """Runs ``before_append`` (once) just before the next append: another process's write."""

    def __init__(self) -> None:
        super().__init__()
        self.before_append: Callable[[], object] | None = None

    def append(self, kind: str, payload: Mapping[str, Any], ts: datetime) -> RecordedEvent:
        hook, self.before_append = self.before_append, None
        if hook is not None:
            hook()
        return super().append(kind, payload, ts)


def test_a_record_that_loses_a_race_is_void_and_the_loser_retries() -> None:
    log = _InterleavedLog()
    trader = TradingStateMachine(log)
    trader.transition(R, OPERATOR, "open", DAY)
    cli = TradingStateMachine(log)
    # Between the CLI's read (RUNNING #1) and its append, the trader pauses (#2): the CLI's
    # record #2 does not continue the chain, so it reads again and stops from PAUSED (#3).
    log.before_append = lambda: trader.transition(P, Actor.governor("x"), "paused first", DAY)
    record = cli.transition(E, OPERATOR, "halt", DAY)
    assert (record.seq, record.previous) == (3, P)
    fresh = TradingStateMachine(log)
    assert fresh.state is E and fresh.record.seq == 3
    assert [(v.seq, v.state) for v in fresh.void] == [(2, E)]


def test_a_journal_event_that_is_not_a_state_record_fails_loudly() -> None:
    log = InMemoryEventLog()
    log.append(KIND_STATE, {"state": "FLYING"}, DAY)
    with pytest.raises(StateStoreError, match="journal verify"):
        TradingStateMachine(log)


def test_other_event_kinds_do_not_move_the_state() -> None:
    log = InMemoryEventLog()
    log.append(KIND_OPERATOR, {"action": "halt", "state": "EMERGENCY_STOP"}, DAY)
    assert TradingStateMachine(log).state is P
