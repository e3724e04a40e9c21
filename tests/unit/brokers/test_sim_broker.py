"""The simulated broker: fills, faults, persistence across restarts, reconciliation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.brokers.base import (
    Broker,
    BrokerEvent,
    Connected,
    Disconnected,
    FillEvent,
    MinuteBar,
    OrderRefused,
    OrderRejected,
    OrderStatusChanged,
    ReconciliationDone,
    TradingHalted,
)
from stairways.brokers.errors import BrokerStateError
from stairways.brokers.orders import OrderRequest, OrderState, OrderType
from stairways.brokers.settings import SimConfig
from stairways.brokers.sim import (
    Disconnect,
    FaultPlan,
    PartialFill,
    Reject,
    ReplayBarFeed,
    SimBroker,
    StaleFeed,
)
from stairways.errors import InputError
from stairways.market.costs import fill_orders, parkinson_sigma
from stairways.market.settings import CostConfig

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
SYMBOLS = ("NVDA", "MSFT")


def minute(
    k: int, nvda: float = 100.0, msft: float = 400.0, vol: float = 10_000
) -> list[MinuteBar]:
    t = T0 + timedelta(minutes=k)
    return [
        MinuteBar("NVDA", t, nvda, nvda * 1.001, nvda * 0.999, nvda + 0.1, vol),
        MinuteBar("MSFT", t, msft, msft * 1.001, msft * 0.999, msft - 0.2, vol),
    ]


NO_FAULTS = FaultPlan()


def make(faults: FaultPlan = NO_FAULTS, path: Path | None = None, **kw: object) -> SimBroker:
    b = SimBroker(SimConfig(state_path=path), SYMBOLS, faults=faults, **kw)  # type: ignore[arg-type]
    b.connect()
    return b


def states(events: list[BrokerEvent], cid: str) -> list[OrderState]:
    return [
        e.state for e in events if isinstance(e, OrderStatusChanged) and e.client_order_id == cid
    ]


def test_sim_broker_satisfies_the_broker_protocol() -> None:
    assert isinstance(make(), Broker)


def test_market_order_fills_at_next_open_with_decision_bar_costs() -> None:
    b = make()
    decision = minute(0)
    b.on_bars(decision)
    req = OrderRequest.from_decision("d1", "NVDA", 10)
    assert b.place(req).sent
    nxt = minute(1, nvda=101.0)
    fills = b.on_bars(nxt)
    nv = decision[0]
    expect = fill_orders(
        10, 101.0, parkinson_sigma(np.array([nv.high]), np.array([nv.low]))[0], nv.volume,
        CostConfig(),
    )  # fmt: skip
    assert [(f.symbol, f.quantity) for f in fills] == [("NVDA", 10.0)]
    assert fills[0].price == pytest.approx(float(expect.price), abs=0)
    assert fills[0].commission == pytest.approx(float(expect.commission), abs=0)
    assert fills[0].time == nxt[0].start
    events = b.events()
    assert states(events, req.client_order_id) == [
        OrderState.PENDING_SUBMIT,
        OrderState.ACCEPTED,
        OrderState.FILLED,
    ]
    assert [(p.symbol, p.quantity) for p in b.positions()] == [("NVDA", 10.0)]


def test_limit_buy_fills_only_when_traded_through_and_never_above_limit() -> None:
    b = make()
    b.on_bars(minute(0))
    req = OrderRequest.from_decision("d1", "NVDA", 5, OrderType.LIMIT, 99.0)
    b.place(req)
    assert b.on_bars(minute(1, nvda=100.0)) == []  # low 99.9 never reaches 99
    fills = b.on_bars(minute(2, nvda=99.05))  # low 98.95: trades through
    assert len(fills) == 1 and fills[0].price <= 99.0


def test_fault_reject_with_code_then_rejected_event_and_terminal() -> None:
    b = make(FaultPlan(rejects=(Reject("d-bad", code=201, text="no permission"),)))
    b.on_bars(minute(0))
    req = OrderRequest.from_decision("d-bad", "NVDA", 1)
    assert b.place(req).sent
    events = b.events()
    assert [(e.code, e.text) for e in events if isinstance(e, OrderRejected)] == [
        (201, "no permission")
    ]
    assert b.on_bars(minute(1)) == []
    assert states(events, req.client_order_id)[-1] == OrderState.REJECTED
    ok = OrderRequest.from_decision("d-good", "NVDA", 1)
    b.place(ok)
    assert len(b.on_bars(minute(2))) == 1


def test_fault_partial_fills_then_two_fills_and_states_in_order() -> None:
    b = make(FaultPlan(partial_fills=(PartialFill("*", (0.3, 0.7)),)))
    b.on_bars(minute(0))
    req = OrderRequest.from_decision("d1", "MSFT", -10)
    b.place(req)
    first = b.on_bars(minute(1))
    second = b.on_bars(minute(2))
    assert [f.quantity for f in first + second] == [-3.0, -7.0]
    assert states(b.events(), req.client_order_id) == [
        OrderState.PENDING_SUBMIT,
        OrderState.ACCEPTED,
        OrderState.PARTIALLY_FILLED,
        OrderState.FILLED,
    ]
    assert b.open_orders() == []


def test_fault_delayed_ack_and_latency_then_fill_later() -> None:
    b = make(FaultPlan(ack_delay_bars=2, extra_latency_bars=2))
    b.on_bars(minute(0))
    req = OrderRequest.from_decision("d1", "NVDA", 1)
    b.place(req)
    assert b.open_orders()[0].state == OrderState.PENDING_SUBMIT
    assert b.on_bars(minute(1)) == []
    assert b.on_bars(minute(2)) == []  # accepted here, but the added latency is not over
    assert b.open_orders()[0].state == OrderState.ACCEPTED
    fills = b.on_bars(minute(3))
    assert len(fills) == 1 and fills[0].time == T0 + timedelta(minutes=3)


def test_fault_disconnect_then_refused_while_down_and_fills_recovered_after() -> None:
    b = make(FaultPlan(disconnects=(Disconnect(start=2, bars=2),)))
    b.on_bars(minute(0))
    req = OrderRequest.from_decision("d1", "NVDA", 4)
    b.place(req)
    b.on_bars(minute(1))  # fills while still connected
    b.events()
    working = OrderRequest.from_decision("d-lim", "MSFT", 2, OrderType.LIMIT, 399.8)
    b.place(working)
    b.events()
    b.on_bars(minute(2))  # the connection drops; the limit order fills at the broker anyway
    refused = b.place(OrderRequest.from_decision("d2", "NVDA", 1))
    assert not refused.sent and "not connected" in refused.reason
    events = b.events()
    assert any(isinstance(e, Disconnected) for e in events)
    assert any(isinstance(e, OrderRefused) for e in events)  # our own refusal: immediate
    assert not any(isinstance(e, FillEvent) for e in events)  # the broker's news waits
    b.on_bars(minute(3))
    b.on_bars(minute(4))  # back
    events = b.events()
    assert any(isinstance(e, Connected) and e.attempt == 1 for e in events)
    recovered = [e for e in events if isinstance(e, FillEvent)]
    assert [(e.execution.client_order_id, e.recovered) for e in recovered] == [
        (working.client_order_id, True)
    ]


def test_stale_feed_then_withheld_bars_are_lost_or_arrive_late() -> None:
    minutes = [minute(k) for k in range(6)]
    lost = ReplayBarFeed(minutes, stale=(StaleFeed(start=2, bars=2),))
    got = [lost.poll() for _ in range(6)]
    assert [len(g) for g in got] == [2, 2, 0, 0, 2, 2]
    late = ReplayBarFeed(minutes, stale=(StaleFeed(start=2, bars=2, late=True),))
    got = [late.poll() for _ in range(6)]
    assert [len(g) for g in got] == [2, 2, 0, 0, 6, 2]
    assert late.last_bar_start("NVDA") == T0 + timedelta(minutes=5)
    assert str(got[-1][0].start.tzinfo) == "America/New_York"


def test_restart_when_state_file_kept_then_orders_fills_positions_recovered_no_duplicate(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sim.sqlite"
    b = make(path=path)
    b.on_bars(minute(0))
    filled = OrderRequest.from_decision("d1", "NVDA", 7)
    working = OrderRequest.from_decision("d2", "MSFT", 2, OrderType.LIMIT, 10.0)
    b.place(filled)
    b.place(working)
    b.on_bars(minute(1))
    equity = b.account().net_liquidation
    executions = b.executions()
    b.close()

    again = make(path=path)
    assert [(p.symbol, p.quantity) for p in again.positions()] == [("NVDA", 7.0)]
    assert [o.client_order_id for o in again.open_orders()] == [working.client_order_id]
    assert again.executions() == executions
    assert again.account().net_liquidation == equity
    for req in (filled, working):
        result = again.place(req)
        assert not result.sent and "already known" in result.reason
    assert again.cancel(working.client_order_id)
    again.on_bars(minute(2))  # time continues where it stopped
    assert again.now() == T0 + timedelta(minutes=3)


def test_restart_with_other_configuration_then_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite"
    make(path=path).close()
    other = SimBroker(SimConfig(state_path=path, starting_capital=5.0), SYMBOLS)
    with pytest.raises(BrokerStateError, match="different configuration"):
        other.connect()


class Cursor:
    def __init__(self, positions: Mapping[str, float], ids: set[str]) -> None:
        self.positions, self.ids = dict(positions), ids

    def known_positions(self) -> dict[str, float]:
        return self.positions

    def known_execution_ids(self) -> set[str]:
        return self.ids

    def last_execution_time(self) -> None:
        return None


def test_connect_with_journal_behind_then_fills_recovered_and_explained(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite"
    b = make(path=path)
    b.on_bars(minute(0))
    b.place(OrderRequest.from_decision("d1", "NVDA", 3))
    b.on_bars(minute(1))
    b.close()
    again = make(path=path, cursor=Cursor({}, set()))
    events = again.events()
    recovered = [e for e in events if isinstance(e, FillEvent) and e.recovered]
    assert [e.execution.quantity for e in recovered] == [3.0]
    assert any(isinstance(e, ReconciliationDone) for e in events)
    assert again.halted is None


def test_connect_when_journal_disagrees_then_halted_and_orders_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.sqlite"
    b = make(path=path)
    b.on_bars(minute(0))
    b.place(OrderRequest.from_decision("d1", "NVDA", 3))
    b.on_bars(minute(1))
    ids = {e.exec_id for e in b.executions()}
    b.close()
    again = make(path=path, cursor=Cursor({"NVDA": 5.0}, ids))
    halts = [e for e in again.events() if isinstance(e, TradingHalted)]
    assert len(halts) == 1 and "NVDA: broker holds 3" in halts[0].reason
    refused = again.place(OrderRequest.from_decision("d2", "NVDA", 1))
    assert not refused.sent and "halted" in refused.reason


def test_intent_rounding_to_zero_then_refused() -> None:
    b = make()
    b.on_bars(minute(0))
    result = b.place(OrderRequest.from_decision("d1", "NVDA", -0.7))
    assert not result.sent and "rounds to zero" in result.reason


actions = st.lists(
    st.one_of(
        st.tuples(st.just("place"), st.sampled_from(SYMBOLS), st.integers(-30, 30)),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("bar"), st.floats(50, 150), st.just(0)),
        st.tuples(st.just("flatten"), st.just(0), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(actions, st.booleans())
def test_any_sequence_keeps_positions_fills_and_equity_consistent(ops, partial) -> None:  # type: ignore[no-untyped-def]
    faults = (
        FaultPlan(partial_fills=(PartialFill("*", (0.5, 0.5), count=5),))
        if partial
        else FaultPlan()
    )
    b = make(faults)
    k = 0
    b.on_bars(minute(k))
    placed: list[str] = []
    for n, (op, a, q) in enumerate(ops):
        if op == "place":
            cid = f"sw-p{n}-{a}"
            if b.place(OrderRequest(cid, a, float(q))).sent:
                placed.append(cid)
        elif op == "cancel" and placed:
            b.cancel(placed[a % len(placed)])
        elif op == "bar":
            k += 1
            b.on_bars(minute(k, nvda=a, msft=a * 4))
        elif op == "flatten":
            b.flatten()
            assert b.positions() == [] and b.open_orders() == []
        held = {p.symbol: p.quantity for p in b.positions()}
        from_fills: dict[str, float] = {}
        for e in b.executions():
            from_fills[e.symbol] = from_fills.get(e.symbol, 0.0) + e.quantity
        assert held == {s: v for s, v in from_fills.items() if v != 0.0}
        for o in b.all_orders():
            assert abs(o.filled) <= abs(o.quantity)
            assert o.state != OrderState.FILLED or o.filled == o.quantity
        pf = b.portfolio
        fees = sum(e.commission or 0.0 for e in b.executions())
        assert pf.fees[0] == pytest.approx(fees, abs=1e-9)
        cash = SimConfig().starting_capital - sum(
            e.quantity * e.price + (e.commission or 0.0) for e in b.executions()
        )
        assert pf.cash[0] == pytest.approx(cash, abs=1e-6)


def test_without_a_state_file_nothing_is_written_and_the_account_still_keeps_time() -> None:
    b = make()
    for k in range(3):
        b.on_bars(minute(k))
        assert b.place(OrderRequest.from_decision(f"d{k}", "NVDA", 1)).sent
    assert b.now() == T0 + timedelta(minutes=3)
    assert [(p.symbol, p.quantity) for p in b.positions()] == [("NVDA", 2.0)]
    store = b._store
    assert store is not None
    db = store._db
    for table in ("meta", "orders", "executions"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


def test_a_state_file_holds_its_identity_once_and_the_last_bars_for_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sim.sqlite"
    b = make(path=path)
    b.on_bars(minute(0))
    b.on_bars(minute(1))
    b.close()
    again = make(path=path)
    assert again.now() == T0 + timedelta(minutes=2)  # the last bars came back from the file
    assert again.place(OrderRequest.from_decision("d9", "MSFT", -1)).sent  # priced from them


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.01, 5_000.0, allow_nan=False),
    st.floats(0.0, 0.2, allow_nan=False),
    st.booleans(),
)
def test_an_orders_sigma_is_parkinson_sigma_of_its_decision_bar_to_the_bit(
    low: float, width: float, swapped: bool
) -> None:
    high = low * (1.0 + width)
    b = make()
    bar = MinuteBar("NVDA", T0, low, low if swapped else high, high if swapped else low, low, 1)
    expected = parkinson_sigma(np.array([max(high, low)]), np.array([min(high, low)]))[0]
    assert b._sigma(bar) == float(expected)


def test_an_orders_sigma_refuses_a_bar_without_a_positive_low() -> None:
    bar = MinuteBar("NVDA", T0, 1.0, 1.0, 0.0, 1.0, 1)
    with pytest.raises(InputError, match="0 < low <= high"):
        make()._sigma(bar)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-30, 30), st.integers(-30, 30), st.floats(90.0, 110.0)),
        min_size=1,
        max_size=12,
    )
)
def test_the_accounts_books_are_the_market_cores_batch_portfolio(
    steps: list[tuple[int, int, float]],
) -> None:
    from stairways.market.costs import cost_params, fill_one
    from stairways.market.portfolio import Portfolio

    b = make()
    ref = Portfolio(1, 2, b.cfg.starting_capital)
    params = cost_params(b.cfg.costs)
    b.on_bars(minute(0))
    ref.mark(np.array([[b._last["NVDA"].close, b._last["MSFT"].close]]))
    for k, (q_nv, q_ms, px) in enumerate(steps, start=1):
        placed = []
        for sym, q in (("NVDA", q_nv), ("MSFT", q_ms)):
            if q:
                last = b._last[sym]
                assert b.place(OrderRequest.from_decision(f"d{k}", sym, float(q))).sent
                placed.append((sym, q, b._sigma(last), float(last.volume)))
        bars = minute(k, nvda=px, msft=4 * px)
        fills = b.on_bars(bars)
        assert len(fills) == len(placed)
        opens = {bar.symbol: bar.open for bar in bars}
        for sym, q, sigma, vol in placed:
            j = SYMBOLS.index(sym)
            price, fee, spread, impact = fill_one(float(q), opens[sym], sigma, vol, params)
            arrays = [np.zeros((1, 2)) for _ in range(5)]
            for a, v in zip(arrays, (q, price, fee, spread, impact), strict=True):
                a[0, j] = v
            ref.fill(*arrays)
        ref.mark(np.array([[bar.close for bar in bars]]))
        assert np.array_equal(b.portfolio.state, ref.state)
        assert np.array_equal(b.portfolio.shares, ref.shares)
        assert np.array_equal(b.portfolio.avg_cost, ref.avg_cost)
