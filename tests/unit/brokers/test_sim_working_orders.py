"""The simulated broker's working-order set: open orders, bar processing and the simulated
clock agree with the full order book through any sequence of orders, cancels, bars, faults
and restarts (a bar looks at the working orders only, not every order of the session)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.brokers.base import MinuteBar
from stairways.brokers.orders import ACTIVE_STATES, OrderRequest, OrderType
from stairways.brokers.settings import SimConfig
from stairways.brokers.sim import Disconnect, FaultPlan, PartialFill, Reject, SimBroker

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
SYMBOLS = ("NVDA", "MSFT")


def _check(b: SimBroker) -> None:
    every = b.all_orders()
    assert b.open_orders() == [o for o in every if o.state in ACTIVE_STATES]
    # no working order is missing from the set the bars look at
    working = {cid for cid, o in b._orders.items() if o.state in ACTIVE_STATES}
    assert working <= set(b._working)
    starts = [b._last[s].start for s in b._last]
    assert b.now() == (
        max(starts) + timedelta(minutes=1) if starts else datetime(1970, 1, 1, tzinfo=UTC)
    )


_op = st.one_of(
    st.tuples(st.just("bar"), st.floats(-0.01, 0.01)),
    st.tuples(
        st.just("order"),
        st.sampled_from(SYMBOLS),
        st.integers(-30, 30),
        st.sampled_from([None, -0.003, 0.0, 0.003]),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 40)),
    st.tuples(st.just("restart"), st.just(0)),
    st.tuples(st.just("flatten"), st.just(0)),
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(_op, min_size=1, max_size=60),
    st.integers(0, 2),
    st.integers(0, 2),
    st.booleans(),
    st.booleans(),
)
def test_open_orders_and_the_clock_match_the_order_book(
    ops: list[tuple], ack: int, latency: int, partial: bool, disconnect: bool
) -> None:
    faults = FaultPlan(
        rejects=(Reject(match="*-3", count=2),),
        partial_fills=(PartialFill(fractions=(0.4, 0.6), count=3),) if partial else (),
        ack_delay_bars=ack,
        extra_latency_bars=latency,
        disconnects=(Disconnect(3, 2),) if disconnect else (),
    )
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "sim.sqlite"
        b = SimBroker(SimConfig(state_path=path), SYMBOLS, faults=faults)
        b.connect()
        _check(b)
        price = {"NVDA": 100.0, "MSFT": 400.0}
        k = n = 0
        ids: list[str] = []
        for op in ops:
            if op[0] == "bar":
                bars = []
                for s in SYMBOLS:
                    o = price[s]
                    c = o * (1.0 + op[1])
                    bars.append(
                        MinuteBar(
                            s,
                            T0 + timedelta(minutes=k),
                            o,
                            max(o, c) * 1.001,
                            min(o, c) * 0.999,
                            c,
                            5_000.0,
                        )
                    )
                    price[s] = c
                b.on_bars(bars)
                k += 1
            elif op[0] == "order":
                _, sym, qty, offset = op
                limit = None if offset is None else price[sym] * (1.0 + offset)
                cid = f"c-{n}"
                n += 1
                kind = OrderType.MARKET if limit is None else OrderType.LIMIT
                b.place(OrderRequest(cid, sym, float(qty), kind, limit))
                ids.append(cid)
            elif op[0] == "cancel" and ids:
                b.cancel(ids[op[1] % len(ids)])
            elif op[0] == "restart":
                before = (b.open_orders(), b.all_orders(), b.now())
                b.close()
                b = SimBroker(SimConfig(state_path=path), SYMBOLS, faults=faults)
                b.connect()
                assert (b.open_orders(), b.all_orders(), b.now()) == before
            elif op[0] == "flatten" and k:
                b.close_at_last_close()
                assert b.open_orders() == []
            b.events()
            _check(b)
        # the fills the bars made are the positions (the account starts flat)
        held = {p.symbol: p.quantity for p in b.positions()}
        for sym in SYMBOLS:
            filled = sum(e.quantity for e in b.executions() if e.symbol == sym)
            assert abs(held.get(sym, 0.0) - filled) < 1e-9
        b.close()
