"""Fractional sizing in the market core: the notional rule, the rounding to steps, and the
accounting of fractional fills (hypothesis): value within the notional, cash and positions
conserved, a full close lands on exactly zero."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.errors import InputError
from stairways.market.actions import (
    MAX_QUANTITY_DECIMALS,
    is_multiple_of_step,
    quantity_scale,
    round_quantity,
    target_quantity,
    target_shares,
)
from stairways.market.costs import fill_orders
from stairways.market.portfolio import PF_NOTIONAL, Portfolio
from stairways.market.settings import CostConfig, MarketConfig

_decimals = st.integers(0, MAX_QUANTITY_DECIMALS)
_price = st.floats(0.5, 2_000.0, allow_nan=False)
_notional = st.floats(1.0, 20_000.0, allow_nan=False)


def test_the_market_default_is_whole_shares() -> None:
    assert MarketConfig().quantity_decimals == 0
    assert quantity_scale(0) == 1.0 and quantity_scale(4) == 10_000.0
    with pytest.raises(InputError, match=r"0\.\.4"):
        quantity_scale(5)


def test_ten_dollars_of_a_408_dollar_stock_is_0_0245_shares() -> None:
    q = target_quantity(1.0, 10.0, 408.0, quantity_scale(4))
    assert q == 0.0245 and q * 408.0 <= 10.0
    assert target_quantity(-1.0, 10.0, 408.0, quantity_scale(4)) == -0.0245
    assert target_quantity(1.0, 10.0, 408.0, 1.0) == 0.0  # whole shares cannot


@settings(max_examples=300, deadline=None)
@given(_decimals, _notional, _price, st.sampled_from((-1.0, 0.0, 1.0)))
def test_target_quantity_stays_within_the_notional_by_less_than_one_step(
    decimals: int, notional: float, price: float, target: float
) -> None:
    scale = quantity_scale(decimals)
    q = target_quantity(target, notional, price, scale)
    if target == 0.0:
        assert q == 0.0
        return
    assert math.copysign(1.0, q) == target or q == 0.0
    assert is_multiple_of_step(q, decimals)
    value = abs(q) * price
    assert value <= notional * (1 + 1e-12)  # fills x price never above the notional ...
    assert value > notional - price / scale - 1e-9  # ... and one more step would pass it
    if decimals == 0:
        assert q == target_shares(target, notional, price)  # whole shares, bit for bit


@settings(max_examples=300, deadline=None)
@given(_decimals, st.floats(-1e5, 1e5, allow_nan=False))
def test_round_quantity_goes_toward_zero_onto_a_step(decimals: int, q: float) -> None:
    r = round_quantity(q, decimals)
    step = 10.0**-decimals
    assert abs(r) <= abs(q) + 1e-6 * step  # up only by float noise, a millionth of a step
    assert abs(q - r) < step * (1 + 1e-6)
    assert is_multiple_of_step(r, decimals)
    assert r == round(r, decimals)  # the clean float of its decimal value
    assert round_quantity(r, decimals) == r


_fill = st.tuples(st.integers(-300, 300), st.floats(50.0, 900.0))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, MAX_QUANTITY_DECIMALS), st.lists(_fill, min_size=1, max_size=25))
def test_fractional_fills_conserve_cash_and_positions_and_close_to_exactly_zero(
    decimals: int, fills: list[tuple[int, float]]
) -> None:
    step = 10.0**-decimals
    costs = CostConfig()
    pf = Portfolio(1, 1, 1_000.0)
    held = 0  # in steps: the exact position
    cash = 1_000.0
    notional = 0.0
    for steps, price in fills:
        q = round(steps * step, decimals)
        f = fill_orders(q, price, 0.002, 1e5, costs)
        pf.fill(
            np.array([[q]]),
            np.array([[float(f.price)]]),
            np.array([[float(f.commission)]]),
        )
        held += steps
        cash -= q * float(f.price) + float(f.commission)
        notional += abs(q) * float(f.price)
        assert pf.shares[0, 0] == round(held * step, decimals)  # on the grid, no drift
    assert pf.cash[0] == pytest.approx(cash, abs=1e-9)
    assert pf.state[0, PF_NOTIONAL] == pytest.approx(notional, rel=1e-12)  # fills x price
    # close the position: the account is flat to the last digit
    close = -pf.shares[0, 0]
    if close != 0.0:
        f = fill_orders(close, 100.0, 0.002, 1e5, costs)
        pf.fill(
            np.array([[close]]), np.array([[float(f.price)]]), np.array([[float(f.commission)]])
        )
    assert pf.shares[0, 0] == 0.0


def test_a_quantity_off_every_step_is_refused_by_the_fill_model() -> None:
    with pytest.raises(InputError, match=r"steps of 0\.0001 shares"):
        fill_orders(0.00001, 100.0, 0.002, 1e5, CostConfig())


def test_a_fill_below_the_grid_opens_no_position_and_does_not_fail() -> None:
    pf = Portfolio(1, 1, 1_000.0)
    pf.fill(np.array([[1e-17]]), np.array([[100.0]]), np.array([[0.0]]))  # float dust
    assert pf.shares[0, 0] == 0.0 and pf.avg_cost[0, 0] == 0.0
