"""What the live loop writes to the journal, and how to read a session back.

Every record of a live session carries ``session_id`` and ``rehearsal`` (true for a session on
the controllable clock or the simulated broker). The kinds and their payloads:

================  ====================  =====================================================
kind              ``type``              written
================  ====================  =====================================================
config            ``live_session``      at the start of a session: model, fingerprint, run,
                                        config hash, data fingerprint, stage, broker, clock
decision          (none)                one per closed bar: observation hash, action, targets,
                                        latency, the intents it made
intent            ``policy_intent``     one per symbol whose target changed
verdict           ``intent``            the governor's verdict (written by the governor)
order             ``submitting``        before an approved order goes to the broker
order             ``sent``/``refused``  after the broker answered; ``recovered`` and
                  ``recovered``/        ``abandoned`` at a restart; ``close_out`` for orders
                  ``abandoned``/        the loop sends itself (flatten, governor close-outs)
                  ``close_out``
order_status      (none)                every status change the broker reports
fill              (none)                every execution (``fee``, price, quantity, order id)
alert             ``live_stop`` etc.    stops, disconnects, latency, drawdown rule
config            ``live_session_end``  at the end: figures of the session
================  ====================  =====================================================

:func:`session_summaries` reads the sessions back (what the ladder's gate figures need);
rehearsals are marked and never count toward a live or paper stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "END_TYPE",
    "SESSION_TYPE",
    "SessionSummary",
    "session_summaries",
]

SESSION_TYPE = "live_session"
END_TYPE = "live_session_end"
INTENT_TYPE = "policy_intent"


class _Record(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...


class _Source(Protocol):
    def records(
        self, *, after_seq: int = 0, kinds: Iterable[str] | None = None
    ) -> Iterator[Any]: ...


@dataclass
class SessionSummary:
    """One live session as the journal tells it.

    :param ended: whether the session's end record exists (a crashed session has none yet)
    :param end: the end record's payload (figures), empty while not ended
    """

    session_id: str
    day: str
    stage: str
    model_id: str
    fingerprint: str
    rehearsal: bool
    broker: str
    clock: str
    start_seq: int
    ended: bool = False
    end: dict[str, Any] = field(default_factory=dict)


def session_summaries(source: _Source) -> list[SessionSummary]:
    """Every live session in the journal, in start order, with its end figures if ended."""
    out: dict[str, SessionSummary] = {}
    for rec in source.records(kinds=["config"]):
        p = rec.payload
        kind = p.get("type")
        if kind == SESSION_TYPE:
            sid = str(p["session_id"])
            if sid in out:
                continue  # a restarted session writes its start again; the first one stands
            out[sid] = SessionSummary(
                session_id=sid,
                day=str(p["day"]),
                stage=str(p["stage"]),
                model_id=str(p["model_id"]),
                fingerprint=str(p["fingerprint"]),
                rehearsal=bool(p["rehearsal"]),
                broker=str(p["broker"]),
                clock=str(p["clock"]),
                start_seq=int(rec.seq),
            )
        elif kind == END_TYPE:
            s = out.get(str(p.get("session_id")))
            if s is not None:
                s.ended = True
                s.end = dict(p)
    return list(out.values())
