"""The kinds of event the journal records, and the payload keys each kind must carry."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from stairways.errors import InputError

__all__ = ["REQUIRED_KEYS", "EventKind", "check_payload_keys", "parse_kind"]


class EventKind(StrEnum):
    """What an event records. The value is what the journal stores."""

    DECISION = "decision"  # a policy decision on one observation
    INTENT = "intent"  # an order intent from the policy
    VERDICT = "verdict"  # the governor's approve / reduce / reject of an intent
    ORDER = "order"  # an order sent to a broker
    ORDER_STATUS = "order_status"  # every status change of an order
    FILL = "fill"  # an execution, with its fees
    POSITION = "position"  # a position after a change (or from reconciliation)
    GOVERNOR_STATE = "governor_state"  # a transition of the governor's state machine
    OPERATOR_ACTION = "operator_action"  # halt, resume and other human actions
    APPROVAL = "approval"  # a signed approval of a promotion
    CONFIG = "config"  # the configuration in force (limits, model, stage)
    ALERT = "alert"  # an alert raised


# Keys without which an event of that kind cannot explain anything.
REQUIRED_KEYS: Mapping[EventKind, tuple[str, ...]] = {
    EventKind.DECISION: ("observation_hash",),
    EventKind.FILL: ("fee",),
}


# value -> kind: a dict lookup, a fraction of EventKind(value)'s cost (asked on every record)
_BY_VALUE: Mapping[str, EventKind] = {kind.value: kind for kind in EventKind}


def parse_kind(kind: str) -> EventKind:
    """The :class:`EventKind` named ``kind``; InputError listing the kinds otherwise."""
    if type(kind) is str:
        found = _BY_VALUE.get(kind)
        if found is not None:
            return found
    try:
        return EventKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in EventKind)
        raise InputError(f"unknown journal event kind {kind!r}; the kinds are: {allowed}") from None


def check_payload_keys(kind: EventKind, payload: Mapping[str, Any]) -> None:
    """Refuse a payload that lacks a key its kind requires."""
    missing = [key for key in REQUIRED_KEYS.get(kind, ()) if key not in payload]
    if missing:
        raise InputError(
            f"a {kind.value!r} journal event needs the payload key(s) {', '.join(missing)}"
        )
