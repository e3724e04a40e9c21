import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.errors import InputError
from stairways.market import step_state as ss


def _constants(prefix: str) -> dict[str, int]:
    return {
        name: value
        for name, value in vars(ss).items()
        if name.startswith(prefix) and name[len(prefix) :].isupper() and isinstance(value, int)
    }


def test_every_scalar_field_has_exactly_one_index_constant() -> None:
    indices = _constants("S_")
    assert sorted(indices.values()) == list(range(len(ss.STEP_FIELDS)))


def test_every_ticker_field_has_exactly_one_index_constant() -> None:
    indices = _constants("T_")
    assert sorted(indices.values()) == list(range(len(ss.TICKER_FIELDS)))


def test_index_constants_point_at_their_named_fields() -> None:
    expected = {
        "S_EQUITY": "equity",
        "S_EQUITY_PREV": "equity_prev",
        "S_CAPITAL": "starting_capital",
        "S_TERMINATED": "terminated",
        "S_TRUNCATED": "truncated",
        "S_NOTIONAL": "step_notional",
    }
    for const, field in expected.items():
        assert ss.STEP_FIELDS[getattr(ss, const)] == field
    assert ss.TICKER_FIELDS[ss.T_SHARES] == "positions"
    assert ss.TICKER_FIELDS[ss.T_FILL_PRICE] == "fill_prices"


def test_width_counts_scalars_and_per_ticker_blocks() -> None:
    assert ss.step_width(2) == len(ss.STEP_FIELDS) + 2 * len(ss.TICKER_FIELDS)
    assert ss.ticker_offset(ss.T_PRICE, 1) == ss.N_SCALAR + ss.N_TICKER + ss.T_PRICE


@settings(max_examples=50, deadline=None)
@given(
    n_tickers=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_info_round_trip_returns_the_same_vector(n_tickers: int, seed: int) -> None:
    row = np.random.default_rng(seed).normal(size=ss.step_width(n_tickers))
    info = ss.info_from_step(row, n_tickers)
    assert info["equity"] == row[ss.S_EQUITY]
    assert info["prices"][n_tickers - 1] == row[ss.ticker_offset(ss.T_PRICE, n_tickers - 1)]
    np.testing.assert_array_equal(ss.step_from_info(info, n_tickers), row)


def test_info_without_a_field_names_it() -> None:
    info = ss.info_from_step(np.zeros(ss.step_width(2)), 2)
    del info["peak_equity"]
    with pytest.raises(InputError, match="peak_equity"):
        ss.step_from_info(info, 2)
