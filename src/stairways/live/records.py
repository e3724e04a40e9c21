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

:func:`stairways.live.evidence.collect_sessions` reads the sessions back (the one reader: the
ladder's gate figures, the weekly report, session ids); rehearsals are marked and never count
toward a live or paper stage.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

__all__ = ["END_TYPE", "INTENT_TYPE", "SESSION_TYPE", "typed_records"]

SESSION_TYPE = "live_session"
END_TYPE = "live_session_end"
INTENT_TYPE = "policy_intent"


def typed_records(
    source: Any, kind: str, types: Collection[str], **where: str | None
) -> Iterator[Any]:
    """The records of ``kind`` whose payload ``type`` is one of ``types`` and whose payload
    keys equal ``where`` (a None value matches anything), oldest first: the one filter the
    ladder's readers (models, stage changes, requests, answers) share."""
    wanted = {k: v for k, v in where.items() if v is not None}
    for rec in source.records(kinds=[kind]):
        p = rec.payload
        if p.get("type") in types and all(p.get(k) == v for k, v in wanted.items()):
            yield rec
