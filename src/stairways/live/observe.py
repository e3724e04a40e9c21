"""Observations in the live loop, built by the training env's own code, one bar at a time.

For every symbol an :class:`~stairways.data.features.OnlineFeatures` runs the feature kernel
the panel builder runs offline (warmed up on the same history), the run's
:class:`~stairways.data.normalise.Normaliser` standardises the values, and the env kernel's
:func:`~stairways.env.kernels.write_obs` assembles the observation from the features, the
position fractions and the configured extras, reading the session's bars from arrays laid out
as the env's. So the observation of bar ``k`` is, value for value, the one the env shows the
policy at step ``k`` of the replay.

:class:`SessionBook` is the strategy's own account of the session on the market core's
portfolio arithmetic (:func:`~stairways.market.portfolio.pf_fill`, ``pf_mark``): the broker's
fills are applied to it in the order they arrive and it is marked at every bar's close. Its
equity, drawdown and cash feed the observation, the env's drawdown rule and the journal.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from stairways.brokers.base import MinuteBar
from stairways.data import calendar as cal
from stairways.data.features import FEATURE_NAMES, OnlineFeatureSet, time_ns
from stairways.data.normalise import Normaliser
from stairways.env import kernels as kn
from stairways.env.settings import EnvConfig
from stairways.errors import DataValidationError, InputError
from stairways.market.actions import action_set_id, apply_action, quantity_scale
from stairways.market.portfolio import (
    PF_CASH,
    PF_DRAWDOWN,
    PF_EQUITY,
    PF_FEES,
    PF_MAX_DRAWDOWN,
    PF_PEAK,
    PF_REALISED,
    PF_UNREALISED,
    PF_WIDTH,
    pf_fill,
    pf_mark,
    pf_reset,
)
from stairways.market.settings import MarketConfig

__all__ = ["SessionBook", "SessionObserver", "observation_hash", "session_minutes"]

# market.costs.parkinson_sigma's divisor, the same expression (so the same bits)
_LN2_FACTOR = 2.0 * np.sqrt(np.log(2.0))


def observation_hash(obs: np.ndarray) -> str:
    """sha256 (first 32 hex digits) of the observation's float32 bytes: what the policy saw."""
    if obs.dtype != np.float32 or not obs.flags.c_contiguous:
        obs = np.ascontiguousarray(obs, dtype=np.float32)
    return hashlib.sha256(obs.data).hexdigest()[:32]


def session_minutes(day: date, calendar: str = "XNYS") -> tuple[pd.Timestamp, int]:
    """The session's open (exchange time) and its number of 1-minute bars; refuses a non-session."""
    sess = cal.sessions(day, day, calendar)
    if len(sess) == 0:
        raise InputError(f"{day} is not a {calendar} trading session")
    return pd.Timestamp(sess.opens[0]).tz_convert(cal.EXCHANGE_TZ), int(sess.minutes[0])


class SessionBook:
    """The strategy's account of one session on the market core's portfolio arithmetic.

    :param symbols: tickers in portfolio order
    :param capital: the session's starting capital (the env's ``market.starting_capital``)
    """

    def __init__(self, symbols: Sequence[str], capital: float) -> None:
        self.symbols = tuple(symbols)
        self.index = {s: j for j, s in enumerate(self.symbols)}
        self.row = np.zeros(PF_WIDTH, dtype=np.float64)
        self.shares = np.zeros(len(self.symbols), dtype=np.float64)
        self.avg = np.zeros(len(self.symbols), dtype=np.float64)
        self.capital = float(capital)
        pf_reset(self.row, self.shares, self.avg, self.capital)

    def fill(self, symbol: str, qty: float, price: float, commission: float) -> None:
        """Apply one execution (the price already holds spread and impact)."""
        j = self.index.get(symbol)
        if j is None:
            raise DataValidationError(f"a fill of {symbol} is outside the session's symbols")
        pf_fill(
            self.row,
            self.shares,
            self.avg,
            j,
            float(qty),
            float(price),
            float(commission),
            0.0,
            0.0,
        )

    def mark(self, closes: np.ndarray) -> None:
        """Mark at the closes (one per symbol, portfolio order)."""
        pf_mark(self.row, self.shares, self.avg, np.ascontiguousarray(closes, dtype=np.float64))

    @property
    def equity(self) -> float:
        """Equity at the last mark."""
        return float(self.row[PF_EQUITY])

    @property
    def drawdown(self) -> float:
        """Drawdown from the session's peak equity at the last mark (fraction)."""
        return float(self.row[PF_DRAWDOWN])

    def figures(self) -> dict[str, float]:
        """Equity, cash, P&L, fees and drawdowns for the journal."""
        r = self.row.tolist()  # Python floats, one conversion
        return {
            "equity": r[PF_EQUITY],
            "cash": r[PF_CASH],
            "pnl": r[PF_EQUITY] - self.capital,
            "realised": r[PF_REALISED],
            "unrealised": r[PF_UNREALISED],
            "fees": r[PF_FEES],
            "peak": r[PF_PEAK],
            "drawdown": r[PF_DRAWDOWN],
            "max_drawdown": r[PF_MAX_DRAWDOWN],
        }

    def positions(self) -> dict[str, float]:
        """Shares held per symbol."""
        return {s: float(self.shares[j]) for j, s in enumerate(self.symbols)}


