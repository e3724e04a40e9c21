import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.errors import InputError
from stairways.market.costs import fill_orders, parkinson_sigma
from stairways.market.settings import CostConfig

DEFAULT = CostConfig()


def test_small_buy_pays_minimum_commission_half_spread_and_sqrt_impact() -> None:
    f = fill_orders(10.0, 100.0, 0.001, 10_000.0, DEFAULT)
    impact = 0.1 * 0.001 * math.sqrt(10 / 10_000)  # 3.1623e-6
    assert f.price == pytest.approx(100.0 * (1 + 1e-4 + impact), rel=1e-12)
    assert f.commission == pytest.approx(0.35)  # 10 * 0.0035 = 0.035 < minimum 0.35
    assert f.spread_cost == pytest.approx(10 * 100.0 * 1e-4)  # 0.10
    assert f.impact_cost == pytest.approx(10 * 100.0 * impact)  # 0.00316


def test_large_sell_receives_less_and_pays_per_share() -> None:
    f = fill_orders(-1000.0, 50.0, 0.002, 40_000.0, DEFAULT)
    impact = 0.1 * 0.002 * math.sqrt(1000 / 40_000)  # 3.1623e-5
    assert f.price == pytest.approx(50.0 * (1 - 1e-4 - impact), rel=1e-12)
    assert f.commission == pytest.approx(3.5)
    assert f.spread_cost == pytest.approx(5.0)
    assert f.impact_cost == pytest.approx(1000 * 50.0 * impact)


def test_commission_is_capped_at_one_percent_of_trade_value() -> None:
    f = fill_orders(1.0, 10.0, 0.0, 1e6, DEFAULT)
    assert f.commission == pytest.approx(0.01 * 1 * 10.0 * (1 + 1e-4))  # 0.100 < minimum 0.35
    uncapped = fill_orders(1.0, 10.0, 0.0, 1e6, CostConfig(commission_max_fraction=None))
    assert uncapped.commission == pytest.approx(0.35)


def test_impact_is_capped_and_a_zero_volume_bar_hits_the_cap() -> None:
    f = fill_orders(100.0, 100.0, 0.01, 0.0, DEFAULT)
    assert f.price == pytest.approx(100.0 * (1 + 1e-4 + 0.01))
    assert f.impact_cost == pytest.approx(100 * 100.0 * 0.01)


def test_configured_sigma_replaces_the_bar_sigma() -> None:
    cfg = CostConfig(impact_sigma=0.004)
    f = fill_orders(25.0, 200.0, 0.5, 2_500.0, cfg)
    assert f.impact_cost == pytest.approx(25 * 200.0 * 0.1 * 0.004 * 0.1)


def test_zero_order_costs_nothing() -> None:
    f = fill_orders(np.zeros(3), np.full(3, 100.0), 0.01, 100.0, DEFAULT)
    assert f.commission.tolist() == [0.0, 0.0, 0.0]
    assert f.price.tolist() == [100.0, 100.0, 100.0]
    assert (f.spread_cost + f.impact_cost).tolist() == [0.0, 0.0, 0.0]


def test_parkinson_sigma_matches_the_formula() -> None:
    got = parkinson_sigma(np.array([101.0]), np.array([99.0]))
    assert got[0] == pytest.approx(math.log(101 / 99) / (2 * math.sqrt(math.log(2))))
    with pytest.raises(InputError):
        parkinson_sigma(np.array([1.0]), np.array([2.0]))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InputError, match="whole shares or steps"):
        fill_orders(1.00005, 100.0, 0.0, 1.0, DEFAULT)
    with pytest.raises(InputError, match="positive"):
        fill_orders(1.0, 0.0, 0.0, 1.0, DEFAULT)


@given(
    qty=st.integers(-5000, 5000),
    price=st.floats(1.0, 5000.0),
    sigma=st.floats(0.0, 0.05),
    volume=st.floats(0.0, 1e7),
)
def test_costs_are_never_negative_and_always_against_the_trader(
    qty: int, price: float, sigma: float, volume: float
) -> None:
    f = fill_orders(float(qty), price, sigma, volume, DEFAULT)
    assert f.commission >= 0.0 and f.spread_cost >= 0.0 and f.impact_cost >= 0.0
    if qty > 0:
        assert f.price >= price
    elif qty < 0:
        assert f.price <= price
    # the costs inside the price are exactly spread plus impact
    assert abs(qty) * abs(float(f.price) - price) == pytest.approx(
        float(f.spread_cost + f.impact_cost), rel=1e-9, abs=1e-9
    )
