"""What the governor needs from outside: the journal, and a store for its memory of the day.

:class:`EventLog` is the append-only journal (``stairways.journal.Journal`` implements it). The
governor appends every state transition, verdict, alert and directive to it, and reads its
state back from it: the latest valid ``governor_state`` event *is* the state, so an emergency
stop is in force after a restart for as long as the journal exists, and nobody can lift it
without leaving a record. :class:`StateStore` keeps the governor's memory of the day (peak
equity, drawdown layer, accepted intent ids, order times, streaks, cooldowns);
:class:`~stairways.risk.store.SqlStateStore` keeps it in the journal's database.

Implementations raise :class:`~stairways.errors.StairwaysError` (or ``OSError``) when they
cannot write; the governor never swallows that. The in-memory implementations here are for
tests, benchmarks and simulations that keep no record on disk.

Event kinds are the journal's (:class:`stairways.journal.EventKind` values).
"""

from __future__ import annotations

import bisect
import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "KIND_ALERT",
    "KIND_CONFIG",
    "KIND_OPERATOR",
    "KIND_STATE",
    "KIND_VERDICT",
    "EncodedDocument",
    "EventLog",
    "EventRecord",
    "EventSource",
    "InMemoryEventLog",
    "InMemoryStateStore",
    "RecordedEvent",
    "StateStore",
]

# The journal's event kinds the governor writes.
KIND_STATE = "governor_state"  # transitions of the state machine, and nothing else
KIND_VERDICT = "verdict"  # verdicts on intents, and directives (payload "type": "directive")
KIND_ALERT = "alert"  # alert levels, drawdown layers, stops, protections, latency pauses
KIND_CONFIG = "config"  # the limits in force when a governor starts
KIND_OPERATOR = "operator_action"  # halt and resume from the CLI


class EventRecord(Protocol):
    """One stored event: its position in the log, kind and payload."""

    @property
    def seq(self) -> int:
        """Position in the log, increasing."""
        ...

    @property
    def kind(self) -> str:
        """The event kind."""
        ...

    @property
    def payload(self) -> Mapping[str, Any]:
        """The event's data."""
        ...


class EventSource(Protocol):
    """Events read back in order (a journal reader)."""

    def records(
        self, *, after_seq: int = 0, kinds: Iterable[str] | None = None
    ) -> Iterator[EventRecord]:
        """Events after ``after_seq`` (of ``kinds``, if given), in order."""
        ...


class EventLog(EventSource, Protocol):
    """Append-only record of events (the journal) that can be read back in order."""

    def append(self, kind: str, payload: Mapping[str, Any], ts: datetime) -> object:
        """Record one event of ``kind`` at exchange time ``ts``; payload is JSON-ready."""
        ...


class EncodedDocument(Mapping[str, Any]):
    """A JSON object handed to a store as its canonical text: ``json.dumps(document,
    sort_keys=True, allow_nan=False)``, what :class:`~stairways.risk.store.SqlStateStore`
    writes. A store that writes that text takes :attr:`text` as it is (it says so with a true
    ``takes_encoded`` attribute); read as a mapping, it is the document the text holds.

    :param text: the canonical text of a JSON object
    """

    __slots__ = ("_document", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._document: dict[str, Any] | None = None

    def _doc(self) -> dict[str, Any]:
        if self._document is None:
            document = json.loads(self.text)
            if not isinstance(document, dict):
                raise TypeError(f"an encoded document is a JSON object, got {self.text[:40]!r}")
            self._document = document
        return self._document

    def __getitem__(self, key: str) -> Any:
        return self._doc()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._doc())

    def __len__(self) -> int:
        return len(self._doc())


class StateStore(Protocol):
    """Durable key-value storage of small JSON-ready documents (the governor's memory)."""

    def load_state(self, key: str) -> Mapping[str, Any] | None:
        """The document last saved under ``key``, or None when nothing was ever saved."""
        ...

    def save_state(self, key: str, value: Mapping[str, Any], ts: datetime) -> None:
        """Replace the document under ``key`` durably (it survives a process kill)."""
        ...


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event held by :class:`InMemoryEventLog`."""

    seq: int
    kind: str
    payload: Mapping[str, Any]
    ts: datetime


class InMemoryEventLog:
    """An :class:`EventLog` in a list (tests, benchmarks, simulations)."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self._by_kind: dict[str, list[RecordedEvent]] = {}

    def append(self, kind: str, payload: Mapping[str, Any], ts: datetime) -> RecordedEvent:
        """Keep a deep copy of the event, so later changes to the payload do not leak in."""
        event = RecordedEvent(len(self.events) + 1, kind, copy.deepcopy(dict(payload)), ts)
        self.events.append(event)
        self._by_kind.setdefault(kind, []).append(event)
        return event

    def records(
        self, *, after_seq: int = 0, kinds: Iterable[str] | None = None
    ) -> Iterator[RecordedEvent]:
        """Events after ``after_seq`` (of ``kinds``, if given), in order."""
        if kinds is None:
            yield from self.events[max(after_seq, 0) :]
            return
        chosen = [
            e
            for kind in set(kinds)
            for e in self._by_kind.get(kind, ())[
                bisect.bisect_right(self._by_kind.get(kind, ()), after_seq, key=_seq) :
            ]
        ]
        yield from sorted(chosen, key=_seq)

    def last_seq(self, kind: str) -> int:
        """The sequence number of the last event of ``kind`` (0 when there is none)."""
        events = self._by_kind.get(kind)
        return events[-1].seq if events else 0

    def of_kind(self, kind: str) -> list[RecordedEvent]:
        """The events of one kind, in order."""
        return list(self._by_kind.get(kind, ()))


def _seq(event: RecordedEvent) -> int:
    return event.seq


class InMemoryStateStore:
    """A :class:`StateStore` in a dict; shared by two governors it plays a restart."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.saves = 0

    def load_state(self, key: str) -> Mapping[str, Any] | None:
        """A deep copy of the saved document (or None)."""
        doc = self.documents.get(key)
        return None if doc is None else copy.deepcopy(doc)

    def save_state(self, key: str, value: Mapping[str, Any], ts: datetime) -> None:
        """Keep a deep copy of ``value``."""
        self.documents[key] = copy.deepcopy(dict(value))
        self.saves += 1
