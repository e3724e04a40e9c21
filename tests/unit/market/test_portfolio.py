import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.errors import InputError
from stairways.market.portfolio import Portfolio


def _one(qty: float, price: float, commission: float = 0.0) -> tuple[np.ndarray, ...]:
    return np.array([[qty]]), np.array([[price]]), np.array([[commission]])


def test_partial_close_realises_against_average_cost() -> None:
    pf = Portfolio(1, 1, 10_000.0)
    pf.fill(*_one(10, 100.0, 0.35))
    pf.fill(*_one(10, 110.0, 0.35))  # average 105
    pf.fill(*_one(-5, 120.0, 0.35))  # realise (120 - 105) * 5 = 75
    pf.mark(np.array([[100.0]]))
    assert pf.avg_cost[0, 0] == pytest.approx(105.0)
    assert pf.realised[0] == pytest.approx(75.0)
    assert pf.unrealised[0] == pytest.approx(15 * (100.0 - 105.0))
    assert pf.fees[0] == pytest.approx(1.05)
    assert pf.cash[0] == pytest.approx(10_000 - 1000 - 1100 + 600 - 1.05)
    assert pf.equity[0] == pytest.approx(pf.cash[0] + 15 * 100.0)


def test_flip_from_long_to_short_opens_the_remainder_at_the_fill_price() -> None:
    pf = Portfolio(1, 1, 10_000.0)
    pf.fill(*_one(10, 100.0))
    pf.fill(*_one(-25, 90.0))  # realise -100 on 10, open 15 short at 90
    assert pf.shares[0, 0] == -15.0
    assert pf.avg_cost[0, 0] == pytest.approx(90.0)
    assert pf.realised[0] == pytest.approx(-100.0)
    pf.mark(np.array([[80.0]]))
    assert pf.unrealised[0] == pytest.approx(150.0)  # short gains when price falls


def test_drawdown_is_measured_from_the_peak_equity() -> None:
    pf = Portfolio(1, 1, 10_000.0)
    pf.fill(*_one(10, 100.0))
    pf.mark(np.array([[150.0]]))  # equity 10500
    pf.mark(np.array([[45.0]]))  # equity 9450
    assert pf.peak_equity[0] == pytest.approx(10_500.0)
    assert pf.drawdown[0] == pytest.approx(1 - 9_450 / 10_500)
    pf.mark(np.array([[120.0]]))
    assert pf.max_drawdown[0] == pytest.approx(1 - 9_450 / 10_500)


def test_quantities_off_the_finest_step_and_negative_commissions_are_refused() -> None:
    pf = Portfolio(1, 1, 10_000.0)
    with pytest.raises(InputError, match=r"whole shares or steps of 0\.0001"):
        pf.fill(*_one(0.00005, 100.0))
    pf.fill(*_one(0.5, 100.0))  # fractional steps are fills like any other
    assert pf.shares[0, 0] == 0.5
    with pytest.raises(InputError, match="negative"):
        pf.fill(*_one(1, 100.0, -1.0))


step = st.tuples(
    st.lists(st.integers(-40, 40), min_size=2, max_size=2),  # shares per ticker
    st.lists(st.floats(5.0, 500.0), min_size=2, max_size=2),  # fill prices
    st.lists(st.floats(0.0, 3.0), min_size=2, max_size=2),  # commissions
    st.lists(st.floats(5.0, 500.0), min_size=2, max_size=2),  # marks
)


@settings(max_examples=200, deadline=None)
@given(st.lists(step, min_size=1, max_size=30))
def test_accounting_identities_hold_after_every_fill_and_mark(steps: list) -> None:
    pf = Portfolio(1, 2, 10_000.0)
    fees_seen = 0.0
    for qty, price, commission, marks in steps:
        q = np.array([qty], dtype=float)
        c = np.where(q != 0, np.array([commission]), 0.0)
        pf.fill(q, np.array([price]), c)
        m = np.array([marks])
        pf.mark(m)
        equity = pf.equity[0]
        assert equity == pytest.approx(pf.cash[0] + float(pf.shares[0] @ m[0]), abs=1e-6)
        assert pf.realised[0] + pf.unrealised[0] - pf.fees[0] == pytest.approx(
            equity - 10_000.0, abs=1e-6
        )
        assert pf.fees[0] >= fees_seen >= 0.0
        fees_seen = pf.fees[0]
        assert 0.0 <= pf.drawdown[0] <= pf.max_drawdown[0] + 1e-12


@settings(max_examples=50, deadline=None)
@given(st.lists(step, min_size=1, max_size=10))
def test_a_batch_of_accounts_equals_accounts_run_one_by_one(steps: list) -> None:
    batch = Portfolio(2, 2, 10_000.0)
    single = [Portfolio(1, 2, 10_000.0) for _ in range(2)]
    for qty, price, commission, marks in steps:
        q = np.array([qty, [-v for v in qty]], dtype=float)
        p = np.array([price, price])
        c = np.where(q != 0, np.array([commission, commission]), 0.0)
        batch.fill(q, p, c)
        batch.mark(np.array([marks, marks]))
        for i in range(2):
            single[i].fill(q[i : i + 1], p[i : i + 1], c[i : i + 1])
            single[i].mark(np.array([marks]))
    for i in range(2):
        assert batch.equity[i] == single[i].equity[0]
        assert batch.realised[i] == single[i].realised[0]
