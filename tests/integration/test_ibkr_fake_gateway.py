"""The real ib_async client, through our IBKR adapter, against the fake IB Gateway on loopback.

Every test runs at two server versions (the openOrder, completedOrder, execDetails and error
layouts differ between them). No test contacts IB; every wait is bounded.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stairways.brokers.base import (
    BrokerEvent,
    Connected,
    Disconnected,
    FillEvent,
    OrderRefused,
    OrderRejected,
    OrderStatusChanged,
    ReconciliationDone,
    TradingHalted,
)
from stairways.brokers.errors import BrokerConfigError, BrokerConnectionError
from stairways.brokers.ibkr.adapter import IbkrBroker
from stairways.brokers.orders import OrderRequest, OrderState, OrderType
from stairways.brokers.settings import BrokerConfig
from tests.fakes.ib_gateway import Accept, FakeIBGateway, RejectOrder, Swallow

pytestmark = pytest.mark.timeout(60)

SERVER_VERSIONS = (165, 178)


def broker_config(port: int, **ibkr: Any) -> BrokerConfig:
    """A paper configuration pointing at the fake gateway, with short timeouts."""
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "connect_timeout_seconds": 3.0,
        "request_timeout_seconds": 5.0,
        "reconnect_initial_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
        "reconnect_max_attempts": 5,
        **ibkr,
    }
    return BrokerConfig.model_validate({"kind": "ibkr", "ibkr": settings})


@pytest.fixture(params=SERVER_VERSIONS, ids=[f"server{v}" for v in SERVER_VERSIONS])
def gateway(request: pytest.FixtureRequest) -> Iterator[FakeIBGateway]:
    with FakeIBGateway(server_version=request.param) as gw:
        yield gw


@pytest.fixture
def broker(gateway: FakeIBGateway) -> Iterator[IbkrBroker]:
    b = IbkrBroker(broker_config(gateway.port))
    yield b
    b.close()


def collect(
    broker: IbkrBroker,
    until: Callable[[list[BrokerEvent]], bool],
    timeout: float = 15.0,
) -> list[BrokerEvent]:
    """Events until ``until`` holds for everything collected, or fail after ``timeout``."""
    out: list[BrokerEvent] = []
    for _ in range(int(timeout / 0.05)):
        out.extend(broker.events(0.05))
        if until(out):
            return out
    raise AssertionError(f"condition not met within {timeout} s; events: {out}")


def states_of(events: list[BrokerEvent], cid: str) -> list[OrderState]:
    return [
        e.state for e in events if isinstance(e, OrderStatusChanged) and e.client_order_id == cid
    ]


def fills_of(events: list[BrokerEvent]) -> list[FillEvent]:
    return [e for e in events if isinstance(e, FillEvent)]


def test_connect_when_gateway_up_then_syncs_and_reconciles(
    gateway: FakeIBGateway, broker: IbkrBroker
) -> None:
    gateway.set_position("MSFT", 5, 400.0)
    broker.connect()
    events = broker.events()
    assert isinstance(events[0], Connected)
    done = [e for e in events if isinstance(e, ReconciliationDone)]
    assert done and done[0].positions == {"MSFT": 5.0}
    assert broker.account_id == "DU1234567"
    sent = {int(f[0]) for f in gateway.messages_from(11)}
    # startApi, positions, open orders, completed orders, account updates (+multi), executions
    assert {71, 61, 5, 99, 6, 76, 7} <= sent
    summary = broker.account()
    assert summary.paper and summary.net_liquidation == 1_000_000.0
    assert [(p.symbol, p.quantity) for p in broker.positions()] == [("MSFT", 5.0)]


def test_order_when_filled_in_two_parts_then_states_fills_and_commissions_echo_order_ref(
    gateway: FakeIBGateway, broker: IbkrBroker
) -> None:
    gateway.plan("*", Accept(fills=((3, 120.0), (7, 120.5)), commission_per_share=0.2))
    broker.connect()
    broker.events()
    req = OrderRequest.from_decision("d-0001", "NVDA", 10)
    result = broker.place(req)
    assert result.sent
    events = collect(
        broker,
        lambda ev: (
            len(fills_of(ev)) == 2 and OrderState.FILLED in states_of(ev, req.client_order_id)
        ),
    )
    assert states_of(events, req.client_order_id) == [
        OrderState.PENDING_SUBMIT,
        OrderState.ACCEPTED,
        OrderState.PARTIALLY_FILLED,
        OrderState.FILLED,
    ]
    fills = [f.execution for f in fills_of(events)]
    assert [(f.quantity, f.price, f.commission) for f in fills] == [
        (3.0, 120.0, 1.0),  # 3 * 0.2 = 0.6, below the 1.00 minimum
        (7.0, 120.5, 1.4),
    ]
    assert {f.client_order_id for f in fills} == {req.client_order_id}
    placed = gateway.messages_from(11, 3)[0]
    assert placed[26] == req.client_order_id  # orderRef on the wire
    # contract fields 2..13: exchange at 9, currency at 11; then action, quantity, type
    assert (placed[4], placed[9], placed[11], placed[16], placed[17], placed[18]) == (
        "STK", "SMART", "USD", "BUY", "10", "MKT"
    )  # fmt: skip
    assert [(p.symbol, p.quantity) for p in broker.positions()] == [("NVDA", 10.0)]
    reported = broker.executions()  # an executions request: the same two, not four
    assert [(e.exec_id, e.commission) for e in reported] == [
        (f.exec_id, f.commission) for f in fills
    ]
    # the same decision again is never sent
    again = broker.place(req)
    assert not again.sent and "already known" in again.reason
    assert len(gateway.messages_from(11, 3)) == 1


def test_order_when_broker_rejects_then_rejected_event_with_code(
    gateway: FakeIBGateway, broker: IbkrBroker
) -> None:
    gateway.plan("*", RejectOrder(code=201, text="Order rejected - reason:NO TRADING PERMISSION"))
    broker.connect()
    broker.events()
    req = OrderRequest.from_decision("d-rej", "MSFT", -4, OrderType.LIMIT, 405.501)
    assert broker.place(req).sent
    events = collect(broker, lambda ev: OrderState.REJECTED in states_of(ev, req.client_order_id))
    rejects = [e for e in events if isinstance(e, OrderRejected)]
    assert [(r.client_order_id, r.code) for r in rejects] == [(req.client_order_id, 201)]
    assert "NO TRADING PERMISSION" in rejects[0].text
    assert states_of(events, req.client_order_id)[-1] == OrderState.REJECTED
    placed = gateway.messages_from(11, 3)[0]
    # a sell limit off the cent grid goes up to the next cent, never below what was asked
    assert (placed[16], placed[17], placed[18], placed[19]) == ("SELL", "4", "LMT", "405.51")


def test_cancel_when_order_working_then_cancelled(
    gateway: FakeIBGateway, broker: IbkrBroker
) -> None:
    gateway.plan("*", Accept(fills=None))
    broker.connect()
    req = OrderRequest.from_decision("d-c", "NVDA", 2, OrderType.LIMIT, 100.0)
    broker.place(req)
    collect(broker, lambda ev: OrderState.ACCEPTED in states_of(ev, req.client_order_id))
    assert [o.client_order_id for o in broker.open_orders()] == [req.client_order_id]
    assert broker.cancel(req.client_order_id)
    events = collect(broker, lambda ev: OrderState.CANCELLED in states_of(ev, req.client_order_id))
    assert not [e for e in events if isinstance(e, OrderRejected)]
    assert broker.open_orders() == []
    assert not broker.cancel(req.client_order_id)


def test_intent_when_rounding_to_zero_shares_then_refused_without_sending(
    gateway: FakeIBGateway, broker: IbkrBroker
) -> None:
    broker.connect()
    broker.events()
    result = broker.place(OrderRequest.from_decision("d-z", "NVDA", 0.4))
    assert not result.sent and "rounds to zero whole shares" in result.reason
    refused = [e for e in broker.events() if isinstance(e, OrderRefused)]
    assert len(refused) == 1
    assert gateway.messages_from(11, 3) == []
    fractional = broker.place(OrderRequest.from_decision("d-f", "NVDA", 2.7))
    assert fractional.sent
    collect(broker, lambda ev: OrderState.ACCEPTED in states_of(ev, fractional.client_order_id))
    assert gateway.messages_from(11, 3)[0][17] == "2"


def test_socket_drop_when_fill_happens_while_down_then_reconnects_and_recovers_fill(
    gateway: FakeIBGateway, broker: IbkrBroker
) -> None:
    gateway.plan("*", Accept(fills=None))
    broker.connect()
    req = OrderRequest.from_decision("d-drop", "NVDA", 6)
    broker.place(req)
    collect(broker, lambda ev: OrderState.ACCEPTED in states_of(ev, req.client_order_id))
    gateway.drop_connections()
    down = collect(broker, lambda ev: any(isinstance(e, Disconnected) for e in ev))
    assert broker.place(OrderRequest.from_decision("d-while-down", "NVDA", 1)).sent is False
    gateway.fill_working(req.client_order_id, 6, 121.0)
    events = down + collect(broker, lambda ev: any(isinstance(e, ReconciliationDone) for e in ev))
    assert any(isinstance(e, Connected) and e.attempt >= 1 for e in events)
    recovered = [f for f in fills_of(events) if f.recovered]
    assert [(f.execution.client_order_id, f.execution.quantity) for f in recovered] == [
        (req.client_order_id, 6.0)
    ]
    assert states_of(events, req.client_order_id)[-1] == OrderState.FILLED
    assert broker.halted is None
    assert len(gateway.messages_from(11, 71)) == 2  # two startApi: connect and reconnect


def test_reconnect_when_ib_does_not_know_a_sent_order_then_cancelled_and_never_resent(
    gateway: FakeIBGateway, broker: IbkrBroker
) -> None:
    gateway.plan("d-lost", Swallow())
    broker.connect()
    lost = OrderRequest.from_decision("d-lost", "NVDA", 3)
    assert broker.place(lost).sent
    broker.events(0.2)
    gateway.drop_connections()
    events = collect(broker, lambda ev: any(isinstance(e, ReconciliationDone) for e in ev))
    last = [e for e in events if isinstance(e, OrderStatusChanged)][-1]
    assert (last.client_order_id, last.state) == (lost.client_order_id, OrderState.CANCELLED)
    assert "not reported by IB" in last.broker_status
    again = broker.place(lost)
    assert not again.sent and "already known" in again.reason
    assert broker.halted is None


def test_reconnect_when_position_changed_unexplained_then_trading_halts_with_difference(
    gateway: FakeIBGateway, broker: IbkrBroker
) -> None:
    broker.connect()
    broker.events()
    gateway.drop_connections()
    collect(broker, lambda ev: any(isinstance(e, Disconnected) for e in ev))
    gateway.set_position("NVDA", 25, 119.0)
    events = collect(broker, lambda ev: any(isinstance(e, TradingHalted) for e in ev))
    halt = next(e for e in events if isinstance(e, TradingHalted))
    assert "NVDA: broker holds 25" in halt.reason and "difference +25" in halt.reason
    refused = broker.place(OrderRequest.from_decision("d-after-halt", "NVDA", 1))
    assert not refused.sent and "halted" in refused.reason


def test_gateway_losing_ib_servers_then_orders_refused_until_restored_and_reconciled(
    gateway: FakeIBGateway, broker: IbkrBroker
) -> None:
    broker.connect()
    broker.events()
    gateway.broadcast_error(1100, "Connectivity between IB and Trader Workstation has been lost.")
    events = collect(broker, lambda ev: any(isinstance(e, Disconnected) for e in ev))
    assert "1100" in next(e for e in events if isinstance(e, Disconnected)).reason
    refused = broker.place(OrderRequest.from_decision("d-link", "NVDA", 1))
    assert not refused.sent and "lost its connection to IB" in refused.reason
    gateway.broadcast_error(1102, "Connectivity restored - data maintained.")
    events = collect(broker, lambda ev: any(isinstance(e, ReconciliationDone) for e in ev))
    assert any(isinstance(e, Connected) for e in events)
    assert broker.place(OrderRequest.from_decision("d-link2", "NVDA", 1)).sent


def test_gateway_gone_for_good_then_bounded_reconnects_and_halt_naming_endpoint() -> None:
    gw = FakeIBGateway()
    gw.start()
    broker = IbkrBroker(broker_config(gw.port, reconnect_max_attempts=3))
    broker.connect()
    broker.events()
    gw.stop()  # the gateway process is gone, its port closed
    events = collect(broker, lambda ev: any(isinstance(e, TradingHalted) for e in ev), 10.0)
    halt = next(e for e in events if isinstance(e, TradingHalted))
    assert f"127.0.0.1:{gw.port}" in halt.reason and "after 3 reconnect attempts" in halt.reason
    assert broker.events(0.3) == []  # no more attempts
    assert not broker.place(OrderRequest.from_decision("d-gone", "NVDA", 1)).sent


class Journal:
    """A minimal journal: positions and execution ids from the fill events it recorded."""

    def __init__(self) -> None:
        self.positions: dict[str, float] = {}
        self.ids: set[str] = set()

    def record(self, events: list[BrokerEvent]) -> None:
        for f in fills_of(events):
            if f.execution.exec_id not in self.ids:
                self.ids.add(f.execution.exec_id)
                s = f.execution.symbol
                self.positions[s] = self.positions.get(s, 0.0) + f.execution.quantity

    def known_positions(self) -> dict[str, float]:
        return dict(self.positions)

    def known_execution_ids(self) -> set[str]:
        return set(self.ids)

    def last_execution_time(self) -> None:
        return None


def test_restart_when_same_client_id_then_recovers_orders_fills_positions_and_sends_no_duplicate(
    gateway: FakeIBGateway,
) -> None:
    journal = Journal()
    cfg = broker_config(gateway.port)
    gateway.plan("d-work", Accept(fills=None))
    gateway.plan("d-part", Accept(fills=((4, 120.0),)))
    first = IbkrBroker(cfg, cursor=journal)
    first.connect()
    working = OrderRequest.from_decision("d-work", "MSFT", 3, OrderType.LIMIT, 300.0)
    part = OrderRequest.from_decision("d-part", "NVDA", 10)
    first.place(working)
    first.place(part)
    journal.record(collect(first, lambda ev: len(fills_of(ev)) == 1))
    # the process dies; meanwhile the partially filled order fills some more
    first.close()
    gateway.fill_working(part.client_order_id, 2, 120.25)

    second = IbkrBroker(cfg, cursor=journal)
    second.connect()
    events = second.events()
    journal.record(events)
    recovered = [f.execution for f in fills_of(events) if f.recovered]
    assert [(e.client_order_id, e.quantity, e.price) for e in recovered] == [
        (part.client_order_id, 2.0, 120.25)
    ]
    assert journal.positions == {"NVDA": 6.0}
    assert [o.client_order_id for o in second.open_orders()] == [
        working.client_order_id,
        part.client_order_id,
    ]
    assert second.halted is None
    for req in (working, part):
        result = second.place(req)
        assert not result.sent and "already known" in result.reason
    placed = [f[26] for f in gateway.messages_from(11, 3)]
    assert placed == [working.client_order_id, part.client_order_id]  # no duplicate on the wire
    assert second.cancel(working.client_order_id)  # same client id: it may cancel
    collect(second, lambda ev: OrderState.CANCELLED in states_of(ev, working.client_order_id))
    second.close()


def test_message_budget_when_burst_of_orders_then_under_fifty_per_second(
    gateway: FakeIBGateway,
) -> None:
    cfg = broker_config(gateway.port, max_messages_per_second=25)
    gateway.plan("*", Accept(fills=None, pre_submitted=False))
    broker = IbkrBroker(cfg)
    broker.connect()
    try:
        # 60 orders at once: unthrottled they would reach the gateway within a fraction of a
        # second, above IB's 50 messages per second
        n = 60
        for k in range(n):
            assert broker.place(OrderRequest.from_decision(f"burst{k}", "NVDA", 1)).sent
        collect(broker, lambda ev: len(gateway.receive_times(3)) == n, timeout=15.0)
        times = sorted(gateway.receive_times(3))
        worst = max(sum(1 for t in times if t0 <= t < t0 + 1.0) for t0 in times)
        # measured where IB measures it, at the gateway (thread scheduling can bunch arrivals
        # a little beyond the client's own window of 25)
        assert worst < 50
    finally:
        broker.close()


def test_connect_when_account_is_live_but_mode_paper_then_refused_naming_host_port_and_fix() -> (
    None
):
    with FakeIBGateway(accounts=("U7654321",)) as gw:
        broker = IbkrBroker(broker_config(gw.port))
        with pytest.raises(BrokerConfigError) as err:
            broker.connect()
    text = str(err.value)
    assert f"127.0.0.1:{gw.port}" in text and "live account U7654321" in text
    assert "paper ports" in text


def test_connect_when_client_id_in_use_then_clear_error() -> None:
    with FakeIBGateway() as gw:
        first = IbkrBroker(broker_config(gw.port))
        first.connect()
        second = IbkrBroker(broker_config(gw.port, connect_timeout_seconds=1.0))
        with pytest.raises(BrokerConnectionError) as err:
            second.connect()
        first.close()
    assert "client id 11" in str(err.value) and "already in use" in str(err.value)


def test_connect_when_nothing_listens_then_clear_error_and_no_simulator() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    broker = IbkrBroker(broker_config(port))
    with pytest.raises(BrokerConnectionError) as err:
        broker.connect()
    assert f"127.0.0.1:{port}" in str(err.value) and "start IB Gateway" in str(err.value)


def test_connect_when_port_is_not_an_api_port_then_clear_error() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True)
    thread.start()
    port = silent.getsockname()[1]
    try:
        broker = IbkrBroker(broker_config(port, connect_timeout_seconds=0.5))
        with pytest.raises(BrokerConnectionError) as err:
            broker.connect()
    finally:
        for s in accepted:
            s.close()
        silent.close()
    assert "no TWS API answer" in str(err.value) and str(port) in str(err.value)


def test_fractional_order_when_the_account_allows_fractions_then_sent_filled_and_held(
    gateway: FakeIBGateway,
) -> None:
    # micro_10's $10 of a $408 stock: 0.0245 shares on the wire, in the fill and the position
    gateway.plan("*", Accept(fills=((0.0245, 408.0),), commission_per_share=0.005))
    broker = IbkrBroker(broker_config(gateway.port, fractional_shares=True))
    try:
        broker.connect()
        broker.events()
        req = OrderRequest.from_decision("d-frac", "MSFT", 0.02459)  # finer than 4 decimals
        assert broker.place(req).sent
        # IB sends the Filled status before the fill's commission report (the adapter's fill
        # event) and the position update; each may arrive in a later read than the status
        events = collect(
            broker,
            lambda ev: (
                OrderState.FILLED in states_of(ev, req.client_order_id)
                and len(fills_of(ev)) == 1
                and bool(broker.positions())
            ),
        )
        assert gateway.messages_from(11, 3)[0][17] == "0.0245"  # rounded toward zero
        (fill,) = [f.execution for f in fills_of(events)]
        assert (fill.quantity, fill.price) == (0.0245, 408.0)
        assert [(p.symbol, p.quantity) for p in broker.positions()] == [("MSFT", 0.0245)]
    finally:
        broker.close()
