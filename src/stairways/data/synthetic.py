"""The seeded synthetic market: NVDA and MSFT 1-minute regular-hours bars with a planted signal.

It is the embedded default when a user has no data and the ground truth the tests rely on. The
same seed gives the same bars, bit for bit, on any machine (all randomness is drawn up front from
numpy's PCG64; the sequential part runs in one numba kernel that draws nothing).

Prices (split-adjusted, NVDA quoted after its June 2024 10-for-1 split)
    Each session's close follows a smooth anchor path through approximate quarter-end levels of
    2022-2024 (NVDA about $11-$150, MSFT about $220-$450), plus a random deviation that mean
    reverts toward the anchor with a half-life of about two weeks (so levels stay in range while
    the minute-to-minute path is random). Outside 2022-2024 the anchor is flat at its end values.
    The daily anchor move is spread evenly over the overnight gap and the session's bars: about
    0.3 bp per bar, far below the noise and the costs, and not related to the planted signal.

Volatility
    A market volatility regime (calm x0.75 / normal / stressed x1.6, a Markov chain over sessions
    staying put with probability 0.97) times an AR(1) log-volatility per session, times an
    intraday U-shape (higher after the open, somewhat higher before the close), times a
    minute-level GARCH(1,1) (alpha 0.06, beta 0.92) on a market shock and on each ticker's own
    shock. Annualised volatility is about 55 % for NVDA and 27 % for MSFT, a fifth of the
    variance falling overnight.

Correlation, gaps, jumps
    Each ticker's shock is ``sqrt(rho) * market + sqrt(1 - rho) * own`` (``correlation``,
    default 0.62), which gives a 1-minute return correlation of about 0.55-0.65. Every session
    opens with an overnight gap (correlated the same way; about four earnings-sized gaps a year
    per ticker) and each bar can jump (``jumps_per_session``, more likely near the open; six
    local standard deviations on average).

Bars
    Open is the previous close plus a small microstructure move (the gap at a session's first
    bar); high and low are the exact extremes of a Brownian bridge from open to close with the
    bar's variance; prices are rounded to cents. Volume is U-shaped (highest at the close),
    scales with the volatility regime, rises with the size of the bar's move and is noisy; vwap
    lies inside [low, high]; trade_count is volume over a typical trade size, with noise.

Planted signal (``signal``, ``signal_strength``; 0 turns it off entirely)
    ``lead_lag`` (default): MSFT's recent returns predict NVDA's following returns. NVDA's drift
    in bar ``i`` is ``strength * beta * (1 - phi) * z_i`` where ``z_i`` is the exponentially
    weighted sum (decay ``phi``, half-life ``lead_lag_halflife_bars``, default 5 bars) of MSFT's
    close-to-close 1-minute log returns up to bar ``i - 1`` of the same session. One unit of
    MSFT return therefore adds ``strength * beta`` (default 1.0) of drift to NVDA, spread over
    the following bars and never into the bar in which it happened. The agent sees bar ``t``'s
    close (MSFT's ret_1, ret_5 and ret_15 features carry ``z``) and fills at bar ``t + 1``'s
    open; the drift acts inside bars ``t + 1, t + 2, ...`` (between their open and close), so it
    is earned over the holding period after that fill. At the default strength, going long or
    short NVDA for 10 bars with the sign of MSFT's 5-bar return earns several basis points per
    trade after costs on 2024; at strength 0 the same rule loses exactly its costs (plus noise).
    ``vwap_reversion``: each ticker's drift in bar ``i`` is ``-strength * rate * (log close_{i-1}
    - log vwap_{i-1})``, a pull toward the running session VWAP (volume-weighted closes), which
    the close/VWAP feature shows. ``both`` plants the two.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from stairways.data import calendar as cal
from stairways.data.schema import conform
from stairways.data.settings import SyntheticConfig
from stairways.errors import InputError

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
# Internal ticker order: the follower first, the leader second (the lead-lag runs MSFT -> NVDA).
TICKERS: tuple[str, ...] = ("NVDA", "MSFT")
_FULL_DAY = cal.FULL_SESSION_MINUTES
_TRADING_DAYS = 252.0
_OVERNIGHT_SHARE = 0.2  # fraction of daily variance falling between the close and the open
_GARCH_ALPHA = 0.06
_GARCH_BETA = 0.92
_ANCHOR_REVERSION = 0.12  # per session: deviation half-life of about 5 sessions
_REGIME_MULT = np.array([0.75, 1.0, 1.6])
_REGIME_STAY = 0.97
# Where a regime goes when it changes: calm and stressed mostly return to normal.
_REGIME_NEXT = np.array([[0.0, 0.8, 0.2], [0.6, 0.0, 0.4], [0.2, 0.8, 0.0]])
_EARNINGS_GAPS_PER_YEAR = 4.0
_JUMP_SCALE = 6.0  # jump size in local (bar) standard deviations


@dataclass(frozen=True)
class _Profile:
    """Per-ticker levels: volatility, volume, trade size and the price anchor knots."""

    annual_vol: float
    shares_per_day: float
    trade_size: float
    anchor: tuple[tuple[str, float], ...]


# Approximate quarter-end closes 2022-2024 (NVDA split-adjusted), used only as a level anchor.
_PROFILES: dict[str, _Profile] = {
    "NVDA": _Profile(
        annual_vol=0.52,
        shares_per_day=4.0e8,
        trade_size=140.0,
        anchor=(
            ("2022-01-03", 30.1),
            ("2022-03-31", 27.3),
            ("2022-06-30", 15.2),
            ("2022-09-30", 12.1),
            ("2022-10-14", 11.3),
            ("2022-12-30", 14.6),
            ("2023-03-31", 27.8),
            ("2023-06-30", 42.3),
            ("2023-09-29", 43.5),
            ("2023-12-29", 49.5),
            ("2024-03-28", 90.4),
            ("2024-06-28", 123.5),
            ("2024-09-30", 121.4),
            ("2024-12-31", 134.3),
        ),
    ),
    "MSFT": _Profile(
        annual_vol=0.26,
        shares_per_day=2.5e7,
        trade_size=90.0,
        anchor=(
            ("2022-01-03", 334.8),
            ("2022-03-31", 308.3),
            ("2022-06-30", 256.8),
            ("2022-09-30", 232.9),
            ("2022-11-03", 214.3),
            ("2022-12-30", 239.8),
            ("2023-03-31", 288.3),
            ("2023-06-30", 340.5),
            ("2023-09-29", 315.8),
            ("2023-12-29", 376.0),
            ("2024-03-28", 420.7),
            ("2024-06-28", 446.9),
            ("2024-09-30", 430.3),
            ("2024-12-31", 421.5),
        ),
    ),
}


def generator_details(cfg: SyntheticConfig) -> dict[str, object]:
    """The parameters that label a generated store (recorded as the store's provenance)."""
    return {
        "generator": "stairways.synthetic",
        "version": GENERATOR_VERSION,
        **cfg.model_dump(mode="json"),
    }


def _anchor_log_prices(profile: _Profile, dates: pd.DatetimeIndex) -> np.ndarray:
    """Log anchor price at each session date, log-linear between knots, flat outside them."""
    knots = np.array([pd.Timestamp(d).value for d, _ in profile.anchor], dtype=np.float64)
    levels = np.log(np.array([p for _, p in profile.anchor], dtype=np.float64))
    x = dates.as_unit("ns").asi8.astype(np.float64)
    return np.interp(x, knots, levels)


def _vol_shape(k: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Intraday volatility multiplier: high after the open, raised before the close."""
    return 1.0 + 1.6 * np.exp(-k / 20.0) + 0.9 * np.exp(-(m - 1 - k) / 15.0)


def _volume_shape(k: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Intraday volume multiplier: high after the open, highest into the close."""
    return 1.0 + 2.0 * np.exp(-k / 25.0) + 2.5 * np.exp(-(m - 1 - k) / 20.0)


@njit(cache=True)
def _price_kernel(
    m: np.ndarray,
    sigma: np.ndarray,
    e_mkt: np.ndarray,
    e_own: np.ndarray,
    jumps: np.ndarray,
    open_noise: np.ndarray,
    gaps: np.ndarray,
    anchor: np.ndarray,
    volume: np.ndarray,
    rho: float,
    ll_kappa: float,
    ll_phi: float,
    vr_rate: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walk every session bar by bar; returns log open, log close and each bar's variance.

    Arrays indexed [ticker, bar] use ticker 0 = NVDA (follower), 1 = MSFT (leader).
    """
    n_t, n = sigma.shape
    lo = np.empty((n_t, n))
    lc = np.empty((n_t, n))
    var = np.empty((n_t, n))
    a = np.sqrt(rho)
    b = np.sqrt(1.0 - rho)
    omega = 1.0 - _GARCH_ALPHA - _GARCH_BETA
    h_m = 1.0
    prev_em2 = 1.0
    h_o = np.ones(n_t)
    prev_eo2 = np.ones(n_t)
    prev_close = anchor[:, 0].copy()
    prev_anchor = anchor[:, 0].copy()
    vwap_pv = np.zeros(n_t)
    vwap_v = np.zeros(n_t)
    mu = np.zeros(n_t)
    i = 0
    for s in range(m.shape[0]):
        ms = m[s]
        drift = np.empty(n_t)
        for t in range(n_t):
            # The session's drift closes the gap to the anchor slowly: levels stay in range.
            total = (anchor[t, s] - prev_anchor[t]) - _ANCHOR_REVERSION * (
                prev_close[t] - prev_anchor[t]
            )
            drift[t] = total / (ms + 1)
            prev_anchor[t] = anchor[t, s]
            vwap_pv[t] = 0.0
            vwap_v[t] = 0.0
        z = 0.0
        for k in range(ms):
            h_m = omega + _GARCH_ALPHA * prev_em2 * h_m + _GARCH_BETA * h_m
            prev_em2 = e_mkt[i] * e_mkt[i]
            x_m = np.sqrt(h_m) * e_mkt[i]
            for t in range(n_t):
                h_o[t] = omega + _GARCH_ALPHA * prev_eo2[t] * h_o[t] + _GARCH_BETA * h_o[t]
                prev_eo2[t] = e_own[t, i] * e_own[t, i]
                mu[t] = 0.0
                if k > 0 and vr_rate > 0.0 and vwap_v[t] > 0.0:
                    mu[t] = -vr_rate * (lc[t, i - 1] - np.log(vwap_pv[t] / vwap_v[t]))
            # Lead-lag: NVDA drifts with MSFT's past returns (z holds them up to bar i - 1).
            mu[0] += ll_kappa * z
            for t in range(n_t):
                if k == 0:
                    lo[t, i] = prev_close[t] + gaps[t, s] + drift[t]
                else:
                    lo[t, i] = lc[t, i - 1] + open_noise[t, i]
                sd = sigma[t, i]
                shock = sd * (a * x_m + b * np.sqrt(h_o[t]) * e_own[t, i])
                var[t, i] = sd * sd * (rho * h_m + (1.0 - rho) * h_o[t])
                lc[t, i] = lo[t, i] + shock + jumps[t, i] + mu[t] + drift[t]
                price = np.exp(lc[t, i])
                vwap_pv[t] += price * volume[t, i]
                vwap_v[t] += volume[t, i]
            leader_ret = lc[1, i] - (lo[1, i] if k == 0 else lc[1, i - 1])
            z = ll_phi * z + leader_ret
            i += 1
        for t in range(n_t):
            prev_close[t] = lc[t, i - 1]
    return lo, lc, var


def _regime_multipliers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Volatility multipliers of a Markov chain of regimes (calm, normal, stressed) over sessions.

    The multipliers are scaled so that their long-run mean square is 1: regimes move volatility
    around its level without inflating it.
    """
    trans = _REGIME_STAY * np.eye(3) + (1.0 - _REGIME_STAY) * _REGIME_NEXT
    evals, evecs = np.linalg.eig(trans.T)
    stationary = np.real(evecs[:, np.argmin(np.abs(evals - 1.0))])
    stationary = stationary / stationary.sum()
    mult = _REGIME_MULT / np.sqrt(float(stationary @ _REGIME_MULT**2))
    u = rng.random(n)
    pick = rng.random(n)
    out = np.empty(n)
    state = 1
    for s in range(n):
        if u[s] > _REGIME_STAY:
            state = int(np.searchsorted(np.cumsum(_REGIME_NEXT[state]), pick[s], side="right"))
            state = min(state, 2)
        out[s] = mult[state]
    return out


def generate(cfg: SyntheticConfig, symbols: Sequence[str] = ("NVDA", "MSFT")) -> pd.DataFrame:
    """Generate the synthetic market as a canonical bar frame (see :mod:`stairways.data.schema`).

    :param cfg: seed, date range and planted-signal settings
    :param symbols: which of NVDA and MSFT to return (both are always simulated, so a ticker's
        bars do not depend on which others were asked for)
    """
    wanted = tuple(symbols)
    unknown = sorted(set(wanted) - set(TICKERS))
    if unknown or not wanted or len(set(wanted)) != len(wanted):
        raise InputError(
            f"the synthetic market simulates {', '.join(TICKERS)}; asked for {list(wanted)}"
        )
    sess = cal.sessions(cfg.start, cfg.end)
    if len(sess) == 0:
        raise InputError(f"no XNYS sessions between {cfg.start} and {cfg.end}")
    rng = np.random.Generator(np.random.PCG64(cfg.seed))
    n_s = len(sess)
    m = sess.minutes.astype(np.int64)
    n = int(m.sum())
    n_t = len(TICKERS)
    sid = np.repeat(np.arange(n_s), m)
    starts = np.concatenate(([0], np.cumsum(m)[:-1]))
    k = (np.arange(n) - starts[sid]).astype(np.float64)
    mm = m[sid].astype(np.float64)
    rho = cfg.correlation

    # Session level: regime, persistent log-volatility, per-ticker idiosyncratic level.
    regime = _regime_multipliers(rng, n_s)
    x = np.empty(n_s)
    shocks = rng.standard_normal(n_s)
    x[0] = shocks[0] * 0.23
    for s in range(1, n_s):
        x[s] = 0.85 * x[s - 1] + 0.12 * shocks[s]
    day_vol = regime * np.exp(x - 0.23**2)
    own_day = np.exp(0.1 * rng.standard_normal((n_t, n_s)))

    # Intraday shapes, normalised so that a full session carries the whole intraday variance.
    full_k = np.arange(_FULL_DAY, dtype=np.float64)
    full_m = np.full(_FULL_DAY, float(_FULL_DAY))
    vol_norm = np.sqrt(np.mean(_vol_shape(full_k, full_m) ** 2))
    volu_norm = float(np.sum(_volume_shape(full_k, full_m)))
    u_vol = _vol_shape(k, mm) / vol_norm
    u_volume = _volume_shape(k, mm) / volu_norm

    annual = np.array([_PROFILES[t].annual_vol for t in TICKERS])
    day_sd = annual / np.sqrt(_TRADING_DAYS)
    minute_sd = day_sd * np.sqrt(1.0 - _OVERNIGHT_SHARE) / np.sqrt(_FULL_DAY)
    gap_sd = day_sd * np.sqrt(_OVERNIGHT_SHARE)
    sigma = minute_sd[:, None] * (day_vol[sid] * own_day[:, sid]) * u_vol[None, :]

    e_mkt = rng.standard_normal(n)
    e_own = rng.standard_normal((n_t, n))
    open_noise = 0.15 * sigma * rng.standard_normal((n_t, n))

    # Jumps: rarer midday, sized in local standard deviations.
    jump_shape = 1.0 + 2.0 * np.exp(-k / 30.0)
    jump_p = cfg.jumps_per_session / _FULL_DAY * jump_shape / np.mean(jump_shape[:_FULL_DAY])
    jump_hit = rng.random((n_t, n)) < jump_p[None, :]
    jumps = np.where(jump_hit, _JUMP_SCALE * sigma * rng.standard_normal((n_t, n)), 0.0)

    g_m = rng.standard_normal(n_s)
    g_o = rng.standard_normal((n_t, n_s))
    earnings = rng.random((n_t, n_s)) < _EARNINGS_GAPS_PER_YEAR / _TRADING_DAYS
    big = 4.0 * rng.standard_normal((n_t, n_s))
    gaps = (
        gap_sd[:, None] * day_vol[None, :] * (np.sqrt(rho) * g_m[None, :] + np.sqrt(1 - rho) * g_o)
    )
    gaps = gaps + np.where(earnings, gap_sd[:, None] * big, 0.0)

    # Volume: level follows the volatility regime, U-shaped, larger on bigger moves, noisy.
    shares = np.array([_PROFILES[t].shares_per_day for t in TICKERS])
    day_volume = (
        shares[:, None]
        * day_vol[None, :] ** 0.8
        * np.exp(0.25 * rng.standard_normal((n_t, n_s)) - 0.03)
    )
    move = np.abs(np.sqrt(rho) * e_mkt[None, :] + np.sqrt(1 - rho) * e_own)
    noise = np.exp(0.35 * rng.standard_normal((n_t, n)) - 0.5 * 0.35**2)
    volume = day_volume[:, sid] * u_volume[None, :] * noise * (0.7 + 0.375 * move)
    volume = np.where(jump_hit, volume * 3.0, volume)
    volume = np.maximum(np.round(volume), 1.0)

    anchor = np.stack([_anchor_log_prices(_PROFILES[t], sess.dates) for t in TICKERS])
    strength = cfg.signal_strength
    phi = 0.5 ** (1.0 / cfg.lead_lag_halflife_bars)
    ll_kappa = (
        strength * cfg.lead_lag_beta * (1.0 - phi) if cfg.signal in ("lead_lag", "both") else 0.0
    )
    vr_rate = (
        strength * cfg.vwap_reversion_rate if cfg.signal in ("vwap_reversion", "both") else 0.0
    )

    lo, lc, var = _price_kernel(
        m, sigma, e_mkt, e_own, jumps, open_noise, gaps, anchor, volume, rho, ll_kappa, phi, vr_rate
    )

    # High and low: exact extremes of a Brownian bridge from open to close with the bar variance.
    move_oc = lc - lo
    u1 = rng.random((n_t, n))
    u2 = rng.random((n_t, n))
    up = 0.5 * (move_oc + np.sqrt(move_oc**2 - 2.0 * var * np.log1p(-u1)))
    down = 0.5 * (move_oc - np.sqrt(move_oc**2 - 2.0 * var * np.log1p(-u2)))
    opens = np.round(np.exp(lo), 2)
    closes = np.round(np.exp(lc), 2)
    highs = np.maximum(np.round(np.exp(lo + up), 2), np.maximum(opens, closes))
    lows = np.maximum(np.minimum(np.round(np.exp(lo + down), 2), np.minimum(opens, closes)), 0.01)
    centre = (opens + highs + lows + closes) / 4.0
    vwap = np.clip(centre + 0.1 * (highs - lows) * rng.standard_normal((n_t, n)), lows, highs)
    sizes = np.array([_PROFILES[t].trade_size for t in TICKERS])
    trades = np.maximum(
        np.round(volume / sizes[:, None] * np.exp(0.2 * rng.standard_normal((n_t, n)))), 1.0
    )

    ts = cal.session_minutes(cfg.start, cfg.end)
    frames = []
    for t, sym in enumerate(TICKERS):
        if sym not in wanted:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "symbol": sym,
                    "ts": ts,
                    "open": opens[t],
                    "high": highs[t],
                    "low": lows[t],
                    "close": closes[t],
                    "volume": volume[t],
                    "vwap": np.round(vwap[t], 4),
                    "trade_count": trades[t].astype(np.int64),
                }
            )
        )
    out = conform(pd.concat(frames, ignore_index=True))
    log.info(
        "generated %d synthetic bars (%s, %d sessions %s..%s, seed %d, signal %s x%.2f)",
        len(out),
        ",".join(wanted),
        n_s,
        sess.dates[0].date(),
        sess.dates[-1].date(),
        cfg.seed,
        cfg.signal,
        cfg.signal_strength,
    )
    return out
