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


def test_drawdown_is_measured_on_cumulative_pnl_against_the_capital_at_risk() -> None:
    # Cumulative P&L: +1000 -> +500 | -500 -> +200; the worst fall is 1000 -> -500 = 1500.
    trace = make_trace([[1000.0, -500.0], [-1000.0, 700.0]])
    m = compute_metrics(trace)
    assert m.max_drawdown == pytest.approx(1500.0 / CAPITAL)
    # Within a session the second one falls 1000 from its starting capital.
    assert m.max_session_drawdown == pytest.approx(1000.0 / CAPITAL)
    assert m.total_pnl == pytest.approx(200.0)
    assert m.sum_daily_returns == pytest.approx(0.002)
    assert m.annualised_return == pytest.approx(0.002 * 252 / 2)
    assert m.mean_daily_pnl == pytest.approx(100.0)


def test_drawdown_counts_from_the_start_when_the_first_day_loses() -> None:
    m = compute_metrics(make_trace([[-300.0], [100.0], [-50.0]]))
    assert m.max_drawdown == pytest.approx(300.0 / CAPITAL)


def test_losses_beyond_the_capital_are_an_explicit_event_and_drawdown_exceeds_one() -> None:
    capital = 1_000.0
    # Session 1 loses 800, session 2 loses 400 (cumulative -1200: the capital is gone), and
    # session 3's equity dips below zero inside the session.
    trace = make_trace([[-800.0], [-400.0], [-600.0, -500.0, 1000.0]], capital=capital)
    m = compute_metrics(trace)
    assert m.capital_exhausted_after_sessions == 2
    assert m.negative_equity_steps == 1  # 1000 - 600 - 500 = -100 at the second step
    assert m.max_drawdown == pytest.approx(2300.0 / capital)
    healthy = compute_metrics(make_trace([[100.0], [-50.0]]))
    assert healthy.capital_exhausted_after_sessions is None
    assert healthy.negative_equity_steps == 0


def test_daily_sharpe_uses_session_pnl_and_comes_with_a_seeded_interval() -> None:
    daily = [120.0, -40.0, 75.0, 10.0, -5.0, 60.0]
    trace = make_trace([[d / 2, d / 2] for d in daily])
    m = compute_metrics(trace, resamples=2_000, seed=7)
    r = np.array(daily) / CAPITAL
    assert m.daily_sharpe == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert m.daily_sharpe_low is not None and m.daily_sharpe_high is not None
    assert m.daily_sharpe_low < m.daily_sharpe < m.daily_sharpe_high
    again = compute_metrics(trace, resamples=2_000, seed=7)
    assert (again.daily_sharpe_low, again.daily_sharpe_high) == (
        m.daily_sharpe_low,
        m.daily_sharpe_high,
    )
    other = compute_metrics(trace, resamples=2_000, seed=8)
    assert other.daily_sharpe_low != m.daily_sharpe_low
    assert m.mean_daily_pnl_lower_bound is not None
    assert m.mean_daily_pnl_lower_bound < m.mean_daily_pnl
    assert m.daily_pnl_std == pytest.approx(float(np.std(daily, ddof=1)))


def test_windows_inside_a_session_that_move_together_overstate_the_daily_sharpe() -> None:
    rng = np.random.default_rng(3)
    sessions = []
    for _ in range(60):
        day = rng.normal(50.0, 100.0)
        # 13 windows sharing the day's drift plus independent noise
        sessions.append(spread(list(day / 13 + rng.normal(0.0, 5.0, 13))))
    m = compute_metrics(make_trace(sessions), resamples=500)
    assert m.sharpe is not None and m.daily_sharpe is not None
    assert m.sharpe > m.daily_sharpe * 1.5


def test_earned_reward_sums_only_the_money_component() -> None:
    trace = make_trace([[10.0, -4.0], [0.0, 0.0]], reward=[[1.0, 2.0], [0.5, 0.5]])
    m = compute_metrics(trace)
    # The factory's only component is "pnl", equal to the reward.
    assert m.earned_reward_mean == pytest.approx((3.0 + 1.0) / 2)
    missing = compute_metrics(trace, earned_component="hold")
    assert missing.earned_reward_mean is None


def test_reward_pnl_disagreement_counts_sessions_with_opposite_signs() -> None:
    pnl = [[5.0], [-5.0], [5.0], [0.0]]
    reward = [[1.0], [1.0], [-1.0], [1.0]]  # agree, disagree, disagree, undecided
    m = compute_metrics(make_trace(pnl, reward=reward))
    assert m.reward_pnl_disagreement == pytest.approx(2 / 3)
    flat = compute_metrics(make_trace([[0.0], [0.0]], reward=[[0.1], [0.1]]))
    assert flat.reward_pnl_disagreement is None


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
def test_window_returns_sum_to_the_sum_of_daily_returns(pnl: list[list[float]]) -> None:
    m = compute_metrics(make_trace(pnl), resamples=200)
    trace = make_trace(pnl)
    f = trace.frame
    ts = ts_ns(f)
    returns, n = window_returns(f["session"].to_numpy(), ts, f["step_pnl"].to_numpy(), CAPITAL, 30)
    assert n == len(pnl)
    assert returns.sum() == pytest.approx(m.sum_daily_returns, abs=1e-9)
    assert m.total_pnl == pytest.approx(sum(sum(p) for p in pnl), abs=1e-6)
    assert m.mean_daily_pnl == pytest.approx(m.total_pnl / len(pnl), abs=1e-9)
    assert 0.0 <= m.max_drawdown < 1.0
    assert 0.0 <= m.win_rate <= 1.0


@settings(max_examples=60, deadline=None)
@given(pnl_lists, st.floats(0.01, 100.0))
def test_sharpe_is_unchanged_when_pnl_scaled_by_positive_factor(
    pnl: list[list[float]], factor: float
) -> None:
    trace = make_trace(pnl)
    base = compute_metrics(trace, resamples=200)
    scaled = compute_metrics(make_trace([[x * factor for x in p] for p in pnl]), resamples=200)
    f = trace.frame
    windows, _ = window_returns(
        f["session"].to_numpy(), ts_ns(f), f["step_pnl"].to_numpy(), CAPITAL, 30
    )
    daily = np.array([sum(p) for p in pnl])
    for a, b, values in (
        (base.sharpe, scaled.sharpe, windows),
        (base.daily_sharpe, scaled.daily_sharpe, daily),
    ):
        # Nearly constant returns (std below 1e-9 of the mean, hypothesis finds them) leave a
        # ratio whose rounding error exceeds the tolerance: float64, not the metric, is tested.
        if len(values) > 1 and 0.0 < np.std(values, ddof=1) < 1e-9 * abs(np.mean(values)):
            continue
        if a is None:
            assert b is None or math.isfinite(b)
        else:
            assert b == pytest.approx(a, rel=1e-6, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(-1e5, 1e5, allow_nan=False), min_size=1, max_size=50))
def test_max_drawdown_equals_brute_force_over_all_pairs(daily: list[float]) -> None:
    path = np.concatenate([[0.0], np.cumsum(daily)])
    brute = max(
        (path[i] - path[j] for i in range(len(path)) for j in range(i, len(path))),
        default=0.0,
    )
    assert max_drawdown(np.cumsum(daily), CAPITAL) == pytest.approx(
        max(brute, 0.0) / CAPITAL, abs=1e-9
    )
