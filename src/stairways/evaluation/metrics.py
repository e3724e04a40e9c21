"""Performance metrics of a replayed evaluation, computed from its trace.

Conventions (each session is one episode that starts flat from the same starting capital ``C``;
sessions do not compound, so ``C`` is the capital at risk every day):

- Daily net P&L ``P_d``: the sum of the net step P&L of session ``d``; its daily return is
  ``P_d / C``. ``mean_daily_pnl`` and ``daily_pnl_std`` (ddof=1) are in dollars.
- Daily Sharpe ratio: ``mean(P_d / C) / std(P_d / C, ddof=1) * sqrt(trading_days_per_year)``,
  shown with a two-sided bootstrap interval (``daily_sharpe_low``, ``daily_sharpe_high``) at
  the configured confidence: sessions resampled with replacement, seeded
  (:mod:`stairways.evaluation.stats`). ``mean_daily_pnl_lower_bound`` is the one-sided
  bootstrap lower bound of the mean daily net P&L at that confidence (the significance gate).
- Window (30-minute) Sharpe ratio ``sharpe``: the steps of a session are grouped into windows of
  ``W`` minutes (default 30) counted from the session's first step; a window's return is
  ``r_w = (sum of net step P&L in the window) / C``. A full session (390 minutes) has 13
  windows, a half day (210 minutes) has 7; a trailing partial window is kept so that no P&L is
  dropped. ``sharpe = mean(r_w) / std(r_w, ddof=1) * sqrt(N)`` with
  ``N = trading_days_per_year * (windows observed / sessions observed)``. Windows within a
  session are positively correlated, so this overstates the daily Sharpe ratio (by about 11 %
  on the demo run); it is kept because the plan's gate is defined on it, and the daily Sharpe
  ratio is always reported next to it. Zero P&L everywhere gives a Sharpe of 0; a non-zero
  constant return (std 0) has no defined ratio (None).
- Sortino ratio (windows): ``mean(r_w) / sqrt(mean(min(r_w, 0)^2)) * sqrt(N)``; None without a
  loss.
- ``sum_daily_returns``: the sum of daily returns on fixed capital, ``sum_d P_d / C``; it is
  not a compounded total return (every day starts again from ``C``).
  ``annualised_return = sum_daily_returns * trading_days_per_year / sessions`` (the mean daily
  return times the days of a year, simple, not compounded).
- Max drawdown ``max_drawdown``: the largest fall of the cumulative net P&L (step by step,
  sessions in date order) from its running peak (the peak starts at 0), as a fraction of the
  capital at risk ``C``. It can exceed 1 when the losses exceed the capital.
  ``max_session_drawdown`` is the worst intraday drawdown of any single session (from the
  session's own peak equity).
- Negative equity is an explicit event: ``negative_equity_steps`` counts steps whose equity
  (``C`` plus the session's P&L so far) was at or below zero, and
  ``capital_exhausted_after_sessions`` is the number of sessions after which the cumulative
  net P&L had first consumed the whole capital (``C + sum <= 0``), None if it never did.
- Win rate: share of sessions whose net P&L is strictly positive.
- Trades per day: orders filled ((step, ticker) pairs with a non-zero fill) per session.
- Hold rate: share of steps whose action kept every target (the env's ``action_changed`` is 0).
- Turnover: traded notional at fill prices / C, per session.
- Gross P&L is P&L before trading costs. Fees share of gross P&L: commissions / |gross P&L|;
  costs share: (commissions + spread + impact) / |gross P&L|; both None when gross is zero.
- Episode reward: the sum of step rewards of each session; mean and population std (ddof=0, as
  Stable-Baselines3's evaluate_policy reports it). Mean episode length is in steps.
- Earned reward: the sum over each session of the reward's money component (``pnl`` by
  default: the term that pays for the equity change net of costs), without shaping bonuses
  (hold, time, completion, exploration); ``earned_reward_mean`` is its mean over sessions, None
  when the reward has no such component. Staying flat earns 0 (or less, after the v3
  reward's risk-free charge).
- ``reward_pnl_disagreement``: the share of sessions whose reward and net P&L have opposite
  signs, among sessions where neither is zero (:mod:`stairways.evaluation.reward_pnl`); None
  when no session is decided.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np

from stairways.evaluation import stats
from stairways.evaluation.reward_pnl import sign_disagreement
from stairways.evaluation.traces import Trace, component_column, ts_ns

log = logging.getLogger(__name__)

NS_PER_MINUTE = 60_000_000_000
EARNED_COMPONENT = "pnl"

# What each metric is, in words, for tables and metrics.json (labels say what a number is).
LABELS: dict[str, str] = {
    "total_pnl": "net P&L, sum over sessions ($)",
    "mean_daily_pnl": "mean daily net P&L ($)",
    "mean_daily_pnl_lower_bound": "mean daily net P&L, bootstrap lower bound ($)",
    "sum_daily_returns": "sum of daily returns on fixed capital",
    "annualised_return": "mean daily return x days per year (simple)",
    "sharpe": "Sharpe ratio, 30-minute windows (annualised)",
    "daily_sharpe": "Sharpe ratio, daily (annualised)",
    "daily_sharpe_low": "daily Sharpe ratio, interval low",
    "daily_sharpe_high": "daily Sharpe ratio, interval high",
    "sortino": "Sortino ratio, 30-minute windows (annualised)",
    "max_drawdown": "max drawdown of cumulative P&L / capital at risk",
    "max_session_drawdown": "worst intraday drawdown of a session",
    "negative_equity_steps": "steps with equity at or below zero",
    "capital_exhausted_after_sessions": "sessions until cumulative losses used up the capital",
    "win_rate": "share of sessions with positive net P&L",
    "trades_per_day": "orders filled per session",
    "hold_rate": "share of steps that kept every target",
    "turnover_per_day": "traded notional / capital, per session",
    "total_fees": "commissions ($)",
    "fees_share_of_gross": "commissions / |gross P&L|",
    "mean_episode_length": "mean steps per session",
    "episode_reward_mean": "mean episode reward (all components)",
    "episode_reward_std": "episode reward std (population)",
    "earned_reward_mean": "mean earned reward (money component only)",
    "reward_pnl_disagreement": "share of sessions where reward and P&L disagree in sign",
}


@dataclass(frozen=True)
class Metrics:
    """The metric set of one evaluated policy (see the module docstring for definitions)."""

    sessions: int
    steps: int
    total_pnl: float
    gross_pnl: float
    total_fees: float
    total_costs: float
    mean_daily_pnl: float
    daily_pnl_std: float | None
    mean_daily_pnl_lower_bound: float | None
    sum_daily_returns: float
    annualised_return: float
    sharpe: float | None
    daily_sharpe: float | None
    daily_sharpe_low: float | None
    daily_sharpe_high: float | None
    confidence: float
    sortino: float | None
    windows: int
    windows_per_year: float
    max_drawdown: float
    max_session_drawdown: float
    negative_equity_steps: int
    capital_exhausted_after_sessions: int | None
    win_rate: float
    trades_per_day: float
    hold_rate: float
    turnover_per_day: float
    fees_share_of_gross: float | None
    costs_share_of_gross: float | None
    mean_episode_length: float
    episode_reward_mean: float
    episode_reward_std: float
    earned_reward_mean: float | None
    reward_pnl_disagreement: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain JSON-ready mapping."""
        return asdict(self)

    def sharpe_text(self) -> str:
        """Both Sharpe ratios in one phrase: 30-minute windows, then daily with its interval."""
        return sharpe_text(self.to_dict())


