"""The simulated broker in fractional steps (a notional-sized stage): orders round toward zero
to the step, fills x price is the order's value, and any sequence of orders, partial fills,
cancels and flattens conserves positions and cash (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.brokers.orders import OrderRequest
from stairways.brokers.settings import BrokerConfig, SimConfig
from stairways.brokers.sim import FaultPlan, PartialFill, SimBroker
from stairways.market.actions import is_multiple_of_step
from tests.unit.brokers.test_sim_broker import SYMBOLS, minute

CAPITAL = 200.0


def _broker(decimals: int = 4, faults: FaultPlan | None = None) -> SimBroker:
    b = SimBroker(
        SimConfig(starting_capital=CAPITAL, quantity_decimals=decimals),
        SYMBOLS,
        faults=faults or FaultPlan(),
    )
    b.connect()
    return b


def test_the_defaults_are_whole_shares_and_no_fractions_at_ibkr() -> None:
    assert SimConfig().quantity_decimals == 0
    assert BrokerConfig().ibkr.fractional_shares is False


def test_ten_dollars_of_msft_fills_in_fractional_steps() -> None:
    b = _broker()
    b.on_bars(minute(0, msft=408.0))
    assert b.place(OrderRequest.from_decision("d1", "MSFT", 0.0245)).sent
    (fill,) = b.on_bars(minute(1, msft=408.0))
    assert fill.quantity == 0.0245
    assert fill.quantity * fill.price == pytest.approx(0.0245 * fill.price, abs=0)
    assert 9.9 < fill.quantity * fill.price < 10.01  # $10 plus the half-spread and impact
    assert [(p.symbol, p.quantity) for p in b.positions()] == [("MSFT", 0.0245)]


def test_a_quantity_finer_than_the_step_is_rounded_toward_zero() -> None:
    b = _broker(decimals=2)
    b.on_bars(minute(0))
    assert b.place(OrderRequest.from_decision("d1", "NVDA", 0.0299)).sent
    (fill,) = b.on_bars(minute(1))
    assert fill.quantity == 0.02


def test_a_whole_share_broker_refuses_a_fraction_that_rounds_to_zero() -> None:
    b = _broker(decimals=0)
    b.on_bars(minute(0))
    result = b.place(OrderRequest.from_decision("d1", "MSFT", 0.0245))
    assert not result.sent and "rounds to zero in whole shares" in result.reason


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("place"), st.sampled_from(SYMBOLS), st.integers(-3000, 3000)),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("bar"), st.floats(50, 600), st.just(0)),
        st.tuples(st.just("flatten"), st.just(0), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(_ops, st.booleans(), st.integers(1, 4))
def test_any_fractional_sequence_conserves_positions_and_cash(
    ops: list[tuple[str, object, int]], partial: bool, decimals: int
) -> None:
    faults = (
        FaultPlan(partial_fills=(PartialFill("*", (0.3, 0.7), count=5),))
        if partial
        else FaultPlan()
    )
    b = _broker(decimals, faults)
    step = 10.0**-decimals
    k = 0
    b.on_bars(minute(k))
    placed: list[str] = []
    for n, (op, a, steps) in enumerate(ops):
        if op == "place":
            cid = f"sw-p{n}-{a}"
            if b.place(OrderRequest(cid, str(a), round(steps * step, decimals))).sent:
                placed.append(cid)
        elif op == "cancel" and placed:
            b.cancel(placed[int(str(a)) % len(placed)])
        elif op == "bar":
            k += 1
            price = float(str(a))
            b.on_bars(minute(k, nvda=price, msft=price * 2))
        elif op == "flatten":
            b.flatten()
            assert b.positions() == [] and b.open_orders() == []
        executions = b.executions()
        for e in executions:
            assert is_multiple_of_step(e.quantity, decimals) and e.quantity != 0.0
        held = {p.symbol: p.quantity for p in b.positions()}
        from_fills: dict[str, float] = {}
        for e in executions:
            from_fills[e.symbol] = round(from_fills.get(e.symbol, 0.0) + e.quantity, 8)
        # positions are exactly the fills' sum on the step grid (no float drift, no dust)
        assert held == {s: v for s, v in from_fills.items() if v != 0.0}
        for o in b.all_orders():
            assert abs(o.filled) <= abs(o.quantity) + 1e-12
        pf = b.portfolio
        assert pf.fees[0] == pytest.approx(sum(e.commission or 0.0 for e in executions), abs=1e-9)
        cash = CAPITAL - sum(e.quantity * e.price + (e.commission or 0.0) for e in executions)
        assert pf.cash[0] == pytest.approx(cash, abs=1e-9)
