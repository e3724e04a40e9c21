"""The governor's state machine: PAUSED, RUNNING, EMERGENCY_STOP, MAINTENANCE.

PAUSED is the start state. Allowed transitions (and nothing else):

- PAUSED -> RUNNING | MAINTENANCE | EMERGENCY_STOP
- RUNNING -> PAUSED | EMERGENCY_STOP | MAINTENANCE
- EMERGENCY_STOP -> PAUSED | MAINTENANCE, only by a named operator with a reason
- MAINTENANCE -> PAUSED

The journal holds the state: every transition is one ``governor_state`` event naming who, why,
the state it leaves and the state's sequence number, and the state in force is the end of the
chain of those events. So an emergency stop is latched across restarts by the same write that
records it, and lifting it leaves a record.

Two processes may transition at once (the trader pauses on a rule while an operator runs
``stairways halt``). The journal serialises their appends; a transition counts only if it
continues the chain (its sequence number is one more than the state it leaves and it leaves the
state in force). Each writer reads the chain back after appending; one that lost the race
re-checks its transition against the new state and tries again, so a halt is never lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from stairways.errors import InputError, StairwaysError
from stairways.risk.ports import KIND_STATE, EventLog, EventSource
from stairways.risk.types import TradingState

__all__ = [
    "TRANSITIONS",
    "Actor",
    "Role",
    "StateConflictError",
    "StateRecord",
    "StateStoreError",
    "TradingStateMachine",
    "TransitionError",
    "read_state",
    "replay",
]

log = logging.getLogger(__name__)

_ATTEMPTS = 5

P, R, E, M = (
    TradingState.PAUSED,
    TradingState.RUNNING,
    TradingState.EMERGENCY_STOP,
    TradingState.MAINTENANCE,
)
TRANSITIONS: dict[TradingState, frozenset[TradingState]] = {
    P: frozenset({R, M, E}),
    R: frozenset({P, E, M}),
    E: frozenset({P, M}),
    M: frozenset({P}),
}


class TransitionError(InputError):
    """A transition the state machine does not allow, or one without a name or a reason."""


class StateStoreError(StairwaysError):
    """Stored governor state could not be read (a document that is not what was written)."""


class StateConflictError(StairwaysError):
    """Other processes kept changing the state while this one tried to; try again."""


class Role(StrEnum):
    """Who is acting: a person, or the governor's own rules."""

    OPERATOR = "operator"
    GOVERNOR = "governor"


@dataclass(frozen=True, slots=True)
class Actor:
    """A named actor: an operator (a person's name) or the governor."""

    name: str
    role: Role

    @classmethod
    def operator(cls, name: str) -> Actor:
        """A person acting by hand (CLI)."""
        return cls(name.strip(), Role.OPERATOR)

    @classmethod
    def governor(cls, rule: str) -> Actor:
        """The governor acting on one of its rules."""
        return cls(f"governor:{rule}", Role.GOVERNOR)


