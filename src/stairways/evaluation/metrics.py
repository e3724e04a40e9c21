"""Performance metrics of a replayed evaluation, computed from its trace.

Conventions (each session is one episode that starts from the same starting capital ``C``):

- Window returns: the steps of a session are grouped into windows of ``W`` minutes (default
  30) counted from the session's first step; a window's return is
  ``r_w = (sum of net step P&L in the window) / C``. A full session (390 minutes) has 13
  windows, a half day (210 minutes) has 7; a trailing partial window is kept so that no P&L is
  dropped.
- Sharpe ratio: ``mean(r_w) / std(r_w, ddof=1) * sqrt(N)`` with
  ``N = trading_days_per_year * (windows observed / sessions observed)``, so 13 * 252 = 3276
  when every session is a full day and proportionally fewer when the split contains half days
  (the annualisation counts the windows a year of such sessions really has). Zero P&L in every
  window gives a Sharpe of 0; a non-zero constant return (std 0) has no defined ratio (None).
- Sortino ratio: ``mean(r_w) / sqrt(mean(min(r_w, 0)^2)) * sqrt(N)``; None without a loss.
- Total return: ``sum of net P&L / C``; sessions do not compound, so the annualised return is
  ``total_return * trading_days_per_year / sessions``.
- Max drawdown: largest fall from a running peak of the chained equity ``C + cumulative net
  P&L`` over all sessions in date order, as a fraction of that peak; ``max_session_drawdown``
  is the worst intraday drawdown of any single session.
- Win rate: share of sessions whose net P&L is strictly positive.
- Trades per day: orders filled ((step, ticker) pairs with a non-zero fill) per session.
- Hold rate: share of steps whose action kept every target (the env's ``action_changed`` is 0).
- Turnover: traded notional at fill prices / C, per session.
- Gross P&L is P&L before trading costs. Fees share of gross P&L: commissions / |gross P&L|;
  costs share: (commissions + spread + impact) / |gross P&L|; both None when gross is zero.
- Episode reward: the sum of step rewards of each session; mean and population std (ddof=0, as
  Stable-Baselines3's evaluate_policy reports it). Mean episode length is in steps.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from stairways.evaluation.traces import Trace, ts_ns

NS_PER_MINUTE = 60_000_000_000


@dataclass(frozen=True)
class Metrics:
    """The metric set of one evaluated policy (see the module docstring for definitions)."""

    sessions: int
    steps: int
    total_pnl: float
    gross_pnl: float
    total_fees: float
    total_costs: float
    total_return: float
    annualised_return: float
    sharpe: float | None
    sortino: float | None
    windows: int
    windows_per_year: float
    max_drawdown: float
    max_session_drawdown: float
    win_rate: float
    trades_per_day: float
    hold_rate: float
    turnover_per_day: float
    fees_share_of_gross: float | None
    costs_share_of_gross: float | None
    mean_episode_length: float
    episode_reward_mean: float
    episode_reward_std: float

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain JSON-ready mapping."""
        return asdict(self)


def window_returns(
    session: np.ndarray,
    ts_ns: np.ndarray,
    pnl: np.ndarray,
    capital: float,
    window_minutes: int,
) -> tuple[np.ndarray, int]:
    """Per-window returns ``r_w`` in session then time order, and the number of sessions.

    :param session: session index of each step (rows grouped by session)
    :param ts_ns: int64 nanoseconds of each step
    :param pnl: net P&L of each step
    :param capital: starting capital of every session
    :param window_minutes: window length W in minutes
    """
    if capital <= 0:
        raise ValueError(f"starting capital must be positive, got {capital}")
    if len(session) == 0:
        return np.zeros(0), 0
    _, first_row, sess_pos = np.unique(session, return_index=True, return_inverse=True)
    offset = (ts_ns - ts_ns[first_row][sess_pos]) // NS_PER_MINUTE
    window = offset // window_minutes
    # Windows are keyed by (session position, window id); both are small non-negative ints.
    key = sess_pos.astype(np.int64) * (int(window.max()) + 1) + window
    _, inverse = np.unique(key, return_inverse=True)
    sums = np.bincount(inverse, weights=pnl)
    return sums / capital, len(first_row)


