"""Interactive Brokers behind the :class:`~stairways.brokers.base.Broker` protocol (ib_async).

- Orders are stock orders routed SMART in USD, market or limit, day orders, regular hours.
  The client order id goes out as IBKR ``orderRef``; IB echoes it in open orders, completed
  orders and executions, and the adapter matches everything by it (never by the per-session
  order id, which a restart reassigns).
- Whole shares unless ``ibkr.fractional_shares`` is set. The TWS API carries quantities as
  decimals (server version 163 and later accept fractional sizes), but IB executes fractional
  stock orders only for accounts with fractional trading permission through the API, and then
  only for the order types and venues IB lists for fractions (IB rejects the rest, error
  10243). Without the setting a quantity is rounded toward zero to whole shares; with it, to
  steps of 0.0001 shares. An intent that rounds to zero is refused with an
  :class:`~stairways.brokers.base.OrderRefused` event. A stage sized in fractions is refused
  at start when the setting is off (:func:`stairways.live.sizing.check_broker_fractions`).
- Idempotency: before sending, the adapter checks the client order id against everything the
  broker reported (open orders, completed orders, executions, synchronised at every connect)
  and everything it sent itself; a known id is refused, never sent twice.
- Fills are reported once per execution id with the commission from IB's commission report;
  a partial fill that IB repeats (after a reconnect, in an executions request) is not counted
  again.
- ib_async does not reconnect by itself: on a disconnect the adapter emits
  :class:`~stairways.brokers.base.Disconnected` and reconnects with exponential backoff while
  :meth:`IbkrBroker.events` is being called. After every connect it reconciles (see
  :mod:`stairways.brokers.reconcile`): IB's positions are authoritative, and a difference that
  known positions plus new executions cannot explain halts new trading with the difference in
  the message.
- The client-side message budget is ib_async's throttle set below IB's 50 messages/second.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from ib_async import IB, LimitOrder, MarketOrder, Stock, Trade
from ib_async.objects import Fill
from ib_async.order import Order, OrderStatus

from stairways.brokers.base import (
    AccountSummary,
    BrokerEvent,
    Connected,
    Disconnected,
    Execution,
    ExecutionCursor,
    FillEvent,
    OrderRefused,
    OrderRejected,
    OrderSnapshot,
    OrderStatusChanged,
    PlaceResult,
    Position,
    ReconciliationDone,
    TradingHalted,
)
from stairways.brokers.errors import BrokerConfigError, BrokerConnectionError, BrokerStateError
from stairways.brokers.ibkr.connection import Endpoint, is_paper_account, open_ib
from stairways.brokers.orders import (
    TERMINAL_STATES,
    OrderRequest,
    OrderState,
    OrderType,
    ibkr_order_state,
)
from stairways.brokers.reconcile import reconcile
from stairways.brokers.settings import BrokerConfig, check_live_permission
from stairways.clock import Clock, ExchangeClock
from stairways.errors import InputError
from stairways.market.actions import MAX_QUANTITY_DECIMALS, round_quantity

log = logging.getLogger(__name__)

OUR_PREFIX = "sw-"
# US stocks above $1 trade in whole cents; a limit off that grid is refused by IB (error 110).
PRICE_TICK = 0.01
# IB error codes that end an order without it being a rejection.
_NOT_REJECTIONS = frozenset({0, 202, 10147, 10148})
# Connectivity between the gateway and IB's servers (the socket to us stays up).
_LINK_LOST = 1100
_LINK_BACK = frozenset({1101, 1102})


def stock(symbol: str) -> Stock:
    """The contract of a US stock routed SMART in USD."""
    return Stock(symbol, "SMART", "USD")


class IbkrBroker:
    """Interactive Brokers through ib_async.

    :param cfg: broker configuration (``kind: ibkr``)
    :param role: which client id of ``ibkr.client_ids`` to use (trader, check, flatten)
    :param live: the explicit live flag (refused unless ``mode: live``, and required by it)
    :param cursor: what the journal knows, for reconciliation; without one, the first connect
        takes IB's report as the baseline and later reconnects reconcile against what this
        process saw since
    :param clock: exchange-time clock for event times and reconnect backoff
    :param host: override of ``ibkr.host`` (``broker check --host``)
    :param port: override of the port (``broker check --port``)
    :param ib_factory: builds the ib_async client
    """

    name = "ibkr"

    def __init__(
        self,
        cfg: BrokerConfig,
        *,
        role: str = "trader",
        live: bool = False,
        cursor: ExecutionCursor | None = None,
        clock: Clock | None = None,
        host: str | None = None,
        port: int | None = None,
        ib_factory: Callable[[], IB] = IB,
    ) -> None:
        check_live_permission(cfg, live)
        if role not in type(cfg.ibkr.client_ids).model_fields:
            raise BrokerStateError(f"unknown client role {role!r}")
        self.cfg = cfg
        self.endpoint = Endpoint(
            host or cfg.ibkr.host,
            port if port is not None else cfg.ibkr_port(),
            int(getattr(cfg.ibkr.client_ids, role)),
        )
        self.cursor = cursor
        self.clock: Clock = clock or ExchangeClock()
        self._factory = ib_factory
        self._ib: IB | None = None
        self.account_id = ""
        self._events: deque[BrokerEvent] = deque()
        self._states: dict[str, tuple[OrderState, float]] = {}
        self._sent: set[str] = set()
        self._emitted: set[str] = set()
        self._ledger: dict[str, float] | None = None
        self._ledger_ids: set[str] = set()
        self._halted: str | None = None
        self._link_down = False
        self._connected = False
        self._closing = False
        self._syncing = False
        self._attempt = 0
        self._next_retry = 0.0
        self._gave_up = False
        self.connects = 0

    # connection --------------------------------------------------------------------------

    @property
    def ib(self) -> IB:
        """The connected ib_async client."""
        if self._ib is None:
            raise BrokerStateError(f"not connected to IB at {self.endpoint}; call connect()")
        return self._ib

    @property
    def connected(self) -> bool:
        """Whether the socket to the gateway is up."""
        return self._connected

    def connect(self) -> None:
        """Connect, synchronise, check the account and reconcile (errors are raised)."""
        if self._connected:
            return
        self._closing = False
        self._open()

    def _open(self) -> None:
        self._syncing = True
        try:
            ib, account = open_ib(self.cfg, self.endpoint, ib_factory=self._factory)
        finally:
            self._syncing = False
        self._ib = ib
        self.account_id = account
        ib.orderStatusEvent += self._on_status
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnect
        self._connected = True
        attempt, self._attempt = self._attempt, 0
        self._emit(Connected(self.clock.now(), attempt=attempt))
        self.connects += 1
        self._recover_orders()
        self._reconcile()

    def close(self) -> None:
        """Disconnect; orders at IB stay as they are."""
        self._closing = True
        if self._ib is not None:
            self._ib.disconnect()
        self._connected = False

    def _on_disconnect(self) -> None:
        if self._closing or not self._connected:
            return
        self._connected = False
        log.warning("lost the connection to IB at %s; reconnecting with backoff", self.endpoint)
        self._emit(Disconnected(self.clock.now(), reason=f"socket to {self.endpoint} closed"))
        self._attempt = 0
        self._next_retry = self.clock.monotonic() + self.cfg.ibkr.reconnect_initial_seconds

    def _backoff(self, attempt: int) -> float:
        c = self.cfg.ibkr
        return float(min(c.reconnect_initial_seconds * 2.0**attempt, c.reconnect_max_seconds))

    def _try_reconnect(self) -> None:
        if self._connected or self._closing or self._gave_up:
            return
        now = self.clock.monotonic()
        if now < self._next_retry:
            return
        self._attempt += 1
        try:
            if self._ib is not None:
                self._ib.disconnectedEvent -= self._on_disconnect
            self._open()
        except BrokerConfigError as err:
            # the gateway came back logged in to another account or mode: never trade on it
            self._gave_up = True
            self.halt(f"reconnecting stopped: {err}")
        except BrokerConnectionError as err:
            log.warning("reconnect attempt %d to %s failed: %s", self._attempt, self.endpoint, err)
            if self._attempt >= self.cfg.ibkr.reconnect_max_attempts:
                self._gave_up = True
                self.halt(
                    f"IB at {self.endpoint} unreachable after {self._attempt} reconnect "
                    f"attempts: {err}"
                )
                return
            self._next_retry = self.clock.monotonic() + self._backoff(self._attempt)

    # events ------------------------------------------------------------------------------

    def _emit(self, event: BrokerEvent) -> None:
        self._events.append(event)

    def pump(self, timeout: float = 0.0, until_event: bool = False) -> None:
        """Run the network for up to ``timeout`` seconds, reconnecting when disconnected.

        Events stay queued for :meth:`events`; with ``until_event`` it returns as soon as one
        is queued.
        """
        waited = 0.0
        step = 0.05
        while True:
            if self._connected and self._ib is not None:
                self._network(0.0)
            else:
                self._try_reconnect()
            if (until_event and self._events) or waited >= timeout:
                return
            pause = min(step, timeout - waited)
            self._network(pause)
            waited += pause

    def _network(self, seconds: float) -> None:
        """Run ib_async's event loop for ``seconds``; a socket failure it re-raises (its
        global error event cancels the running wait) is a disconnect, handled as one."""
        try:
            IB.sleep(seconds)
        except OSError as err:
            log.warning("the socket to IB at %s failed: %s", self.endpoint, err)
            self._on_disconnect()

    def events(self, timeout: float = 0.0) -> list[BrokerEvent]:
        """Run the network for up to ``timeout`` seconds (reconnecting if needed); drain."""
        self.pump(timeout, until_event=True)
        out = list(self._events)
        self._events.clear()
        return out

    def _on_status(self, trade: Trade) -> None:
        cid = trade.order.orderRef
        if not cid or self._syncing:
            return
        self._status_of(trade, recovered=False)

    def _status_of(self, trade: Trade, recovered: bool) -> None:
        cid = trade.order.orderRef
        st = trade.orderStatus
        code, text = 0, ""
        if trade.log and trade.log[-1].errorCode:
            code, text = trade.log[-1].errorCode, trade.log[-1].message
        try:
            state = ibkr_order_state(st.status, st.filled, st.remaining)
        except InputError as err:  # an unknown status is logged, never guessed
            log.error("order %s: %s", cid, err)
            return
        ended = state in (OrderState.CANCELLED, OrderState.INACTIVE)
        if ended and code not in _NOT_REJECTIONS and st.filled == 0:
            state = OrderState.REJECTED
        previous = self._states.get(cid)
        if previous is not None and previous[0] in TERMINAL_STATES:
            return
        if previous == (state, st.filled):
            return
        self._states[cid] = (state, st.filled)
        now = self.clock.now()
        if state == OrderState.REJECTED:
            self._emit(OrderRejected(now, client_order_id=cid, code=code, text=text))
        self._emit(
            OrderStatusChanged(
                now,
                client_order_id=cid,
                broker_order_id=str(trade.order.orderId or trade.order.permId),
                state=state,
                filled=st.filled,
                remaining=st.remaining,
                broker_status=st.status,
            )
        )

    def _on_commission(self, trade: Trade, fill: Fill, report: object) -> None:
        if self._syncing:
            return
        self._fill_event(fill, recovered=False)

    def _fill_event(self, fill: Fill, recovered: bool) -> None:
        ex = to_execution(fill)
        if ex.exec_id in self._emitted:
            return
        self._emitted.add(ex.exec_id)
        if self._ledger is not None and ex.exec_id not in self._ledger_ids:
            self._ledger[ex.symbol] = self._ledger.get(ex.symbol, 0.0) + ex.quantity
            self._ledger_ids.add(ex.exec_id)
        self._emit(FillEvent(self.clock.now(), execution=ex, recovered=recovered))

    def _on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        if code == _LINK_LOST:
            self._link_down = True
            self._emit(Disconnected(self.clock.now(), reason=f"IB error {code}: {text}"))
        elif code in _LINK_BACK and self._link_down:
            self._link_down = False
            self._emit(Connected(self.clock.now(), attempt=0))
            self._recover_orders()
            self._reconcile()

    # recovery and reconciliation ----------------------------------------------------------

    def _recover_orders(self) -> None:
        reported: set[str] = set()
        for trade in self.ib.trades():
            if trade.order.orderRef.startswith(OUR_PREFIX):
                reported.add(trade.order.orderRef)
                self._status_of(trade, recovered=True)
        reported |= {f.execution.orderRef for f in self.ib.fills()}
        # An order we sent that IB reports nowhere (not open, not completed, no execution)
        # never reached IB or is gone: IB's report is authoritative, so it is not working.
        # Its id stays known, so it is never resent; a new decision makes a new order.
        for cid, (state, filled) in list(self._states.items()):
            if state in TERMINAL_STATES or cid in reported:
                continue
            log.warning("order %s is not reported by IB after connecting; marked cancelled", cid)
            self._states[cid] = (OrderState.CANCELLED, filled)
            self._emit(
                OrderStatusChanged(
                    self.clock.now(),
                    client_order_id=cid,
                    broker_order_id="",
                    state=OrderState.CANCELLED,
                    filled=filled,
                    remaining=0.0,
                    broker_status="not reported by IB after reconnect",
                )
            )

    def _reconcile(self) -> None:
        ib = self.ib
        broker = {
            p.contract.symbol: p.position
            for p in ib.positions(self.account_id)
            if p.contract.secType == "STK"
        }
        execs = [to_execution(f) for f in ib.fills()]
        ours = {e.client_order_id for e in execs if e.client_order_id.startswith(OUR_PREFIX)}
        now = self.clock.now()
        if self.cursor is not None:
            since = self.cursor.last_execution_time()
            known_ids = set(self.cursor.known_execution_ids())
            fresh = [e for e in execs if since is None or e.time >= since or e.exec_id in known_ids]
            rec = reconcile(broker, self.cursor.known_positions(), fresh, known_ids, ours)
        elif self._ledger is None:
            self._ledger = dict(broker)
            self._ledger_ids = {e.exec_id for e in execs}
            self._emitted |= self._ledger_ids
            self._emit(
                ReconciliationDone(
                    now, positions=dict(broker), recovered_fills=0, open_orders=self._n_open()
                )
            )
            return
        else:
            rec = reconcile(broker, self._ledger, execs, self._ledger_ids, ours)
        fills_by_id = {f.execution.execId: f for f in ib.fills()}
        for e in rec.new_fills:
            if e.exec_id not in self._emitted:
                self._fill_event(fills_by_id[e.exec_id], recovered=True)
        if rec.explained:
            if self._ledger is not None:
                self._ledger = dict(broker)
                self._ledger_ids |= {e.exec_id for e in execs}
            self._emit(
                ReconciliationDone(
                    now,
                    positions=dict(rec.broker),
                    recovered_fills=len(rec.new_fills),
                    open_orders=self._n_open(),
                )
            )
        else:
            self.halt(rec.message())

    def _n_open(self) -> int:
        return sum(1 for t in self.ib.openTrades() if t.order.orderRef)

    # Broker protocol ---------------------------------------------------------------------

    @property
    def halted(self) -> str | None:
        """Why new trading is halted, or None."""
        return self._halted

    def halt(self, reason: str) -> None:
        """Halt new trading until a person resolves ``reason`` (recorded as an event)."""
        log.error("trading halted: %s", reason)
        self._halted = reason
        self._emit(TradingHalted(self.clock.now(), reason=reason))

    def known_client_order_ids(self) -> set[str]:
        """Every client order id IB reported (orders and executions) or this process sent."""
        refs = set(self._sent) | set(self._states)
        if self._ib is not None:
            refs |= {t.order.orderRef for t in self._ib.trades() if t.order.orderRef}
            refs |= {f.execution.orderRef for f in self._ib.fills() if f.execution.orderRef}
        return refs

    def _refuse(self, cid: str, reason: str) -> PlaceResult:
        log.warning("order %s refused: %s", cid, reason)
        self._emit(OrderRefused(self.clock.now(), client_order_id=cid, reason=reason))
        return PlaceResult(cid, sent=False, reason=reason)

    def place(self, request: OrderRequest) -> PlaceResult:
        """Send one order (SMART, USD, day; whole shares or fractions, see the module doc)
        unless it must be refused."""
        return self._place(request, flattening=False)

    def _place(self, request: OrderRequest, flattening: bool) -> PlaceResult:
        cid = request.client_order_id
        if cid in self.known_client_order_ids():
            return self._refuse(cid, f"client order id {cid} is already known to IB; not resent")
        if self._halted and not flattening:
            return self._refuse(cid, f"trading is halted: {self._halted}")
        if not self._connected or self._ib is None:
            return self._refuse(cid, f"not connected to IB at {self.endpoint}")
        if self._link_down:
            return self._refuse(cid, "the gateway has lost its connection to IB's servers")
        if request.symbol not in self.cfg.symbols:
            return self._refuse(
                cid, f"{request.symbol} is not among the configured symbols {self.cfg.symbols}"
            )
        fractional = self.cfg.ibkr.fractional_shares
        qty = round_quantity(request.quantity, MAX_QUANTITY_DECIMALS if fractional else 0)
        if qty == 0:
            return self._refuse(
                cid,
                f"quantity {request.quantity:g} rounds to zero "
                + (
                    f"in steps of {10.0**-MAX_QUANTITY_DECIMALS:g} shares"
                    if fractional
                    else "whole shares (ibkr.fractional_shares is off)"
                )
                + "; nothing sent",
            )
        action = "BUY" if qty > 0 else "SELL"
        # Whole shares go out as integers, as they always did ("10", not "10.0").
        size: float = abs(qty) if fractional else abs(int(qty))
        order: Order
        if request.order_type == OrderType.LIMIT:
            assert request.limit_price is not None
            order = LimitOrder(action, size, limit_to_tick(request.limit_price, qty > 0))
        else:
            order = MarketOrder(action, size)
        order.orderRef = cid
        order.account = self.account_id
        order.tif = "DAY"
        order.outsideRth = False
        trade = self.ib.placeOrder(stock(request.symbol), order)
        self._sent.add(cid)
        self._states[cid] = (OrderState.PENDING_SUBMIT, 0.0)
        self._emit(
            OrderStatusChanged(
                self.clock.now(),
                client_order_id=cid,
                broker_order_id=str(trade.order.orderId),
                state=OrderState.PENDING_SUBMIT,
                filled=0.0,
                remaining=float(abs(qty)),
                broker_status=trade.orderStatus.status,
            )
        )
        return PlaceResult(cid, sent=True, broker_order_id=str(trade.order.orderId))

    def cancel(self, client_order_id: str) -> bool:
        """Request a cancel of a working order this client placed."""
        for trade in self.ib.openTrades():
            if trade.order.orderRef != client_order_id:
                continue
            if trade.order.clientId != self.endpoint.client_id:
                self._refuse(
                    client_order_id,
                    f"order was placed by client id {trade.order.clientId}; only that client "
                    "can cancel it (broker flatten cancels every client's orders)",
                )
                return False
            self.ib.cancelOrder(trade.order)
            return True
        return False

    def open_orders(self) -> list[OrderSnapshot]:
        """Working orders IB reported to this client."""
        return [snapshot(t) for t in self.ib.openTrades()]

    def all_open_orders(self) -> list[OrderSnapshot]:
        """Working orders of every client and of TWS itself (an all-open-orders request)."""
        return [snapshot(t) for t in self.ib.reqAllOpenOrders()]

    def positions(self) -> list[Position]:
        """IB's positions of the account (authoritative)."""
        return [
            Position(p.contract.symbol, p.position, p.avgCost, p.account)
            for p in self.ib.positions(self.account_id)
            if p.position != 0
        ]

    def executions(self, since: datetime | None = None) -> list[Execution]:
        """Executions IB reports for today (an executions request), at or after ``since``."""
        fills = self.ib.reqExecutions()
        # ib_async answers with fresh fill objects; the commission report updates the fill it
        # stored first, so commissions are read from there
        stored = {f.execution.execId: f for f in self.ib.fills()}
        seen: dict[str, Execution] = {}
        for f in fills:
            ex = to_execution(stored.get(f.execution.execId, f))
            if since is None or ex.time >= since:
                seen.setdefault(ex.exec_id, ex)
        return sorted(seen.values(), key=lambda e: (e.time, e.exec_id))

    def account(self) -> AccountSummary:
        """Net liquidation and cash of the account, from IB's account updates."""
        values = {
            v.tag: v.value
            for v in self.ib.accountValues(self.account_id)
            if v.currency in ("USD", "BASE", "")
        }

        def number(tag: str) -> float:
            try:
                return float(values[tag])
            except (KeyError, ValueError):
                return math.nan

        return AccountSummary(
            account=self.account_id,
            paper=is_paper_account(self.account_id),
            net_liquidation=number("NetLiquidation"),
            cash=number("TotalCashValue"),
            extra={k: values[k] for k in ("AccountType",) if k in values},
        )

    def flatten(self, wait_seconds: float = 10.0) -> list[PlaceResult]:
        """Cancel every open order (all clients: a global cancel) and close every position.

        Closing orders are market orders with client order ids ``sw-flatten-<time>-<symbol>``;
        they are sent even when trading is halted (this is the emergency stop).
        """
        if not self._connected:
            held = self.positions() if self._ib is not None else []
            why = f"not connected to IB at {self.endpoint}: flatten after the reconnect"
            return [self._refuse(f"sw-flatten-{p.symbol}", why) for p in held] or [
                PlaceResult("sw-flatten", sent=False, reason=why)
            ]
        ib = self.ib
        ib.reqGlobalCancel()
        waited = 0.0
        while ib.openTrades() and waited < wait_seconds and self._connected:
            self._network(0.05)
            waited += 0.05
        if ib.openTrades():
            log.warning("%d orders still open after the global cancel", len(ib.openTrades()))
        stamp = self.clock.now().strftime("%Y%m%d%H%M%S")
        results = []
        for p in self.positions():
            req = OrderRequest(f"sw-flatten-{stamp}-{p.symbol}", p.symbol, -p.quantity)
            results.append(self._place(req, flattening=True))
        return results


