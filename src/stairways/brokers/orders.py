"""Orders as the brokers see them: the request, our order states and the IBKR status mapping.

An :class:`OrderRequest` is what a governor-approved intent becomes before it reaches a broker:
symbol, signed whole-share quantity, order type, limit price and a client order id derived from
the decision id (:func:`client_order_id`). The client order id travels to the broker (IBKR
``orderRef``), which echoes it in open orders, completed orders and executions; that echo is
what makes placing idempotent across reconnects and restarts.

Order states are ours (:class:`OrderState`); each broker maps its own statuses onto them.
IBKR (TWS API order statuses, see :func:`ibkr_order_state`):

============== ====================================================================
IBKR status    our state
============== ====================================================================
ApiPending     PENDING_SUBMIT (created in the API, not yet transmitted)
PendingSubmit  PENDING_SUBMIT (transmitted, not yet acknowledged by IB)
PreSubmitted   ACCEPTED (accepted by IB, held or simulated, not yet at the exchange)
Submitted      ACCEPTED, or PARTIALLY_FILLED once ``filled > 0`` and ``remaining > 0``
PendingCancel  PENDING_CANCEL (cancel sent, not yet confirmed)
ApiCancelled   CANCELLED (cancelled before it was transmitted)
Cancelled      CANCELLED (whatever filled before the cancel stays filled)
Filled         FILLED (``remaining == 0``)
Inactive       INACTIVE (IB holds the order but it is not working: outside hours, a
               rejected attribute, an exchange problem; the error message says why)
============== ====================================================================

A rejection arrives from IB as an error message (code and text) for the order id; the adapter
turns it into REJECTED. Partial fills are not a status of their own at IB: they show as
``Submitted`` with a non-zero ``filled``, which is why the mapping reads the quantities too.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from stairways.errors import InputError

__all__ = [
    "ACTIVE_STATES",
    "IBKR_STATUS_MAP",
    "TERMINAL_STATES",
    "ApprovedOrder",
    "OrderRequest",
    "OrderState",
    "OrderType",
    "client_order_id",
    "ibkr_order_state",
    "order_request_from_verdict",
    "whole_shares",
]

# IBKR accepts long order references; ours stay short so they read well in TWS and logs.
MAX_CLIENT_ID_LENGTH = 40
_SAFE = re.compile(r"^[A-Za-z0-9._:-]+$")


class OrderType(StrEnum):
    """Order types the brokers accept."""

    MARKET = "MKT"
    LIMIT = "LMT"


class OrderState(StrEnum):
    """Lifecycle of one order, the same for every broker."""

    PENDING_SUBMIT = "pending_submit"  # sent, not yet acknowledged
    ACCEPTED = "accepted"  # working at the broker, nothing filled
    PARTIALLY_FILLED = "partially_filled"  # working, some quantity filled
    PENDING_CANCEL = "pending_cancel"  # cancel requested, not yet confirmed
    FILLED = "filled"  # completely filled (terminal)
    CANCELLED = "cancelled"  # cancelled, possibly after partial fills (terminal)
    REJECTED = "rejected"  # refused by the broker or before sending (terminal)
    INACTIVE = "inactive"  # held by the broker but not working (IBKR Inactive)


TERMINAL_STATES: frozenset[OrderState] = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED}
)
ACTIVE_STATES: frozenset[OrderState] = frozenset(set(OrderState) - TERMINAL_STATES)

IBKR_STATUS_MAP: dict[str, OrderState] = {
    "ApiPending": OrderState.PENDING_SUBMIT,
    "PendingSubmit": OrderState.PENDING_SUBMIT,
    "PreSubmitted": OrderState.ACCEPTED,
    "Submitted": OrderState.ACCEPTED,
    "PendingCancel": OrderState.PENDING_CANCEL,
    "ApiCancelled": OrderState.CANCELLED,
    "Cancelled": OrderState.CANCELLED,
    "Filled": OrderState.FILLED,
    "Inactive": OrderState.INACTIVE,
}


def ibkr_order_state(status: str, filled: float = 0.0, remaining: float = 0.0) -> OrderState:
    """Our state for an IBKR order status and its filled and remaining quantities.

    ``ValidationError`` (ib_async's name for an IB warning on a live order) keeps the order
    working. An unknown status is an error rather than a guess.
    """
    if status == "ValidationError":
        status = "Submitted"
    try:
        state = IBKR_STATUS_MAP[status]
    except KeyError:
        raise InputError(
            f"unknown IBKR order status {status!r}; known: {sorted(IBKR_STATUS_MAP)}"
        ) from None
    if state == OrderState.ACCEPTED and filled > 0.0 and remaining > 0.0:
        return OrderState.PARTIALLY_FILLED
    if state == OrderState.ACCEPTED and filled > 0.0 and remaining == 0.0:
        return OrderState.FILLED
    return state


def client_order_id(decision_id: str, symbol: str) -> str:
    """The client order id of the order for ``symbol`` decided by ``decision_id``.

    Deterministic, so a restarted process derives the same id for the same decision and the
    broker's echo of it (IBKR ``orderRef``) proves the order was already sent. Readable ids
    (``sw-<decision>-<symbol>``) are kept as they are; long or unusual ones are hashed.
    """
    if not decision_id:
        raise InputError("a decision id is needed to derive a client order id")
    if not symbol.isalpha() or not symbol.isupper():
        raise InputError(f"symbol {symbol!r} is not an upper-case ticker")
    plain = f"sw-{decision_id}-{symbol}"
    if len(plain) <= MAX_CLIENT_ID_LENGTH and _SAFE.match(decision_id):
        return plain
    digest = hashlib.sha256(f"{decision_id}\0{symbol}".encode()).hexdigest()[:24]
    return f"sw-h{digest}-{symbol}"


def whole_shares(quantity: float) -> int:
    """Round a signed quantity toward zero to whole shares (never rounds up an exposure)."""
    if not math.isfinite(quantity):
        raise InputError(f"order quantity must be finite, got {quantity}")
    return math.trunc(quantity)


@dataclass(frozen=True)
class OrderRequest:
    """One order to send: what a governor-approved intent becomes at the broker boundary.

    :param client_order_id: derived from the decision id (:func:`client_order_id`)
    :param symbol: ticker, for example ``NVDA``
    :param quantity: signed shares, positive buys; whole shares unless the broker allows
        fractions (the simulated broker's ``quantity_decimals``, IBKR's
        ``ibkr.fractional_shares``)
    :param order_type: market or limit
    :param limit_price: limit price for limit orders, None for market orders
    :param decision_id: the decision this order came from (for the journal)
    """

    client_order_id: str
    symbol: str
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    decision_id: str = ""

    def __post_init__(self) -> None:
        if not self.client_order_id or len(self.client_order_id) > MAX_CLIENT_ID_LENGTH:
            raise InputError(
                f"client order id {self.client_order_id!r} must have 1..{MAX_CLIENT_ID_LENGTH} "
                "characters"
            )
        if not _SAFE.match(self.client_order_id):
            raise InputError(
                f"client order id {self.client_order_id!r} may only hold letters, digits and ._:-"
            )
        if not math.isfinite(self.quantity):
            raise InputError(f"order {self.client_order_id}: quantity must be finite")
        if self.order_type == OrderType.LIMIT:
            if self.limit_price is None or not (
                math.isfinite(self.limit_price) and self.limit_price > 0.0
            ):
                raise InputError(
                    f"order {self.client_order_id}: a limit order needs a positive limit price"
                )
        elif self.limit_price is not None:
            raise InputError(f"order {self.client_order_id}: a market order takes no limit price")

    @classmethod
    def from_decision(
        cls,
        decision_id: str,
        symbol: str,
        quantity: float,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
    ) -> OrderRequest:
        """The request for ``symbol`` decided by ``decision_id`` (client order id derived)."""
        return cls(
            client_order_id=client_order_id(decision_id, symbol),
            symbol=symbol,
            quantity=quantity,
            order_type=order_type,
            limit_price=limit_price,
            decision_id=decision_id,
        )

    @property
    def side(self) -> str:
        """``BUY`` or ``SELL``."""
        return "BUY" if self.quantity > 0 else "SELL"


class ApprovedOrder(Protocol):
    """What a governor verdict offers the broker boundary (``stairways.risk`` Verdict has it).

    Brokers do not import the governor; any object with these attributes converts.
    """

    @property
    def decision_id(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def approved(self) -> float: ...


def order_request_from_verdict(
    verdict: ApprovedOrder, limit_price: float | None = None
) -> OrderRequest:
    """The order for an approved verdict: its signed approved quantity, market unless a limit
    price is given, and the client order id derived from its decision id and symbol."""
    return OrderRequest.from_decision(
        verdict.decision_id,
        verdict.symbol,
        float(verdict.approved),
        OrderType.MARKET if limit_price is None else OrderType.LIMIT,
        limit_price,
    )