def _fmt(value: float | int | None, digits: int = 2) -> str:
    return "undefined" if value is None else f"{float(value):.{digits}f}"


def sharpe_text(m: dict[str, float | int | None]) -> str:
    """``Sharpe 1.23 (30-min) / 1.10 daily [-0.8, 3.0]`` from a metrics mapping."""
    low, high = m.get("daily_sharpe_low"), m.get("daily_sharpe_high")
    interval = "" if low is None or high is None else f" [{_fmt(low)}, {_fmt(high)}]"
    window, daily = _fmt(m.get("sharpe")), _fmt(m.get("daily_sharpe"))
    return f"Sharpe {window} (30-min) / {daily} daily{interval}"


@dataclass(frozen=True)
class SessionSeries:
    """Per-session values of one evaluation, in session order (what bootstraps resample).

    :param dates: session dates (ISO strings)
    :param pnl: net P&L per session in dollars
    :param reward: summed reward per session
    :param earned: summed money component of the reward per session (None without one)
    :param length: steps per session
    """

    dates: tuple[str, ...]
    pnl: np.ndarray
    reward: np.ndarray
    earned: np.ndarray | None
    length: np.ndarray

    @property
    def n(self) -> int:
        """Number of sessions."""
        return len(self.dates)


def session_series(trace: Trace, earned_component: str = EARNED_COMPONENT) -> SessionSeries:
    """Sum net P&L, reward and the earned component per session of a trace."""
    f = trace.frame
    session = f["session"].to_numpy()
    keys, first, pos = np.unique(session, return_index=True, return_inverse=True)
    n = len(keys)
    pnl = np.bincount(pos, weights=f["step_pnl"].to_numpy(dtype=np.float64), minlength=n)
    reward = np.bincount(pos, weights=f["reward"].to_numpy(dtype=np.float64), minlength=n)
    col = component_column(earned_component)
    earned = (
        np.bincount(pos, weights=f[col].to_numpy(dtype=np.float64), minlength=n)
        if earned_component in trace.meta.reward_components and col in f.columns
        else None
    )
    dates = f["session_date"].to_numpy()[first]
    return SessionSeries(
        dates=tuple(str(np.datetime64(d, "D")) for d in dates),
        pnl=pnl,
        reward=reward,
        earned=earned,
        length=np.bincount(pos, minlength=n).astype(np.int64),
    )


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
    # Identical returns leave a rounding-error std; they are constant, not a huge ratio.
    if sd <= 1e-12 * abs(mean) or sd == 0.0:
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


