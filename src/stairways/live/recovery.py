"""Restart after a crash: what the journal knows of a session, and finishing what was cut off.

The loop writes ahead (:mod:`stairways.live.loop`): a decision and its intents, then each
verdict, then an ``order`` record of type ``submitting``, then the broker call, then ``sent``
or ``refused``. A process killed anywhere in that chain leaves a prefix of it. A restarted loop
reads the session's records (:func:`read_session`), lets the broker reconcile its positions
against the journal's fills (:class:`JournalCursor`, the broker's
:class:`~stairways.brokers.base.ExecutionCursor`), and finishes each cut-off chain
(:func:`finish_pending`):

- an intent without a verdict goes to the governor now (it never saw it: the governor's memory
  is saved after the verdict is journaled);
- an approved verdict without ``submitting`` is written ahead and sent;
- a ``submitting`` order the broker knows (its client order id came back) is recorded as
  ``recovered``; one it does not know is sent now if its decision bar is still the current
  bar, and recorded as ``abandoned`` (with the reason) if the market has moved past it.

Client order ids are derived from decision ids, and the broker refuses an id it already knows,
so no path sends an order twice.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stairways.brokers.base import Broker
from stairways.live.records import END_TYPE, INTENT_TYPE
from stairways.risk.types import Decision, Intent

__all__ = ["JournalCursor", "SessionRecords", "broker_knows", "read_session"]

log = logging.getLogger(__name__)


@dataclass
class SessionRecords:
    """A session's records, by what they are about."""

    session_id: str
    decisions: dict[int, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fills: dict[str, dict[str, Any]] = field(default_factory=dict)
    ended: bool = False
    stop: str = ""

    def order_state(self, cid: str) -> str:
        """The last journaled type of an order (``submitting``, ``sent``, ...), or ''."""
        recs = self.orders.get(cid)
        return str(recs[-1]["type"]) if recs else ""


def read_session(source: Any, session_id: str) -> SessionRecords:
    """Everything the journal holds about ``session_id`` (one pass over the live kinds)."""
    out = SessionRecords(session_id)
    prefix = f"{session_id}-"
    kinds = ["decision", "intent", "verdict", "order", "fill", "config", "alert"]
    for rec in source.records(kinds=kinds):
        p = dict(rec.payload)
        kind = rec.kind
        if kind == "verdict":
            if p.get("type") == "intent" and str(p.get("decision_id", "")).startswith(prefix):
                out.verdicts[str(p["intent_id"])] = p
            continue
        if p.get("session_id") != session_id:
            continue
        if kind == "decision":
            out.decisions[int(p["bar"])] = p
        elif kind == "intent" and p.get("type") == INTENT_TYPE:
            out.intents[str(p["intent_id"])] = p
        elif kind == "order" and "client_order_id" in p:
            out.orders.setdefault(str(p["client_order_id"]), []).append(p)
        elif kind == "fill":
            out.fills[str(p["exec_id"])] = p
        elif kind == "config" and p.get("type") == END_TYPE:
            out.ended = True
        elif kind == "alert" and p.get("type") == "session_stop":
            out.stop = str(p["why"])
    return out


class JournalCursor:
    """What the journal knows of a session's executions (the broker reconciles against it)."""

    def __init__(self, records: SessionRecords) -> None:
        self.records = records

    def known_positions(self) -> Mapping[str, float]:
        """Signed shares per symbol after the session's journaled fills (sessions start flat)."""
        out: dict[str, float] = {}
        for f in self.records.fills.values():
            out[f["symbol"]] = out.get(f["symbol"], 0.0) + float(f["quantity"])
        return out

    def known_execution_ids(self) -> Collection[str]:
        """Execution ids the journal recorded."""
        return set(self.records.fills)

    def last_execution_time(self) -> datetime | None:
        """Time of the last journaled execution."""
        times = [datetime.fromisoformat(f["time"]) for f in self.records.fills.values()]
        return max(times) if times else None


def broker_knows(broker: Broker, cid: str) -> bool:
    """Whether the broker has an order with client order id ``cid`` (working or finished)."""
    if any(o.client_order_id == cid for o in broker.open_orders()):
        return True
    if any(e.client_order_id == cid for e in broker.executions()):
        return True
    every = getattr(broker, "all_orders", None)
    if every is not None:
        return any(o.client_order_id == cid for o in every())
    known = getattr(broker, "known_client_order_ids", None)
    if known is not None:
        return cid in known()
    return False


def intents_of(decision: Mapping[str, Any], records: SessionRecords) -> Iterable[Intent]:
    """The intents a journaled decision made, rebuilt from their records."""
    for iid in decision.get("intents", []):
        p = records.intents.get(iid)
        if p is None:
            continue
        yield Intent(
            intent_id=iid,
            decision_id=str(p["decision_id"]),
            model_id=str(p["model_id"]),
            symbol=str(p["symbol"]),
            reason=str(p["reason"]),
            target_shares=float(p["target_shares"]),
            decision_price=float(p["decision_price"]),
        )


def approved(verdict: Mapping[str, Any]) -> bool:
    """Whether a journaled verdict lets an order go to the broker."""
    return verdict.get("decision") != Decision.REJECT.value and float(verdict["approved"]) != 0.0