def limit_to_tick(price: float, buy: bool, tick: float = PRICE_TICK) -> float:
    """A limit price on IB's price grid, never more aggressive than asked (buys round down)."""
    steps = price / tick
    # a price already on the grid must not move because of float noise
    nearest = round(steps)
    if abs(steps - nearest) < 1e-6:
        return round(nearest * tick, 10)
    return round((math.floor(steps) if buy else math.ceil(steps)) * tick, 10)


def to_execution(fill: Fill) -> Execution:
    """Our execution record of an ib_async fill (signed shares, commission when reported)."""
    ex = fill.execution
    signed = ex.shares if ex.side.upper() in ("BOT", "BUY") else -ex.shares
    report = fill.commissionReport
    when = ex.time if ex.time.tzinfo is not None else ex.time.replace(tzinfo=UTC)
    return Execution(
        exec_id=ex.execId,
        client_order_id=ex.orderRef,
        broker_order_id=str(ex.orderId or ex.permId),
        symbol=fill.contract.symbol,
        quantity=float(signed),
        price=float(ex.price),
        time=when,
        commission=float(report.commission) if report.execId else None,
        account=ex.acctNumber,
    )


def snapshot(trade: Trade) -> OrderSnapshot:
    """Our view of an ib_async trade."""
    o, st = trade.order, trade.orderStatus
    sign = 1.0 if o.action == "BUY" else -1.0
    limit = o.lmtPrice if o.orderType == "LMT" else None
    status = st.status if st.status in OrderStatus.ActiveStates | OrderStatus.DoneStates else ""
    state = ibkr_order_state(status or "PendingSubmit", st.filled, st.remaining)
    return OrderSnapshot(
        client_order_id=o.orderRef,
        broker_order_id=str(o.orderId or o.permId),
        symbol=trade.contract.symbol,
        quantity=sign * float(o.totalQuantity),
        order_type=OrderType.LIMIT if o.orderType == "LMT" else OrderType.MARKET,
        limit_price=float(limit) if limit is not None else None,
        state=state,
        filled=sign * float(st.filled),
        remaining=sign * float(st.remaining),
        avg_fill_price=float(st.avgFillPrice),
    )
