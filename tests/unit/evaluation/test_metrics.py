import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.evaluation.metrics import (
    compute_metrics,
    max_drawdown,
    sharpe_ratio,
    window_returns,
)
from stairways.evaluation.traces import ts_ns
from tests.unit.evaluation.factory import CAPITAL, make_trace, spread


def test_sharpe_when_two_sessions_of_two_windows_then_matches_hand_computation() -> None:
    trace = make_trace([spread([100.0, -50.0]), spread([200.0, 50.0])])
    m = compute_metrics(trace, window_minutes=30, trading_days_per_year=252)
    # Window returns 1e-3, -5e-4, 2e-3, 5e-4: mean 7.5e-4; deviations 2.5e-4, -1.25e-3,
    # 1.25e-3, -2.5e-4 -> sample variance (6.25e-8 + 1.5625e-6) * 2 / 3 = 1.0833e-6.
    # Two windows per session -> N = 252 * 2 = 504 windows per year.
    expected = 7.5e-4 / math.sqrt(3.25e-6 / 3) * math.sqrt(504)
    assert m.windows == 4
    assert m.windows_per_year == 504
    assert m.sharpe == pytest.approx(expected, rel=1e-12)
    assert m.sharpe == pytest.approx(16.1776, abs=1e-3)


def test_sortino_when_one_losing_window_then_uses_downside_deviation_only() -> None:
    trace = make_trace([spread([100.0, -50.0]), spread([200.0, 50.0])])
    m = compute_metrics(trace)
    downside = math.sqrt((5e-4) ** 2 / 4)
    assert m.sortino == pytest.approx(7.5e-4 / downside * math.sqrt(504), rel=1e-12)


def test_half_day_when_mixed_with_full_day_then_annualisation_counts_real_windows() -> None:
    full = [1.0] * 390
    half = [-0.5] * 210
    m = compute_metrics(make_trace([full, half]))
    # 13 windows in the full day, 7 in the half day: 10 per session on average.
    assert m.windows == 20
    assert m.windows_per_year == pytest.approx(252 * 10)


def test_window_returns_when_session_not_multiple_of_window_then_keeps_trailing_part() -> None:
    session = np.zeros(45, dtype=np.int64)
    ts = np.arange(45, dtype=np.int64) * 60_000_000_000
    pnl = np.ones(45)
    returns, n = window_returns(session, ts, pnl, capital=1000.0, window_minutes=30)
    assert n == 1
    np.testing.assert_allclose(returns, [0.030, 0.015])


def test_flat_pnl_then_sharpe_zero_and_no_wins() -> None:
    m = compute_metrics(make_trace([[0.0] * 60, [0.0] * 60]))
    assert m.sharpe == 0.0
    assert m.win_rate == 0.0
    assert m.max_drawdown == 0.0
    assert m.fees_share_of_gross is None


def test_drawdown_when_equity_rises_then_falls_across_sessions_then_measured_on_chain() -> None:
    # Chained equity: 100000 -> 101000 -> 100500 | -> 99500 -> 100200.
    trace = make_trace([[1000.0, -500.0], [-1000.0, 700.0]])
    m = compute_metrics(trace)
    assert m.max_drawdown == pytest.approx(1500.0 / 101_000.0)
    # Within a session the second one falls 1000 from its starting capital.
    assert m.max_session_drawdown == pytest.approx(1000.0 / CAPITAL)
    assert m.total_pnl == pytest.approx(200.0)
    assert m.total_return == pytest.approx(0.002)
    assert m.annualised_return == pytest.approx(0.002 * 252 / 2)


def test_win_rate_counts_only_strictly_positive_sessions() -> None:
    m = compute_metrics(make_trace([[5.0, 1.0], [-3.0, 1.0], [1.0, -1.0], [0.0, 0.5]]))
    assert m.win_rate == pytest.approx(0.5)


def test_fees_trades_hold_and_turnover_when_two_fills_then_hand_values() -> None:
    # Two sessions of 4 steps; session 0 buys 10 NVDA at step 0 and sells at step 3.
    fills = [[10.0, 0.0, 0.0, -10.0], [0.0, 0.0, 0.0, 0.0]]
    fees = [[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    pnl = [[-1.0, 3.0, 3.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    m = compute_metrics(make_trace(pnl, fees=fees, fill_qty=fills, fill_price=100.0))
    assert m.total_fees == pytest.approx(2.0)
    assert m.gross_pnl == pytest.approx(8.0)
    assert m.fees_share_of_gross == pytest.approx(0.25)
    assert m.costs_share_of_gross == pytest.approx(0.25)
    assert m.trades_per_day == pytest.approx(1.0)
    assert m.hold_rate == pytest.approx(6 / 8)
    assert m.turnover_per_day == pytest.approx(2000.0 / CAPITAL / 2)


def test_episode_reward_and_length_when_sessions_differ_then_mean_and_population_std() -> None:
    rewards = [[0.1, 0.1, 0.1], [0.3, 0.0, 0.0, 0.0, 0.0]]
    m = compute_metrics(make_trace([[0.0] * 3, [0.0] * 5], reward=rewards))
    assert m.episode_reward_mean == pytest.approx(0.3)
    assert m.episode_reward_std == pytest.approx(0.0)
    assert m.mean_episode_length == pytest.approx(4.0)
    m2 = compute_metrics(make_trace([[0.0] * 2, [0.0] * 2], reward=[[0.5, 0.5], [0.0, 0.0]]))
    assert m2.episode_reward_std == pytest.approx(0.5)


def test_sharpe_when_constant_nonzero_returns_then_undefined() -> None:
    assert sharpe_ratio(np.array([0.01, 0.01, 0.01]), 252) is None
    assert sharpe_ratio(np.array([0.01]), 252) is None


pnl_lists = st.lists(
    st.lists(st.floats(-500.0, 500.0, allow_nan=False), min_size=2, max_size=70),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(pnl_lists)
def test_window_returns_sum_to_total_return(pnl: list[list[float]]) -> None:
    m = compute_metrics(make_trace(pnl))
    trace = make_trace(pnl)
    f = trace.frame
    ts = ts_ns(f)
    returns, n = window_returns(f["session"].to_numpy(), ts, f["step_pnl"].to_numpy(), CAPITAL, 30)
    assert n == len(pnl)
    assert returns.sum() == pytest.approx(m.total_return, abs=1e-9)
    assert m.total_pnl == pytest.approx(sum(sum(p) for p in pnl), abs=1e-6)
    assert 0.0 <= m.max_drawdown < 1.0
    assert 0.0 <= m.win_rate <= 1.0


@settings(max_examples=60, deadline=None)
@given(pnl_lists, st.floats(0.01, 100.0))
def test_sharpe_is_unchanged_when_pnl_scaled_by_positive_factor(
    pnl: list[list[float]], factor: float
) -> None:
    base = compute_metrics(make_trace(pnl)).sharpe
    scaled = compute_metrics(make_trace([[x * factor for x in p] for p in pnl])).sharpe
    if base is None:
        assert scaled is None or math.isfinite(scaled)
    else:
        assert scaled == pytest.approx(base, rel=1e-6, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(1.0, 1e6, allow_nan=False), min_size=1, max_size=50))
def test_max_drawdown_equals_brute_force_over_all_pairs(equity: list[float]) -> None:
    eq = np.array(equity)
    brute = max(
        ((eq[i] - eq[j]) / eq[i] for i in range(len(eq)) for j in range(i, len(eq))),
        default=0.0,
    )
    assert max_drawdown(eq) == pytest.approx(max(brute, 0.0), abs=1e-12)