class SessionObserver:
    """Features, normalisation and the env's observation layout for one session.

    :param symbols: tickers in the model's order
    :param normaliser: the run's feature normaliser
    :param market: the run's market config (notional, costs' impact sigma)
    :param env: the run's env config (observation extras)
    :param day: the session's date
    :param calendar: exchange calendar
    """

    def __init__(
        self,
        symbols: Sequence[str],
        normaliser: Normaliser,
        market: MarketConfig,
        env: EnvConfig,
        day: date,
        calendar: str = "XNYS",
    ) -> None:
        self.symbols = tuple(symbols)
        self.index = {s: j for j, s in enumerate(self.symbols)}
        normaliser.check_compatible(self.symbols, FEATURE_NAMES)
        self.normaliser = normaliser
        self.calendar = calendar
        self.day = day
        self.open, self.length = session_minutes(day, calendar)
        self.online = OnlineFeatureSet(self.symbols, calendar)
        t, f = len(self.symbols), len(FEATURE_NAMES)
        self.feats = np.zeros((1, self.length, t, f), dtype=np.float32)
        self.mkt = np.zeros((1, self.length, t, kn.M_WIDTH), dtype=np.float64)
        self.raw = np.zeros((self.length, t, f), dtype=np.float64)
        self.impact_sigma = market.costs.impact_sigma
        self.market = market  # the session's account (the stage's sizing applied)
        self.ep = np.zeros(kn.EP_WIDTH, dtype=np.float64)
        self.ep[kn.EP_CAPITAL] = market.starting_capital
        self.ep[kn.EP_MAX_NOTIONAL] = market.max_position_notional
        self.ep[kn.EP_LATENCY] = market.latency_bars
        self.ep[kn.EP_FLATTEN] = 1.0 if market.flatten_at_close else 0.0
        self.ep[kn.EP_DD_CAP] = env.drawdown_cap
        self.ep[kn.EP_ACTION_SET] = action_set_id(market.action_set)
        self.ep[kn.EP_OBS_CASH] = float(env.obs_cash_fraction)
        self.ep[kn.EP_OBS_UPNL] = float(env.obs_unrealised_pnl)
        self.ep[kn.EP_OBS_DD] = float(env.obs_drawdown)
        self.ep[kn.EP_OBS_TTC] = float(env.obs_time_to_close)
        self.ep[kn.EP_QTY_SCALE] = quantity_scale(market.quantity_decimals)
        self.obs_dim = (
            t * f
            + t
            + int(env.obs_cash_fraction)
            + int(env.obs_unrealised_pnl)
            + int(env.obs_drawdown)
            + int(env.obs_time_to_close)
        )
        self.obs = np.zeros(self.obs_dim, dtype=np.float32)
        self.seen = np.zeros(self.length, dtype=bool)
        self._open_dt: datetime = self.open.to_pydatetime()
        idx = [normaliser.symbols.index(s) for s in self.symbols]
        self._norm_mean = np.ascontiguousarray(normaliser.mean[idx], dtype=np.float64)
        self._norm_scale = np.ascontiguousarray(normaliser.scale[idx], dtype=np.float64)
        self._norm_clip = float(normaliser.clip)
        self._values = np.zeros((5, t), dtype=np.float64)  # high, low, close, volume, vwap
        self._sigma = np.zeros(t, dtype=np.float64)
        # Bar starts of the session, each made on its first request (a session has no clock
        # change: they happen at night, so wall-time arithmetic on the open is exact; pandas'
        # costs a hundred times more on every bar). Filled lazily, so a copy of a fresh
        # observer copies no datetimes.
        self._starts: list[datetime | None] = [None] * self.length
        # The session's calendar entry, looked up now rather than on the first bar.
        self._open_ns = time_ns(self._open_dt)
        self.online.enter_session(self._open_ns)

    def warm_up(self, history: pd.DataFrame) -> int:
        """Absorb the bars before the session (canonical bar frame); returns bars absorbed."""
        total = 0
        for s in self.symbols:
            group = history[history["symbol"] == s]
            if len(group):
                in_rth = cal.rth_mask(group["ts"], self.calendar)
                group = group[in_rth].reset_index(drop=True)
            self.online[s].warm_up(group)
            total += len(group)
        self.online.warm_up_kernel()
        # The decision's kernels (observation, action) load from numba's cache on their first
        # call in a process (10 to 15 ms each here, seconds when they must compile): done now,
        # before the session, so that the first decision's latency is the decision's own. They
        # write only scratch arrays and the observation buffer, reset after.
        flat = np.zeros(len(self.symbols), dtype=np.float64)
        kn.write_obs(
            self.obs, self.feats, self.mkt, 0, 0, self.length, flat, np.zeros(PF_WIDTH), self.ep
        )
        self.obs[:] = 0.0
        apply_action(int(self.ep[kn.EP_ACTION_SET]), 0, flat, flat.copy())
        return total

    def bar_index(self, start: datetime) -> int:
        """Index of the bar starting at ``start`` in the session (refuses one outside it)."""
        if isinstance(start, pd.Timestamp) or start.utcoffset() is None:
            offset = (pd.Timestamp(start).tz_convert(cal.EXCHANGE_TZ) - self.open).total_seconds()
        else:
            offset = (start - self._open_dt).total_seconds()
        k = int(offset // 60)
        if offset < 0 or offset % 60 or k >= self.length:
            raise DataValidationError(
                f"bar at {start} is not a minute of the {self.day} session "
                f"({self.open} + {self.length} minutes)"
            )
        return k

    def absorb(
        self, bars: Mapping[str, MinuteBar], vwaps: Mapping[str, float] | None = None
    ) -> int:
        """Advance the features by one minute (a bar of every symbol); returns the bar index.

        :param bars: one bar per symbol, all of the same minute
        :param vwaps: each bar's own volume-weighted price when the source has one (the
            stored bars do; the session VWAP feature uses it, else the typical price)
        """
        first = next(iter(bars.values()), None)
        start = None if first is None else first.start
        values = self._values
        sig = self._sigma
        ok = start is not None and len(bars) == len(self.symbols)
        if ok:
            for j, s in enumerate(self.symbols):
                b = bars.get(s)
                if b is None or b.start != start:
                    ok = False
                    break
                vwap = math.nan if vwaps is None else vwaps.get(s, math.nan)
                high, low = float(b.high), float(b.low)
                values[0, j] = high
                values[1, j] = low
                values[2, j] = float(b.close)
                values[3, j] = float(b.volume)
                values[4, j] = math.nan if vwap is None else float(vwap)
                # parkinson_sigma's ratio (its log below, numpy's, over every symbol at once);
                # a non-positive low is refused by the feature update
                lo = min(b.high, b.low)
                sig[j] = max(b.high, b.low) / lo if lo > 0.0 else 1.0
        if not ok:
            starts = {b.start for b in bars.values()}
            raise DataValidationError(
                f"a minute needs one bar of each of {list(self.symbols)} with one start time, "
                f"got {sorted(bars)} at {sorted(str(x) for x in starts)}"
            )
        assert start is not None
        k = self.bar_index(start)
        if self.seen[k]:
            raise DataValidationError(f"bar {k} of the {self.day} session arrived twice")
        # features of every symbol, standardised as the normaliser's transform_ticker does,
        # into the raw and the env's feature arrays (one kernel call; it refuses bad values)
        if type(start) is datetime:
            # bar_index found start == open + k minutes exactly (datetimes have no nanoseconds)
            ts_ns = self._open_ns + k * 60_000_000_000
        else:
            ts_ns = time_ns(start, self.symbols[0])
        self.online.advance(
            ts_ns,
            values,
            self._norm_mean,
            self._norm_scale,
            self._norm_clip,
            self.raw[k],
            self.feats[0, k],
        )
        mkt = self.mkt[0, k]
        if self.impact_sigma is None:
            # parkinson_sigma's arithmetic (the replay's value to the bit); the feature update
            # above already refused a non-positive high or low
            np.log(sig, out=sig)
        for j, s in enumerate(self.symbols):
            b = bars[s]
            row = mkt[j]
            row[kn.M_OPEN] = b.open
            row[kn.M_CLOSE] = b.close
            row[kn.M_SIGMA] = (
                sig[j] / _LN2_FACTOR if self.impact_sigma is None else self.impact_sigma
            )
            row[kn.M_VOLUME] = b.volume
        self.seen[k] = True
        return k

    def bar_start(self, k: int) -> datetime:
        """Start of bar ``k`` of the session (exchange time)."""
        if 0 <= k < self.length:
            start = self._starts[k]
            if start is None:
                start = self._starts[k] = self._open_dt + timedelta(minutes=k)
            return start
        return self._open_dt + timedelta(minutes=k)

    def closes(self, k: int) -> np.ndarray:
        """Closes of bar ``k`` per symbol."""
        return self.mkt[0, k, :, kn.M_CLOSE].copy()

    def observe(self, k: int, book: SessionBook) -> np.ndarray:
        """The raw (not VecNormalized) observation of bar ``k`` given the book: env layout."""
        kn.write_obs(
            self.obs, self.feats, self.mkt, 0, k, self.length, book.shares, book.row, self.ep
        )
        return self.obs
