"""Reconciliation: known positions plus unseen executions must equal the broker's positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.brokers.base import Execution
from stairways.brokers.reconcile import reconcile

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
SYMBOLS = ("NVDA", "MSFT")


def ex(i: int, symbol: str, qty: float, ref: str = "sw-d-X") -> Execution:
    return Execution(f"e{i}", ref, str(i), symbol, qty, 100.0, T0 + timedelta(seconds=i), 1.0)


fills_strategy = st.lists(
    st.tuples(st.sampled_from(SYMBOLS), st.integers(-50, 50).filter(bool)), max_size=12
)


@settings(deadline=None)
@given(fills_strategy, st.integers(0, 12))
def test_when_broker_equals_known_plus_new_fills_then_explained(
    fills: list[tuple[str, int]], n_known: int
) -> None:
    execs = [ex(i, s, q) for i, (s, q) in enumerate(fills)]
    known_ids = {e.exec_id for e in execs[:n_known]}
    known: dict[str, float] = {}
    broker: dict[str, float] = {}
    for e in execs:
        broker[e.symbol] = broker.get(e.symbol, 0.0) + e.quantity
        if e.exec_id in known_ids:
            known[e.symbol] = known.get(e.symbol, 0.0) + e.quantity
    # the broker reports every execution twice (as IB does after a reconnect): no double count
    rec = reconcile(broker, known, execs + execs, known_ids, {"sw-d-X"})
    assert rec.explained, rec.message()
    assert [e.exec_id for e in rec.new_fills] == [e.exec_id for e in execs[n_known:]]


@settings(deadline=None)
@given(fills_strategy, st.sampled_from(SYMBOLS), st.integers(-20, 20).filter(bool))
def test_when_broker_differs_then_unexplained_naming_symbol_and_difference(
    fills: list[tuple[str, int]], symbol: str, extra: int
) -> None:
    execs = [ex(i, s, q) for i, (s, q) in enumerate(fills)]
    broker: dict[str, float] = {}
    for e in execs:
        broker[e.symbol] = broker.get(e.symbol, 0.0) + e.quantity
    broker[symbol] = broker.get(symbol, 0.0) + extra
    rec = reconcile(broker, {}, execs, set(), {"sw-d-X"})
    assert not rec.explained
    assert set(rec.differences) == {symbol}
    assert f"{symbol}: broker holds" in rec.message() and f"difference {extra:+g}" in rec.message()


def test_when_a_manual_trade_explains_the_numbers_then_still_not_explained() -> None:
    manual = ex(1, "NVDA", 5, ref="")
    rec = reconcile({"NVDA": 5.0}, {}, [manual], set(), {"sw-d-X"})
    assert rec.differences == {}
    assert not rec.explained
    assert "not placed by Stairways" in rec.message()