@dataclass(frozen=True, slots=True, kw_only=True)
class StateRecord:
    """The state in force: what it is, since when, who set it and why, and its place in the chain.

    ``seq`` is the state's sequence number (0 for the start state), ``previous`` the state it
    left and ``nonce`` a random id that tells two otherwise identical records apart.
    """

    state: TradingState
    since: str  # ISO instant, exchange time
    who: str
    role: Role
    why: str
    seq: int
    previous: TradingState | None = None
    nonce: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the journal event's payload)."""
        return {
            "state": self.state.value,
            "previous": None if self.previous is None else self.previous.value,
            "since": self.since,
            "who": self.who,
            "role": self.role.value,
            "why": self.why,
            "seq": self.seq,
            "nonce": self.nonce,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> StateRecord:
        """Read a journaled record; a payload that is not one is a :class:`StateStoreError`."""
        try:
            previous = doc["previous"]
            return cls(
                state=TradingState(doc["state"]),
                previous=None if previous is None else TradingState(previous),
                since=str(doc["since"]),
                who=str(doc["who"]),
                role=Role(doc["role"]),
                why=str(doc["why"]),
                seq=int(doc["seq"]),
                nonce=str(doc["nonce"]),
            )
        except (KeyError, ValueError, TypeError) as err:
            raise StateStoreError(
                f"a governor_state event in the journal is not a state record ({err}): "
                f"{dict(doc)!r}; run `stairways journal verify` before trading"
            ) from None


INITIAL = StateRecord(
    state=TradingState.PAUSED, since="", who="start", role=Role.GOVERNOR, why="start state", seq=0
)


def _continues(current: StateRecord, nxt: StateRecord) -> bool:
    """Whether ``nxt`` is a legal next link of the chain after ``current``."""
    if nxt.seq != current.seq + 1 or nxt.previous != current.state:
        return False
    if nxt.state not in TRANSITIONS[current.state]:
        return False
    return not (current.state is TradingState.EMERGENCY_STOP and nxt.role is not Role.OPERATOR)


def replay(
    source: EventSource, start: StateRecord = INITIAL, after_seq: int = 0
) -> tuple[StateRecord, int, list[StateRecord]]:
    """Apply the ``governor_state`` events after ``after_seq`` to ``start``.

    Returns the state in force, the last event position read and the records that did not
    continue the chain (writers that lost a race, or records that break the rules).
    """
    record, cursor, void = start, after_seq, []
    for event in source.records(after_seq=after_seq, kinds=(KIND_STATE,)):
        cursor = event.seq
        rec = StateRecord.from_dict(event.payload)
        if _continues(record, rec):
            record = rec
        else:
            void.append(rec)
            log.info(
                "governor_state event %d does not continue the chain (state %s #%d); ignored",
                event.seq,
                record.state.value,
                record.seq,
            )
    return record, cursor, void


def read_state(source: EventSource) -> StateRecord:
    """The state in force according to a journal (read-only: for the CLI and dashboards)."""
    return replay(source)[0]


class TradingStateMachine:
    """The state machine whose state is the chain of ``governor_state`` events in ``log``.

    :param log: the journal
    """

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.record = INITIAL
        self._cursor = 0
        self._probe: Callable[[str], int] | None = getattr(log, "last_seq", None)
        self.void: list[StateRecord] = []
        self.sync()

    @property
    def state(self) -> TradingState:
        """The state in force."""
        return self.record.state

    def sync(self) -> StateRecord:
        """Read the transitions appended since the last read (by any process) and apply them.

        A log that tells the position of its last ``governor_state`` event (``last_seq``, one
        indexed lookup in the journal) is read only when that position is past the last one
        applied: every bar asks, and a transition is rare.
        """
        if self._probe is not None and self._probe(KIND_STATE) <= self._cursor:
            return self.record
        before = self.record
        self.record, self._cursor, void = replay(self.log, self.record, self._cursor)
        self.void.extend(void)
        if self.record.state is not before.state:
            log.info(
                "governor state is %s (#%d, by %s: %s)",
                self.record.state.value,
                self.record.seq,
                self.record.who,
                self.record.why,
            )
        return self.record

    def can(self, to: TradingState) -> bool:
        """Whether ``to`` is reachable from the state in force."""
        return to in TRANSITIONS[self.record.state]

    def _check(self, current: StateRecord, to: TradingState, actor: Actor, why: str) -> None:
        if not actor.name.strip():
            raise TransitionError("a state transition needs the name of who makes it")
        if not why.strip():
            raise TransitionError(
                f"a state transition needs a reason ({current.state.value} -> {to.value})"
            )
        if to == current.state:
            since = f" since {current.since}" if current.since else ""
            raise TransitionError(
                f"trading is already {to.value}{since} (set by {current.who}: {current.why})"
            )
        if to not in TRANSITIONS[current.state]:
            allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current.state]))
            raise TransitionError(
                f"cannot go from {current.state.value} to {to.value}; allowed: {allowed}"
            )
        if current.state is TradingState.EMERGENCY_STOP and actor.role is not Role.OPERATOR:
            raise TransitionError(
                "an emergency stop is released only by a named operator with a reason "
                f"(refused for {actor.name})"
            )

    def transition(self, to: TradingState, actor: Actor, why: str, at: datetime) -> StateRecord:
        """Move to ``to``: check it is allowed on the latest state, journal it, confirm it held.

        :param to: the new state
        :param actor: who acts (leaving EMERGENCY_STOP needs a named operator)
        :param why: the reason, in words (required)
        :param at: exchange time of the transition
        """
        for _ in range(_ATTEMPTS):
            current = self.sync()
            self._check(current, to, actor, why)
            record = StateRecord(
                state=to,
                previous=current.state,
                since=at.isoformat(),
                who=actor.name,
                role=actor.role,
                why=why.strip(),
                seq=current.seq + 1,
                nonce=uuid.uuid4().hex,
            )
            self.log.append(KIND_STATE, record.as_dict(), at)
            if self.sync() == record:
                log.info(
                    "governor state %s -> %s by %s: %s",
                    current.state.value,
                    to.value,
                    actor.name,
                    record.why,
                )
                return record
            log.warning(
                "governor state changed by another process during %s -> %s; checking again",
                current.state.value,
                to.value,
            )
        raise StateConflictError(
            f"the governor state kept changing while setting {to.value} ({_ATTEMPTS} attempts); "
            f"it is now {self.record.state.value} (set by {self.record.who})"
        )
