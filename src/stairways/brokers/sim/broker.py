"""The simulated broker: the market core's fills and costs behind the :class:`Broker` protocol.

It fills exactly like the training env and the replay evaluator, because it calls the same
functions (:func:`stairways.market.costs.fill_one` and the portfolio accounting of
:mod:`stairways.market.portfolio`):

- time moves one closed 1-minute bar at a time (:meth:`SimBroker.on_bars`, every symbol's bar
  of the minute together);
- a market order placed after bar ``k`` fills at the open of bar ``k + 1`` (plus any injected
  latency), with spread and impact computed from bar ``k``'s range volatility and volume (known
  when the order was sent), and the configured commission;
- a limit order fills at the first bar that trades through its limit: at the open when the open
  is already through it, otherwise at the limit; the cost-inclusive price never passes the limit;
- the portfolio is marked at every bar's close;
- :meth:`SimBroker.close_at_last_close` cancels every working order and closes every position at
  once at the last bar's close with that bar's costs: the env's closing step; :meth:`flatten`
  (the emergency stop) does the same behind the protocol.

Faults (:mod:`stairways.brokers.sim.faults`) inject rejects, partial fills, delayed
acknowledgements, latency and disconnects. The state (orders, executions, account) is written
to a SQLite file after every change, so a restarted process finds what it left; without a
state file (``state_path: null``) it lives in memory only and nothing is written.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from stairways.brokers.base import (
    AccountSummary,
    BrokerEvent,
    Connected,
    Disconnected,
    Execution,
    ExecutionCursor,
    FillEvent,
    MinuteBar,
    OrderRefused,
    OrderRejected,
    OrderSnapshot,
    OrderStatusChanged,
    PlaceResult,
    Position,
    ReconciliationDone,
    TradingHalted,
)
from stairways.brokers.errors import BrokerStateError
from stairways.brokers.orders import (
    ACTIVE_STATES,
    OrderRequest,
    OrderState,
    OrderType,
)
from stairways.brokers.reconcile import reconcile
from stairways.brokers.settings import SimConfig
from stairways.brokers.sim.faults import NO_FAULTS, FaultPlan
from stairways.brokers.sim.store import SimStore
from stairways.errors import InputError
from stairways.market.actions import round_quantity
from stairways.market.costs import STEPS, cost_params, fill_one
from stairways.market.portfolio import PF_EQUITY, Portfolio, pf_fill, pf_mark

log = logging.getLogger(__name__)

BAR = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LN2_FACTOR = 2.0 * np.sqrt(np.log(2.0))  # parkinson_sigma's divisor, the same expression


@dataclass
class _Order:
    """A simulated order and everything needed to fill it later (persisted as JSON)."""

    seq: int
    request: OrderRequest
    state: OrderState
    decision_bar: int
    accept_bar: int
    due_bar: int
    sigma: float
    volume: float
    chunks: list[float]
    filled: float = 0.0
    avg_price: float = 0.0

    @property
    def remaining(self) -> float:
        return self.request.quantity - self.filled

    def snapshot(self) -> OrderSnapshot:
        r = self.request
        return OrderSnapshot(
            client_order_id=r.client_order_id,
            broker_order_id=str(self.seq),
            symbol=r.symbol,
            quantity=r.quantity,
            order_type=r.order_type,
            limit_price=r.limit_price,
            state=self.state,
            filled=self.filled,
            remaining=self.remaining,
            avg_fill_price=self.avg_price,
        )

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["request"] = asdict(self.request)
        body["state"] = self.state.value
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> _Order:
        req = dict(body["request"])
        req["order_type"] = OrderType(req["order_type"])
        return cls(**{**body, "request": OrderRequest(**req), "state": OrderState(body["state"])})


@dataclass
class _Account:
    """Everything persisted besides orders and executions."""

    bar_index: int = 0
    next_seq: int = 1
    next_exec: int = 1
    last_bars: dict[str, dict[str, Any]] = field(default_factory=dict)
    rule_uses: dict[str, int] = field(default_factory=dict)
    halted: str | None = None
    disconnected: bool = False


def _bar_json(bar: MinuteBar) -> dict[str, Any]:
    return {**asdict(bar), "start": bar.start.isoformat()}


def _bar_from_json(body: dict[str, Any]) -> MinuteBar:
    return MinuteBar(**{**body, "start": datetime.fromisoformat(body["start"])})


class SimBroker:
    """A simulated broker on the market core (see the module docstring).

    :param cfg: capital, costs, account name and state file
    :param symbols: tickers the account trades, in portfolio order
    :param faults: faults to inject (none by default)
    :param cursor: what the journal knows, for reconciliation at connect and reconnect
    """

    name = "sim"

    def __init__(
        self,
        cfg: SimConfig,
        symbols: Sequence[str],
        *,
        faults: FaultPlan = NO_FAULTS,
        cursor: ExecutionCursor | None = None,
    ) -> None:
        if not symbols or len(set(symbols)) != len(symbols):
            raise InputError(f"the simulated broker needs distinct symbols, got {symbols}")
        self.cfg = cfg
        self.symbols = tuple(symbols)
        self.faults = faults
        self.cursor = cursor
        self._index = {s: j for j, s in enumerate(self.symbols)}
        self._params = cost_params(cfg.costs)
        self._store: SimStore | None = None
        self._events: deque[BrokerEvent] = deque()
        self._held: list[BrokerEvent] = []
        self._reset_state()

    # state -------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._pf = Portfolio(1, len(self.symbols), self.cfg.starting_capital)
        self._sigma_buf = np.zeros(1, dtype=np.float64)
        self._orders: dict[str, _Order] = {}
        # The orders that may still be working, oldest first: every order enters it with
        # _orders and leaves it (in _active) once finished, so a bar looks at the working
        # orders only, not at every order of the session.
        self._working: dict[str, _Order] = {}
        self._executions: list[Execution] = []
        self._acct = _Account()
        self._last: dict[str, MinuteBar] = {}  # the last bars, parsed (_acct keeps their JSON)
        self._now = _EPOCH  # now(): the end of the latest of _last's bars
        self._closes = np.zeros(len(self.symbols), dtype=np.float64)

    def _identity(self) -> dict[str, Any]:
        return {
            "symbols": list(self.symbols),
            "starting_capital": self.cfg.starting_capital,
            "costs": self.cfg.costs.model_dump(),
            "account": self.cfg.account,
        }

    def _load(self, store: SimStore) -> None:
        self._reset_state()
        if not store.check_identity(self._identity()):
            return
        acct = store.get_meta("account")
        self._acct = _Account(**acct)
        self._last = {s: _bar_from_json(b) for s, b in self._acct.last_bars.items()}
        self._set_now()
        pf = store.get_meta("portfolio")
        self._pf.state[0, :] = np.asarray(pf["state"], dtype=np.float64)
        self._pf.shares[0, :] = np.asarray(pf["shares"], dtype=np.float64)
        self._pf.avg_cost[0, :] = np.asarray(pf["avg_cost"], dtype=np.float64)
        for body in store.orders():
            order = _Order.from_json(body)
            self._orders[order.request.client_order_id] = order
            self._working[order.request.client_order_id] = order
        for body in store.executions():
            self._executions.append(
                Execution(**{**body, "time": datetime.fromisoformat(body["time"])})
            )
        log.info(
            "simulated broker state loaded from %s: %d orders, %d executions, bar %d",
            store.path,
            len(self._orders),
            len(self._executions),
            self._acct.bar_index,
        )

    def _save(
        self,
        orders: Sequence[_Order] = (),
        executions: Sequence[Execution] = (),
        *,
        identity: bool = False,
    ) -> None:
        store = self._store
        if store is None or self.cfg.state_path is None:
            return  # no state file: the state lives in memory only
        with store.transaction() as db:
            if identity:  # once, when the file is opened (a load checks it, it never changes)
                store.put_meta(db, "identity", self._identity())
            store.put_meta(db, "account", asdict(self._acct))
            store.put_meta(
                db,
                "portfolio",
                {
                    "state": self._pf.state[0].tolist(),
                    "shares": self._pf.shares[0].tolist(),
                    "avg_cost": self._pf.avg_cost[0].tolist(),
                },
            )
            for o in orders:
                store.put_order(db, o.request.client_order_id, o.seq, o.to_json())
            for ex in executions:
                body = {**asdict(ex), "time": ex.time.isoformat()}
                store.put_execution(db, ex.exec_id, int(ex.exec_id.split("-")[1]), body)

    # time --------------------------------------------------------------------------------

    def _last_bar(self, symbol: str) -> MinuteBar | None:
        return self._last.get(symbol)

    def now(self) -> datetime:
        """Simulated time: the end of the last bar seen (the epoch before the first)."""
        return self._now

    def _set_now(self) -> None:
        """Recompute :meth:`now` after the last bars changed."""
        starts = [b.start for b in self._last.values()]
        self._now = max(starts) + BAR if starts else _EPOCH

    def _active(self) -> list[_Order]:
        """Working orders (ACTIVE_STATES), oldest first; the finished ones leave _working."""
        working = self._working
        out = [o for o in working.values() if o.state in ACTIVE_STATES]
        if len(out) != len(working):
            self._working = {o.request.client_order_id: o for o in out}
        return out

    def _emit(self, event: BrokerEvent) -> None:
        # While disconnected, what the broker does (status changes, fills, rejects) reaches us
        # only after the reconnect; what we decide ourselves (refusals, halts) is immediate.
        ours = (Disconnected, Connected, OrderRefused, TradingHalted)
        if self._acct.disconnected and not isinstance(event, ours):
            self._held.append(event)
        else:
            self._events.append(event)

    # Broker protocol ---------------------------------------------------------------------

    def connect(self) -> None:
        """Open the state file (if any), load what it holds and reconcile with the cursor."""
        if self._store is None:
            self._store = SimStore(self.cfg.state_path)
            self._load(self._store)
            self._save(identity=True)
            self._warm_kernels()
        self._events.append(Connected(self.now(), attempt=0))
        self._reconcile()

    def _warm_kernels(self) -> None:
        """Load the fill and mark kernels (numba's cache, 10 ms each in a fresh process, or a
        compile) now, on a scratch account, rather than inside the first bar or order."""
        pf = Portfolio(1, len(self.symbols), self.cfg.starting_capital)
        price, commission, spread, impact = fill_one(1.0, 100.0, 0.001, 1_000.0, self._params)
        pf_fill(
            pf.state[0], pf.shares[0], pf.avg_cost[0], 0, 1.0, price, commission, spread, impact
        )
        pf_mark(pf.state[0], pf.shares[0], pf.avg_cost[0], np.full(len(self.symbols), 100.0))

    def close(self) -> None:
        """Close the state file; working orders stay in it."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def _require_open(self) -> None:
        if self._store is None:
            raise BrokerStateError("the simulated broker is not connected; call connect() first")

    @property
    def halted(self) -> str | None:
        """Why new trading is halted, or None."""
        return self._acct.halted

    def halt(self, reason: str) -> None:
        """Halt new trading (an emergency stop or an unexplained difference)."""
        self._acct.halted = reason
        self._emit(TradingHalted(self.now(), reason=reason))
        self._save()

    def _refuse(self, client_order_id: str, reason: str) -> PlaceResult:
        log.warning("order %s refused: %s", client_order_id, reason)
        self._emit(OrderRefused(self.now(), client_order_id=client_order_id, reason=reason))
        return PlaceResult(client_order_id, sent=False, reason=reason)

    def _use_rule(self, kind: str, rules: Sequence[Any], client_order_id: str) -> Any:
        for k, rule in enumerate(rules):
            key = f"{kind}{k}"
            if rule.matches(client_order_id) and self._acct.rule_uses.get(key, 0) < rule.count:
                self._acct.rule_uses[key] = self._acct.rule_uses.get(key, 0) + 1
                return rule
        return None

    def place(self, request: OrderRequest) -> PlaceResult:
        """Accept an order for a later bar, or refuse it with a reason (also an event)."""
        self._require_open()
        cid = request.client_order_id
        known = self._orders.get(cid)
        if known is not None:
            return self._refuse(
                cid, f"client order id {cid} is already known to the broker ({known.state})"
            )
        if self._acct.halted:
            return self._refuse(cid, f"trading is halted: {self._acct.halted}")
        if self._acct.disconnected:
            return self._refuse(cid, "not connected to the simulated broker")
        if request.symbol not in self._index:
            return self._refuse(cid, f"symbol {request.symbol} is not traded by this account")
        decimals = self.cfg.quantity_decimals
        qty = round_quantity(request.quantity, decimals)
        step = "whole shares" if decimals == 0 else f"steps of {10.0**-decimals:g} shares"
        if qty == 0.0:
            return self._refuse(
                cid, f"quantity {request.quantity:g} rounds to zero in {step}; nothing sent"
            )
        if qty != request.quantity:
            log.info("order %s: %g shares rounded to %g (%s)", cid, request.quantity, qty, step)
            request = OrderRequest(
                cid,
                request.symbol,
                qty,
                request.order_type,
                request.limit_price,
                request.decision_id,
            )
        last = self._last_bar(request.symbol)
        if last is None:
            return self._refuse(cid, "no bar seen yet; orders are priced from the last closed bar")
        k = self._acct.bar_index - 1
        partial = self._use_rule("partial", self.faults.partial_fills, cid)
        chunks = _chunks(qty, partial.fractions if partial is not None else (1.0,), decimals)
        order = _Order(
            seq=self._acct.next_seq,
            request=request,
            state=OrderState.PENDING_SUBMIT,
            decision_bar=k,
            accept_bar=k + self.faults.ack_delay_bars,
            due_bar=k + 1 + self.faults.extra_latency_bars,
            sigma=float(self._sigma(last)),
            volume=float(last.volume),
            chunks=chunks,
        )
        self._acct.next_seq += 1
        self._orders[cid] = order
        self._working[cid] = order
        now = self.now()
        self._status(order, now)
        reject = self._use_rule("reject", self.faults.rejects, cid)
        if reject is not None:
            order.state = OrderState.REJECTED
            self._emit(OrderRejected(now, client_order_id=cid, code=reject.code, text=reject.text))
            self._status(order, now)
        elif order.accept_bar <= k:
            order.state = OrderState.ACCEPTED
            self._status(order, now)
        self._save([order])
        return PlaceResult(cid, sent=True, broker_order_id=str(order.seq))

    def cancel(self, client_order_id: str) -> bool:
        """Cancel a working order at once; False when no working order has that id."""
        self._require_open()
        order = self._orders.get(client_order_id)
        if order is None or order.state not in ACTIVE_STATES:
            return False
        if self._acct.disconnected:
            self._refuse(client_order_id, "cannot cancel: not connected to the simulated broker")
            return False
        order.state = OrderState.CANCELLED
        self._status(order, self.now())
        self._save([order])
        return True

    def open_orders(self) -> list[OrderSnapshot]:
        """Working orders, oldest first."""
        self._require_open()
        return [o.snapshot() for o in self._active()]

    def all_orders(self) -> list[OrderSnapshot]:
        """Every order the broker knows, oldest first (working and finished)."""
        self._require_open()
        return [o.snapshot() for o in self._orders.values()]

    def positions(self) -> list[Position]:
        """Non-zero positions with their average cost."""
        self._require_open()
        out = []
        for j, s in enumerate(self.symbols):
            q = float(self._pf.shares[0, j])
            if q != 0.0:
                out.append(Position(s, q, float(self._pf.avg_cost[0, j]), self.cfg.account))
        return out

    def executions(self, since: datetime | None = None) -> list[Execution]:
        """Executions at or after ``since``."""
        self._require_open()
        return [e for e in self._executions if since is None or e.time >= since]

    def account(self) -> AccountSummary:
        """Equity at the last mark and cash."""
        self._require_open()
        return AccountSummary(
            account=self.cfg.account,
            paper=True,
            net_liquidation=float(self._pf.state[0, PF_EQUITY]),
            cash=float(self._pf.cash[0]),
        )

    def events(self, timeout: float = 0.0) -> list[BrokerEvent]:
        """Events since the last call (the simulator never waits: time moves with bars)."""
        out = list(self._events)
        self._events.clear()
        return out

    @property
    def portfolio(self) -> Portfolio:
        """The market-core portfolio of the account (read it, do not change it)."""
        return self._pf

    # bars --------------------------------------------------------------------------------

    def _sigma(self, bar: MinuteBar) -> float:
        if self.cfg.costs.impact_sigma is not None:
            return float(self.cfg.costs.impact_sigma)
        hi, lo = max(bar.high, bar.low), min(bar.high, bar.low)
        # parkinson_sigma of the one bar, with its refusal and its float64 arithmetic (the
        # ratio and numpy's log on a one-element buffer) without building two arrays
        if lo <= 0.0 or hi < lo:
            raise InputError("parkinson_sigma needs 0 < low <= high on every bar")
        buf = self._sigma_buf
        buf[0] = hi / lo
        np.log(buf, out=buf)
        return float(buf[0] / _LN2_FACTOR)

    def on_bars(self, bars: Sequence[MinuteBar] | Mapping[str, MinuteBar]) -> list[Execution]:
        """Advance one minute: fill what is due at the bars' opens, then mark at the closes.

        :param bars: one closed bar per traded symbol, all of the same minute
        """
        self._require_open()
        by_symbol = bars if isinstance(bars, Mapping) else {b.symbol: b for b in bars}
        missing = [s for s in self.symbols if s not in by_symbol]
        if missing:
            raise InputError(f"the simulated broker needs a bar of every symbol; missing {missing}")
        starts = {b.start for b in by_symbol.values()}
        if len(starts) != 1:
            raise InputError(f"bars of one step must share their start, got {sorted(starts)}")
        b = self._acct.bar_index
        start = starts.pop()
        self._connection_at(b, start)
        changed: list[_Order] = []
        fills: list[Execution] = []
        # One pass over the orders: accept what is due, and collect what may fill (a fill
        # changes only its own order, so the symbol-by-symbol pass below sees the states the
        # former pass over every order per symbol saw).
        due: list[_Order] = []
        for order in self._active() if self._working else ():
            state = order.state
            if state == OrderState.PENDING_SUBMIT:
                if b < order.accept_bar:
                    continue
                order.state = state = OrderState.ACCEPTED
                self._status(order, start)
                changed.append(order)
            if (state == OrderState.ACCEPTED or state == OrderState.PARTIALLY_FILLED) and (
                b >= order.due_bar
            ):
                due.append(order)
        for symbol in self.symbols if due else ():
            bar = by_symbol[symbol]
            for order in due:
                if order.request.symbol != symbol:
                    continue
                ex = self._try_fill(order, bar)
                if ex is not None:
                    fills.append(ex)
                    if order not in changed:
                        changed.append(order)
        closes = self._closes
        keep = self.cfg.state_path is not None
        for j, symbol in enumerate(self.symbols):
            bar = by_symbol[symbol]
            self._last[symbol] = bar
            closes[j] = bar.close
            if keep:
                self._acct.last_bars[symbol] = _bar_json(bar)
        self._set_now()
        # Portfolio.mark of the one account: pf_mark on its row (no batch to broadcast)
        pf = self._pf
        pf_mark(pf.state[0], pf.shares[0], pf.avg_cost[0], closes)
        self._acct.bar_index = b + 1
        self._save(changed, fills)
        return fills

    def _connection_at(self, b: int, when: datetime) -> None:
        down = bool(self.faults.disconnects) and self.faults.disconnected_at(b)
        if down and not self._acct.disconnected:
            self._acct.disconnected = True
            self._events.append(Disconnected(when, reason="simulated disconnect"))
        elif not down and self._acct.disconnected:
            self._acct.disconnected = False
            self._events.append(Connected(when, attempt=1))
            held, self._held = self._held, []
            for ev in held:
                if isinstance(ev, FillEvent):
                    ev = FillEvent(ev.time, execution=ev.execution, recovered=True)
                self._events.append(ev)
            self._reconcile()

    def _try_fill(self, order: _Order, bar: MinuteBar) -> Execution | None:
        qty = order.chunks[0]
        ref = bar.open
        limit = order.request.limit_price
        if order.request.order_type == OrderType.LIMIT and limit is not None:
            if qty > 0 and bar.open > limit:
                if bar.low > limit:
                    return None
                ref = limit
            elif qty < 0 and bar.open < limit:
                if bar.high < limit:
                    return None
                ref = limit
        price, commission, spread, impact = fill_one(
            qty, ref, order.sigma, order.volume, self._params
        )
        if limit is not None:
            capped = min(price, limit) if qty > 0 else max(price, limit)
            if capped != price:
                inside = abs(capped - ref) * abs(qty)
                total = spread + impact
                spread, impact = (
                    (inside * spread / total, inside * impact / total) if total else (0.0, 0.0)
                )
                price = capped
        j = self._index[order.request.symbol]
        # One fill of one ticker: the market core's pf_fill on the account's row, with the
        # checks Portfolio.fill makes on a batch (Portfolio.fill of a one-hot batch calls
        # pf_fill for this ticker and nothing for the zeros).
        if abs(qty * STEPS - round(qty * STEPS)) > 1e-6:
            raise InputError(
                f"fill quantities must be whole shares or steps of {1.0 / STEPS:g} shares"
            )
        if commission < 0.0:
            raise InputError("commissions must not be negative")
        pf = self._pf
        pf_fill(
            pf.state[0],
            pf.shares[0],
            pf.avg_cost[0],
            j,
            float(qty),
            float(price),
            float(commission),
            float(spread),
            float(impact),
        )
        order.chunks.pop(0)
        total_filled = order.filled + qty
        order.avg_price = (order.avg_price * order.filled + price * qty) / total_filled
        order.filled = total_filled
        order.state = OrderState.FILLED if not order.chunks else OrderState.PARTIALLY_FILLED
        ex = Execution(
            exec_id=f"SIM-{self._acct.next_exec:08d}",
            client_order_id=order.request.client_order_id,
            broker_order_id=str(order.seq),
            symbol=order.request.symbol,
            quantity=qty,
            price=float(price),
            time=bar.start,
            commission=float(commission),
            account=self.cfg.account,
        )
        self._acct.next_exec += 1
        self._executions.append(ex)
        self._emit(FillEvent(bar.start, execution=ex))
        self._status(order, bar.start)
        return ex

    def _status(self, order: _Order, when: datetime) -> None:
        self._emit(
            OrderStatusChanged(
                when,
                client_order_id=order.request.client_order_id,
                broker_order_id=str(order.seq),
                state=order.state,
                filled=order.filled,
                remaining=order.remaining,
            )
        )

    def flatten(self) -> list[PlaceResult]:
        """Emergency stop: cancel every working order and close every position now.

        The simulated market has no later price than the last close, so the closing orders
        fill there at once (see :meth:`close_at_last_close`); they go out even when halted.
        """
        return [
            PlaceResult(e.client_order_id, sent=True, broker_order_id=e.broker_order_id)
            for e in self.close_at_last_close()
        ]

    def close_at_last_close(self) -> list[Execution]:
        """Cancel every working order and close every position at the last bar's close.

        The closing fills use the last bar's close, range volatility and volume, like the
        env's closing step, so a simulated session ends exactly as the replay does.
        """
        self._require_open()
        changed = []
        for order in self._active():
            if order.state in ACTIVE_STATES:
                order.state = OrderState.CANCELLED
                self._status(order, self.now())
                changed.append(order)
        fills: list[Execution] = []
        for j, symbol in enumerate(self.symbols):
            shares = float(self._pf.shares[0, j])
            if shares == 0.0:
                continue
            last = self._last_bar(symbol)
            if last is None:
                raise BrokerStateError(f"a position in {symbol} without a bar to price it")
            seq = self._acct.next_seq
            self._acct.next_seq += 1
            stamp = self.now().strftime("%Y%m%dT%H%M")
            req = OrderRequest(f"sw-flatten-{stamp}-{seq}", symbol, -shares)
            order = _Order(
                seq=seq,
                request=req,
                state=OrderState.ACCEPTED,
                decision_bar=self._acct.bar_index - 1,
                accept_bar=self._acct.bar_index - 1,
                due_bar=self._acct.bar_index - 1,
                sigma=self._sigma(last),
                volume=float(last.volume),
                chunks=[-shares],
            )
            self._orders[req.client_order_id] = order
            self._working[req.client_order_id] = order
            close_bar = MinuteBar(symbol, last.start, last.close, last.close, last.close, 0, 0)
            ex = self._try_fill(order, close_bar)
            if ex is not None:
                fills.append(ex)
            changed.append(order)
        marks = [self._last_bar(s) for s in self.symbols]
        if all(m is not None for m in marks):
            # Portfolio.mark of the one account: pf_mark on its row, as on_bars does
            pf = self._pf
            closes = np.array([m.close for m in marks if m is not None], dtype=np.float64)
            pf_mark(pf.state[0], pf.shares[0], pf.avg_cost[0], closes)
        self._save(changed, fills)
        return fills

    # reconciliation ----------------------------------------------------------------------

    def _reconcile(self) -> None:
        if self.cursor is None:
            return
        rec = reconcile(
            {p.symbol: p.quantity for p in self.positions()},
            self.cursor.known_positions(),
            self._executions,
            self.cursor.known_execution_ids(),
            is_ours=self._orders.keys(),
        )
        now = self.now()
        for f in rec.new_fills:
            self._events.append(FillEvent(now, execution=f, recovered=True))
        if rec.explained:
            self._events.append(
                ReconciliationDone(
                    now,
                    positions=dict(rec.broker),
                    recovered_fills=len(rec.new_fills),
                    open_orders=len(self.open_orders()),
                )
            )
        else:
            self.halt(rec.message())


def _chunks(qty: float, fractions: Sequence[float], decimals: int = 0) -> list[float]:
    """Chunks of ``qty`` in the given fractions, in the broker's quantity steps (whole shares
    or fractional steps); the last takes the rest."""
    out: list[float] = []
    done = 0.0
    for f in fractions[:-1]:
        part = round_quantity(qty * f, decimals)
        if part != 0.0:
            out.append(part)
            done += part
    rest = round(qty - done, decimals)
    if rest != 0.0:
        out.append(rest)
    return out