def sharpe_ratio(returns: np.ndarray, periods_per_year: float) -> float | None:
    """Annualised Sharpe ratio ``mean / std(ddof=1) * sqrt(periods_per_year)``."""
    if len(returns) < 2:
        return None
    sd = float(np.std(returns, ddof=1))
    mean = float(np.mean(returns))
    if sd == 0.0:
        return 0.0 if mean == 0.0 else None
    return mean / sd * math.sqrt(periods_per_year)


def sortino_ratio(returns: np.ndarray, periods_per_year: float) -> float | None:
    """Annualised Sortino ratio with a zero target: ``mean / downside deviation * sqrt(N)``."""
    if len(returns) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    mean = float(np.mean(returns))
    if downside == 0.0:
        return 0.0 if mean == 0.0 else None
    return mean / downside * math.sqrt(periods_per_year)


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a fraction of that peak (0 when never below)."""
    if len(equity) == 0:
        return 0.0
    peak = np.maximum.accumulate(equity)
    return float(np.max((peak - equity) / peak))


def compute_metrics(
    trace: Trace, *, window_minutes: int = 30, trading_days_per_year: int = 252
) -> Metrics:
    """All metrics of a trace (definitions in the module docstring)."""
    f = trace.frame
    capital = trace.meta.starting_capital
    session = f["session"].to_numpy()
    pnl = f["step_pnl"].to_numpy()
    returns, n_sessions = window_returns(session, ts_ns(f), pnl, capital, window_minutes)
    periods = trading_days_per_year * len(returns) / n_sessions if n_sessions else 0.0

    _, sess_pos = np.unique(session, return_inverse=True)
    session_pnl = np.bincount(sess_pos, weights=pnl, minlength=n_sessions)
    session_reward = np.bincount(sess_pos, weights=f["reward"].to_numpy(), minlength=n_sessions)
    lengths = np.bincount(sess_pos, minlength=n_sessions)

    filled = trace.ticker("fill_qty") != 0.0
    notional = float(f["notional"].sum())
    fees = float(f["fees"].sum())
    costs = fees + float(f["spread_cost"].sum()) + float(f["impact_cost"].sum())
    gross = float(f["gross_pnl"].sum())
    total = float(pnl.sum())
    total_return = total / capital
    chained = capital + np.cumsum(pnl)
    chained = np.concatenate([[capital], chained])
    return Metrics(
        sessions=n_sessions,
        steps=len(f),
        total_pnl=total,
        gross_pnl=gross,
        total_fees=fees,
        total_costs=costs,
        total_return=total_return,
        annualised_return=total_return * trading_days_per_year / n_sessions if n_sessions else 0.0,
        sharpe=sharpe_ratio(returns, periods),
        sortino=sortino_ratio(returns, periods),
        windows=len(returns),
        windows_per_year=periods,
        max_drawdown=max_drawdown(chained),
        max_session_drawdown=float(f["drawdown"].max()) if len(f) else 0.0,
        win_rate=float(np.mean(session_pnl > 0.0)) if n_sessions else 0.0,
        trades_per_day=float(filled.sum()) / n_sessions if n_sessions else 0.0,
        hold_rate=float(np.mean(f["action_changed"].to_numpy() == 0)) if len(f) else 0.0,
        turnover_per_day=notional / capital / n_sessions if n_sessions else 0.0,
        fees_share_of_gross=fees / abs(gross) if gross != 0.0 else None,
        costs_share_of_gross=costs / abs(gross) if gross != 0.0 else None,
        mean_episode_length=float(lengths.mean()) if n_sessions else 0.0,
        episode_reward_mean=float(session_reward.mean()) if n_sessions else 0.0,
        episode_reward_std=float(session_reward.std(ddof=0)) if n_sessions else 0.0,
    )