def max_drawdown(cumulative_pnl: np.ndarray, capital: float) -> float:
    """Largest fall of cumulative P&L from its running peak (starting at 0), over ``capital``."""
    if capital <= 0:
        raise ValueError(f"capital at risk must be positive, got {capital}")
    if len(cumulative_pnl) == 0:
        return 0.0
    path = np.concatenate([[0.0], np.asarray(cumulative_pnl, dtype=np.float64)])
    peak = np.maximum.accumulate(path)
    return float(np.max(peak - path)) / capital


def capital_exhausted_after(daily_pnl: np.ndarray, capital: float) -> int | None:
    """Sessions after which ``capital + cumulative P&L`` first fell to zero or below."""
    below = np.flatnonzero(capital + np.cumsum(daily_pnl) <= 0.0)
    return int(below[0]) + 1 if len(below) else None


def compute_metrics(
    trace: Trace,
    *,
    window_minutes: int = 30,
    trading_days_per_year: int = 252,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    earned_component: str = EARNED_COMPONENT,
) -> Metrics:
    """All metrics of a trace (definitions in the module docstring).

    :param confidence: confidence of the bootstrap interval and lower bound
    :param resamples: bootstrap resamples of the sessions
    :param seed: bootstrap seed (the same seed gives the same intervals)
    :param earned_component: reward component counted as earned reward
    """
    f = trace.frame
    capital = trace.meta.starting_capital
    session = f["session"].to_numpy()
    pnl = f["step_pnl"].to_numpy()
    returns, n_sessions = window_returns(session, ts_ns(f), pnl, capital, window_minutes)
    periods = trading_days_per_year * len(returns) / n_sessions if n_sessions else 0.0
    series = session_series(trace, earned_component)
    daily = series.pnl

    filled = trace.ticker("fill_qty") != 0.0
    notional = float(f["notional"].sum())
    fees = float(f["fees"].sum())
    costs = fees + float(f["spread_cost"].sum()) + float(f["impact_cost"].sum())
    gross = float(f["gross_pnl"].sum())
    total = float(pnl.sum())
    sum_returns = total / capital

    daily_sharpe = sharpe_ratio(daily / capital, trading_days_per_year)
    sharpe_ci = (
        stats.sharpe_interval(
            daily / capital,
            trading_days_per_year,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
        )
        if n_sessions >= 2
        else None
    )
    lower = (
        stats.mean_interval(daily, confidence=confidence, resamples=resamples, seed=seed)
        if n_sessions >= 2
        else None
    )
    negative_steps = int(np.sum(f["equity"].to_numpy() <= 0.0))
    exhausted = capital_exhausted_after(daily, capital)
    if negative_steps or exhausted is not None:
        log.warning(
            "equity went negative: %d steps at or below zero within sessions; cumulative losses "
            "used up the capital after %s sessions",
            negative_steps,
            "no" if exhausted is None else exhausted,
        )
    check = sign_disagreement(series.reward, daily)
    return Metrics(
        sessions=n_sessions,
        steps=len(f),
        total_pnl=total,
        gross_pnl=gross,
        total_fees=fees,
        total_costs=costs,
        mean_daily_pnl=float(daily.mean()) if n_sessions else 0.0,
        daily_pnl_std=float(daily.std(ddof=1)) if n_sessions >= 2 else None,
        mean_daily_pnl_lower_bound=None if lower is None else lower.lower_bound,
        sum_daily_returns=sum_returns,
        annualised_return=sum_returns * trading_days_per_year / n_sessions if n_sessions else 0.0,
        sharpe=sharpe_ratio(returns, periods),
        daily_sharpe=daily_sharpe,
        daily_sharpe_low=None if sharpe_ci is None else sharpe_ci.low,
        daily_sharpe_high=None if sharpe_ci is None else sharpe_ci.high,
        confidence=confidence,
        sortino=sortino_ratio(returns, periods),
        windows=len(returns),
        windows_per_year=periods,
        max_drawdown=max_drawdown(np.cumsum(pnl), capital),
        max_session_drawdown=float(f["drawdown"].max()) if len(f) else 0.0,
        negative_equity_steps=negative_steps,
        capital_exhausted_after_sessions=exhausted,
        win_rate=float(np.mean(daily > 0.0)) if n_sessions else 0.0,
        trades_per_day=float(filled.sum()) / n_sessions if n_sessions else 0.0,
        hold_rate=float(np.mean(f["action_changed"].to_numpy() == 0)) if len(f) else 0.0,
        turnover_per_day=notional / capital / n_sessions if n_sessions else 0.0,
        fees_share_of_gross=fees / abs(gross) if gross != 0.0 else None,
        costs_share_of_gross=costs / abs(gross) if gross != 0.0 else None,
        mean_episode_length=float(series.length.mean()) if n_sessions else 0.0,
        episode_reward_mean=float(series.reward.mean()) if n_sessions else 0.0,
        episode_reward_std=float(series.reward.std(ddof=0)) if n_sessions else 0.0,
        earned_reward_mean=(
            float(series.earned.mean()) if series.earned is not None and n_sessions else None
        ),
        reward_pnl_disagreement=check.share,
    )
