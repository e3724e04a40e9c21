"""Causal per-ticker features: one numba kernel used offline (a whole history) and online (a bar).

The kernel advances a small explicit state (ring buffers of the last closes, returns and volumes,
the RSI averages, two EMAs and the session VWAP sums) over a chunk of bars. Offline, the chunk is
a ticker's whole history in one call; online, :class:`OnlineFeatures` calls it with one bar and
keeps the state, so both paths run the same code and give bit-identical values. A feature at bar
``t`` reads bars ``<= t`` only.

The twelve features, in order (``c`` close, ``t`` the bar, windows count bars of the history,
which is continuous across sessions except for VWAP and time of day):

==============  ======================================================  ======================
name            definition                                              before enough history
==============  ======================================================  ======================
ret_1           log(c_t / c_{t-1})                                      0
ret_5           log(c_t / c_{t-5})                                      0
ret_15          log(c_t / c_{t-15})                                     0
rvol_20         sqrt(mean of the last 20 squared 1-bar log returns)     0
rsi_14          Wilder RSI(14) on close changes, 0..100 (SMA seed)      50
ema12_gap       c_t / EMA12_t - 1 (EMA seeded with the first close)     defined from bar 0
ema26_gap       c_t / EMA26_t - 1                                       defined from bar 0
vwap_gap        c_t / session VWAP_t - 1                                defined from bar 0
vol_ratio       volume_t / mean volume of the last 20 bars (incl. t)    1
bb_pctb         Bollinger %B(20, 2): (c - (m - 2 sd)) / (4 sd)          0.5
mom_10          c_t / c_{t-10} - 1                                      0
tod             (minutes since the open + 1) / session minutes          defined from bar 0
==============  ======================================================  ======================

Session VWAP restarts at each session open and weights each bar's own ``vwap`` by its volume
when the bar has one, else the typical price (high + low + close) / 3; with no volume yet in the
session it equals the close. ``tod`` is the fraction of the session elapsed at the bar's close
(when the agent decides): the session length comes from the calendar, so on a half day the last
bar has 1.0 as on a full day. Standard deviations are population ones. A zero denominator gives
the feature's neutral value (vol_ratio 1, bb_pctb 0.5, RSI 100 when only gains).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from stairways.data import calendar as cal
from stairways.errors import DataValidationError

log = logging.getLogger(__name__)

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1",
    "ret_5",
    "ret_15",
    "rvol_20",
    "rsi_14",
    "ema12_gap",
    "ema26_gap",
    "vwap_gap",
    "vol_ratio",
    "bb_pctb",
    "mom_10",
    "tod",
)
N_FEATURES = len(FEATURE_NAMES)
# Bars of history after which every rolling window is full (21 closes for 20 returns).
WARM_BARS = 21

# State layout: scalars, then three ring buffers.
_N, _RSI_N, _RSI_G, _RSI_L, _EMA12, _EMA26, _VWAP_PV, _VWAP_V, _KEY = range(9)
_FLAT_SD = 1e-9  # relative std under which a Bollinger window counts as flat
_CRING = 21  # closes: c_{t-20} .. c_t
_RRING = 20  # 1-bar log returns
_VRING = 20  # volumes
_C0 = 9
_R0 = _C0 + _CRING
_V0 = _R0 + _RRING
STATE_SIZE = _V0 + _VRING
_ALPHA12 = 2.0 / 13.0
_ALPHA26 = 2.0 / 27.0


def new_state() -> np.ndarray:
    """A fresh feature state (no history seen)."""
    state = np.zeros(STATE_SIZE, dtype=np.float64)
    state[_KEY] = -1.0
    return state


@njit(cache=True)
def _advance(
    state: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    vwap: np.ndarray,
    session_key: np.ndarray,
    elapsed: np.ndarray,
    session_len: np.ndarray,
    out: np.ndarray,
) -> None:
    """Advance ``state`` over the given bars, writing one feature row per bar into ``out``."""
    for i in range(close.shape[0]):
        t = int(state[_N])
        c = close[i]
        v = volume[i]
        prev = state[_C0 + (t - 1) % _CRING] if t >= 1 else c
        state[_C0 + t % _CRING] = c
        state[_V0 + t % _VRING] = v
        r = 0.0
        if t >= 1:
            r = math.log(c / prev)
            state[_R0 + t % _RRING] = r
        out[i, 0] = r
        out[i, 1] = math.log(c / state[_C0 + (t - 5) % _CRING]) if t >= 5 else 0.0
        out[i, 2] = math.log(c / state[_C0 + (t - 15) % _CRING]) if t >= 15 else 0.0
        if t >= _RRING:
            acc = 0.0
            for j in range(_RRING):
                x = state[_R0 + j]
                acc += x * x
            out[i, 3] = math.sqrt(acc / _RRING)
        else:
            out[i, 3] = 0.0

        # RSI(14), Wilder: the first average is a simple mean of 14 changes, then smoothing.
        if t >= 1:
            change = c - prev
            gain = change if change > 0.0 else 0.0
            loss = -change if change < 0.0 else 0.0
            n_changes = state[_RSI_N]
            if n_changes < 14.0:
                state[_RSI_G] += gain
                state[_RSI_L] += loss
                state[_RSI_N] = n_changes + 1.0
                if n_changes + 1.0 == 14.0:
                    state[_RSI_G] /= 14.0
                    state[_RSI_L] /= 14.0
            else:
                state[_RSI_G] = (state[_RSI_G] * 13.0 + gain) / 14.0
                state[_RSI_L] = (state[_RSI_L] * 13.0 + loss) / 14.0
        if state[_RSI_N] >= 14.0:
            avg_g = state[_RSI_G]
            avg_l = state[_RSI_L]
            if avg_l > 0.0:
                out[i, 4] = 100.0 - 100.0 / (1.0 + avg_g / avg_l)
            else:
                out[i, 4] = 100.0 if avg_g > 0.0 else 50.0
        else:
            out[i, 4] = 50.0

        if t == 0:
            state[_EMA12] = c
            state[_EMA26] = c
        else:
            state[_EMA12] += _ALPHA12 * (c - state[_EMA12])
            state[_EMA26] += _ALPHA26 * (c - state[_EMA26])
        out[i, 5] = c / state[_EMA12] - 1.0
        out[i, 6] = c / state[_EMA26] - 1.0

        # Session VWAP restarts whenever the session changes (even if its first bar is missing).
        if session_key[i] != state[_KEY]:
            state[_KEY] = session_key[i]
            state[_VWAP_PV] = 0.0
            state[_VWAP_V] = 0.0
        price = vwap[i]
        if not (price > 0.0):  # NaN or missing: typical price
            price = (high[i] + low[i] + c) / 3.0
        state[_VWAP_PV] += price * v
        state[_VWAP_V] += v
        if state[_VWAP_V] > 0.0:
            out[i, 7] = c / (state[_VWAP_PV] / state[_VWAP_V]) - 1.0
        else:
            out[i, 7] = 0.0

        if t >= _VRING - 1:
            acc = 0.0
            for j in range(_VRING):
                acc += state[_V0 + j]
            mean_v = acc / _VRING
            out[i, 8] = v / mean_v if mean_v > 0.0 else 1.0
        else:
            out[i, 8] = 1.0

        if t >= 19:
            acc = 0.0
            for j in range(20):
                acc += state[_C0 + (t - j) % _CRING]
            mean_c = acc / 20.0
            acc = 0.0
            for j in range(20):
                d = state[_C0 + (t - j) % _CRING] - mean_c
                acc += d * d
            sd = math.sqrt(acc / 20.0)
            # A window flat to rounding error has no band: its %B would be float noise.
            flat = sd <= _FLAT_SD * abs(mean_c)
            out[i, 9] = 0.5 if flat else (c - (mean_c - 2.0 * sd)) / (4.0 * sd)
        else:
            out[i, 9] = 0.5

        out[i, 10] = c / state[_C0 + (t - 10) % _CRING] - 1.0 if t >= 10 else 0.0
        out[i, 11] = elapsed[i] / session_len[i]
        state[_N] = t + 1.0


@njit(cache=True, error_model="numpy")
def _advance_set(
    states: tuple[np.ndarray, ...],
    values: np.ndarray,
    session: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    clip: float,
    raw: np.ndarray,
    z: np.ndarray,
) -> int:
    """One bar of every ticker: the value checks and :func:`_advance` of
    :meth:`OnlineFeatures.advance`, then the normaliser's standardising and clipping.

    ``values`` holds high, low, close, volume and vwap (rows) per ticker (columns); ``session``
    the bar's session key, minutes elapsed at its close and session length. Ticker ``j``'s
    features go to ``raw[j]`` (float64) and, standardised as ``Normaliser.transform_ticker``
    does (``(raw - mean) / scale`` clipped to ``[-clip, clip]``, float64, then float32), to
    ``z[j]``. Tickers are done in order; the first with a refused value is left untouched and
    its index returned (the tickers before it are advanced), -1 when every ticker was advanced.
    """
    for j in range(len(states)):
        high = values[0, j]
        low = values[1, j]
        close = values[2, j]
        volume = values[3, j]
        if not (close > 0.0 and math.isfinite(close)):
            return j
        if not (high > 0.0 and math.isfinite(high)):
            return j
        if not (low > 0.0 and math.isfinite(low)):
            return j
        if not (volume >= 0.0 and math.isfinite(volume)):
            return j
        _advance(
            states[j],
            values[0, j : j + 1],
            values[1, j : j + 1],
            values[2, j : j + 1],
            values[3, j : j + 1],
            values[4, j : j + 1],
            session[0:1],
            session[1:2],
            session[2:3],
            raw[j : j + 1],
        )
        for f in range(raw.shape[1]):
            x = (raw[j, f] - mean[j, f]) / scale[j, f]
            # np.clip's order: the lower bound first, NaN stays NaN
            if x < -clip:
                x = -clip
            if x > clip:
                x = clip
            z[j, f] = x
    return -1


def _session_fields(
    ts_ns: np.ndarray, symbol: str, calendar: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Session key (days since epoch), minutes elapsed at the bar's close, and session length."""
    if ts_ns.size == 0:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty, empty
    if np.any(np.diff(ts_ns) <= 0):
        row = int(np.argmax(np.diff(ts_ns) <= 0)) + 1
        raise DataValidationError(
            f"{symbol}: bars must be strictly increasing in time; row {row} at "
            f"{pd.Timestamp(int(ts_ns[row]), tz='UTC')} is not after the previous bar"
        )
    first = pd.Timestamp(int(ts_ns[0]), tz="UTC").tz_convert(cal.EXCHANGE_TZ).date()
    last = pd.Timestamp(int(ts_ns[-1]), tz="UTC").tz_convert(cal.EXCHANGE_TZ).date()
    sess = cal.sessions(first, last, calendar)
    opens = sess.opens.as_unit("ns").asi8
    closes = sess.closes.as_unit("ns").asi8
    pos = np.searchsorted(opens, ts_ns, side="right") - 1
    inside = pos >= 0
    inside[inside] = ts_ns[inside] < closes[pos[inside]]
    offset = ts_ns - opens[np.maximum(pos, 0)]
    aligned = offset % 60_000_000_000 == 0
    bad = ~(inside & aligned)
    if bad.any():
        row = int(np.argmax(bad))
        what = "outside regular trading hours" if not inside[row] else "not on a minute boundary"
        raise DataValidationError(
            f"{symbol}: row {row} at {pd.Timestamp(int(ts_ns[row]), tz='UTC')} is {what} of "
            f"the {calendar} calendar; features need regular-hours 1-minute bars"
        )
    keys = (sess.dates.as_unit("ns").asi8 // 86_400_000_000_000).astype(np.float64)[pos]
    elapsed = (offset // 60_000_000_000 + 1).astype(np.float64)
    length = sess.minutes.astype(np.float64)[pos]
    return keys, elapsed, length


def _check_values(
    symbol: str,
    ts_ns: np.ndarray,
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    volume: np.ndarray,
) -> None:
    """Prices must be finite and positive and volume finite and non-negative."""
    for name, arr, ok in (
        ("close", close, np.isfinite(close) & (close > 0)),
        ("high", high, np.isfinite(high) & (high > 0)),
        ("low", low, np.isfinite(low) & (low > 0)),
        ("volume", volume, np.isfinite(volume) & (volume >= 0)),
    ):
        if not ok.all():
            row = int(np.argmin(ok))
            raise DataValidationError(
                f"{symbol}: row {row} at {pd.Timestamp(int(ts_ns[row]), tz='UTC')} has "
                f"{name} {float(arr[row])}; prices must be positive and volume non-negative"
            )


def compute_features(
    bars: pd.DataFrame, calendar: str = "XNYS", state: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Features of one ticker's bars, aligned row by row: ``(array (n, 12) float64, names)``.

    :param bars: canonical bar frame of a single symbol, regular-hours bars, sorted by time
    :param calendar: exchange calendar giving the sessions (VWAP restart, time of day)
    :param state: state to continue from (advanced in place); a fresh history when None
    """
    symbols = pd.unique(bars["symbol"]) if len(bars) else np.array([], dtype=object)
    if len(symbols) > 1:
        raise DataValidationError(
            f"compute_features takes one symbol at a time, got {sorted(map(str, symbols))}"
        )
    symbol = str(symbols[0]) if len(symbols) else "?"
    ts_ns = pd.DatetimeIndex(bars["ts"]).as_unit("ns").asi8
    high = bars["high"].to_numpy(dtype=np.float64)
    low = bars["low"].to_numpy(dtype=np.float64)
    close = bars["close"].to_numpy(dtype=np.float64)
    volume = bars["volume"].to_numpy(dtype=np.float64)
    vwap = bars["vwap"].to_numpy(dtype=np.float64, na_value=np.nan)
    _check_values(symbol, ts_ns, close, high, low, volume)
    keys, elapsed, length = _session_fields(ts_ns, symbol, calendar)
    out = np.empty((len(close), N_FEATURES), dtype=np.float64)
    st = new_state() if state is None else state
    _advance(st, high, low, close, volume, vwap, keys, elapsed, length, out)
    return out, FEATURE_NAMES


def feature_frame(bars: pd.DataFrame, calendar: str = "XNYS") -> pd.DataFrame:
    """Features of every symbol in ``bars`` as a frame: symbol, ts and one column per feature."""
    parts = []
    for symbol, group in bars.groupby("symbol", sort=True):
        values, names = compute_features(group, calendar)
        frame = pd.DataFrame(values, columns=list(names), index=group.index)
        frame.insert(0, "ts", group["ts"])
        frame.insert(0, "symbol", symbol)
        parts.append(frame)
    if not parts:
        return pd.DataFrame(columns=["symbol", "ts", *FEATURE_NAMES])
    return pd.concat(parts).sort_index()


@functools.lru_cache(maxsize=64)
def _session_bounds(day: date, calendar: str) -> tuple[int, int, float, float] | None:
    """Open and close (UTC ns), key (days since epoch) and minutes of the session on ``day``
    (None when ``day`` is not a session); the calendar's answer, looked up once per day."""
    sess = cal.sessions(day, day, calendar)
    if len(sess) == 0:
        return None
    return (
        int(sess.opens.as_unit("ns").asi8[0]),
        int(sess.closes.as_unit("ns").asi8[0]),
        float(sess.dates.as_unit("ns").asi8[0] // 86_400_000_000_000),
        float(sess.minutes[0]),
    )


class OnlineFeatures:
    """Bar-by-bar features of one ticker, running the same kernel as :func:`compute_features`.

    :param symbol: ticker the bars belong to (used in error messages)
    :param calendar: exchange calendar giving the sessions
    """

    def __init__(self, symbol: str = "?", calendar: str = "XNYS") -> None:
        self.symbol = symbol
        self.calendar = calendar
        self.state = new_state()
        self._last_ts: int | None = None
        self._session: tuple[int, int, float, float] | None = None  # open, close, key, minutes
        self._out = np.empty((1, N_FEATURES), dtype=np.float64)
        # one bar's kernel inputs: high, low, close, volume, vwap, session key, elapsed, length
        self._bar = tuple(np.empty(1, dtype=np.float64) for _ in range(8))

    @property
    def bars_seen(self) -> int:
        """Number of bars the state has absorbed."""
        return int(self.state[_N])

    def warm_up(self, bars: pd.DataFrame) -> np.ndarray:
        """Absorb a history of bars in one kernel call; returns their features (n, 12)."""
        if len(bars) and self._last_ts is not None:
            first = int(pd.DatetimeIndex(bars["ts"][:1]).as_unit("ns").asi8[0])
            if first <= self._last_ts:
                raise DataValidationError(
                    f"{self.symbol}: warm-up bars start at {pd.Timestamp(first, tz='UTC')}, "
                    "not after the last bar already seen"
                )
        values, _ = compute_features(bars, self.calendar, state=self.state)
        if len(bars):
            self._last_ts = int(pd.DatetimeIndex(bars["ts"][-1:]).as_unit("ns").asi8[0])
        return values

    def _locate(self, ts_ns: int) -> tuple[int, int, float, float]:
        cur = self._session
        if cur is not None and cur[0] <= ts_ns < cur[1]:
            return cur
        day = pd.Timestamp(ts_ns, tz="UTC").tz_convert(cal.EXCHANGE_TZ).date()
        found = _session_bounds(day, self.calendar)
        if found is None:
            raise DataValidationError(
                f"{self.symbol}: bar at {pd.Timestamp(ts_ns, tz='UTC')} falls on {day}, which "
                f"is not a {self.calendar} session"
            )
        self._session = found
        return found

    def enter_session(self, ts_ns: int) -> None:
        """Look up now the session holding ``ts_ns`` (its first bar then finds it known)."""
        self._locate(ts_ns)

    def update(self, bar: Mapping[str, Any]) -> np.ndarray:
        """Absorb one bar (keys ts, high, low, close, volume, optional vwap); returns 12 values."""
        ts = bar["ts"]
        raw_vwap = bar.get("vwap", np.nan)
        vwap = np.nan if raw_vwap is None or pd.isna(raw_vwap) else float(raw_vwap)
        out = self.advance(
            time_ns(ts, self.symbol),
            float(bar["high"]),
            float(bar["low"]),
            float(bar["close"]),
            float(bar["volume"]),
            vwap,
        )
        return out.copy()

    def advance(
        self, ts_ns: int, high: float, low: float, close: float, volume: float, vwap: float
    ) -> np.ndarray:
        """:meth:`update` for the live loop's hot path: the bar's start in UTC nanoseconds and
        its values as floats (``vwap`` NaN when the bar has none). Returns the 12 values in a
        buffer that the next call overwrites; the checks and the arithmetic are update's."""
        if self._last_ts is not None and ts_ns <= self._last_ts:
            raise DataValidationError(
                f"{self.symbol}: bar at {pd.Timestamp(ts_ns, tz='UTC')} is not after the "
                f"previous bar {pd.Timestamp(self._last_ts, tz='UTC')}"
            )
        open_ns, close_ns, key, minutes = self._locate(ts_ns)
        offset = ts_ns - open_ns
        if not (0 <= offset < close_ns - open_ns) or offset % 60_000_000_000:
            raise DataValidationError(
                f"{self.symbol}: bar at {pd.Timestamp(ts_ns, tz='UTC')} is outside regular "
                "trading hours or not on a minute"
            )
        for name, value, ok in (
            ("close", close, close > 0.0),
            ("high", high, high > 0.0),
            ("low", low, low > 0.0),
            ("volume", volume, volume >= 0.0),
        ):
            if not (ok and math.isfinite(value)):
                raise DataValidationError(
                    f"{self.symbol}: row 0 at {pd.Timestamp(ts_ns, tz='UTC')} has "
                    f"{name} {value}; prices must be positive and volume non-negative"
                )
        h, lo, c, v, w, k, e, n = self._bar
        h[0], lo[0], c[0], v[0], w[0] = high, low, close, volume, vwap
        k[0], e[0], n[0] = key, float(offset // 60_000_000_000 + 1), minutes
        _advance(self.state, h, lo, c, v, w, k, e, n, self._out)
        self._last_ts = ts_ns
        return self._out[0]


class OnlineFeatureSet:
    """:class:`OnlineFeatures` of several tickers advanced together, one bar of each per call,
    with the features standardised by the run's normaliser in the same kernel call.

    The values are, to the bit, those of each ticker's :meth:`OnlineFeatures.advance` followed
    by ``Normaliser.transform_ticker``'s arithmetic; so are the refusals and their messages
    (a bar outside a known session, out of order or off the minute goes through each ticker's
    own :meth:`~OnlineFeatures.advance`, which looks the session up or says what is wrong).

    :param symbols: tickers in the order of the value arrays
    :param calendar: exchange calendar giving the sessions
    """

    def __init__(self, symbols: Sequence[str], calendar: str = "XNYS") -> None:
        self.symbols = tuple(symbols)
        self.calendar = calendar
        self.tickers = tuple(OnlineFeatures(s, calendar) for s in self.symbols)
        # the same array objects as the tickers' states (a deep copy keeps them shared)
        self._states = tuple(f.state for f in self.tickers)
        self._values = np.zeros((5, len(self.symbols)), dtype=np.float64)
        self._session = np.zeros(3, dtype=np.float64)

    def __getitem__(self, symbol: str) -> OnlineFeatures:
        return self.tickers[self.symbols.index(symbol)]

    def enter_session(self, ts_ns: int) -> None:
        """Look up now the session holding ``ts_ns`` for every ticker (see
        :meth:`OnlineFeatures.enter_session`)."""
        for f in self.tickers:
            f.enter_session(ts_ns)

    def warm_up_kernel(self) -> None:
        """Load the kernel (numba's cache, or a compile) on a scratch copy of the state."""
        scratch = tuple(new_state() for _ in self.symbols)
        t = len(self.symbols)
        values = np.ones((5, t), dtype=np.float64)
        raw = np.zeros((t, N_FEATURES), dtype=np.float64)
        z = np.zeros((t, N_FEATURES), dtype=np.float32)
        session = np.array([0.0, 1.0, 390.0])
        _advance_set(scratch, values, session, raw, np.ones_like(raw), 1.0, raw.copy(), z)

    def advance(
        self,
        ts_ns: int,
        values: np.ndarray,
        mean: np.ndarray,
        scale: np.ndarray,
        clip: float,
        raw: np.ndarray,
        z: np.ndarray,
    ) -> None:
        """Absorb one bar of every ticker starting at ``ts_ns`` (UTC nanoseconds).

        :param values: (5, tickers) float64: high, low, close, volume, vwap (NaN for none)
        :param mean: (tickers, features) float64, the normaliser's means
        :param scale: (tickers, features) float64, the normaliser's scales
        :param clip: the normaliser's clip
        :param raw: (tickers, features) float64, receives the features
        :param z: (tickers, features) float32, receives the standardised features
        """
        known = None
        for f in self.tickers:
            cur = f._session
            last = f._last_ts
            if (
                cur is None
                or not (cur[0] <= ts_ns < cur[1])
                or (last is not None and ts_ns <= last)
            ):
                known = None
                break
            known = cur  # sessions do not overlap: every ticker's is this one
        offset = 0 if known is None else ts_ns - known[0]
        if known is None or offset % 60_000_000_000:
            self._advance_each(ts_ns, values, mean, scale, clip, raw, z)
            return
        session = self._session
        session[0] = known[2]
        session[1] = float(offset // 60_000_000_000 + 1)
        session[2] = known[3]
        bad = _advance_set(self._states, values, session, mean, scale, clip, raw, z)
        done = len(self.tickers) if bad < 0 else bad
        for f in self.tickers[:done]:
            f._last_ts = ts_ns
        if bad >= 0:
            h, lo, c, v, w = (float(x) for x in values[:, bad])
            self.tickers[bad].advance(ts_ns, h, lo, c, v, w)  # raises, naming the value
            raise RuntimeError(
                f"{self.symbols[bad]}: the feature kernel refused bar values "
                f"{[h, lo, c, v, w]} that OnlineFeatures.advance accepts"
            )

    def _advance_each(
        self,
        ts_ns: int,
        values: np.ndarray,
        mean: np.ndarray,
        scale: np.ndarray,
        clip: float,
        raw: np.ndarray,
        z: np.ndarray,
    ) -> None:
        """Ticker by ticker through :meth:`OnlineFeatures.advance` (session look-up, refusals)."""
        buf = np.empty(raw.shape[1], dtype=np.float64)
        for j, f in enumerate(self.tickers):
            h, lo, c, v, w = (float(x) for x in values[:, j])
            out = f.advance(ts_ns, h, lo, c, v, w)
            raw[j] = out
            np.subtract(out, mean[j], out=buf)
            np.divide(buf, scale[j], out=buf)
            np.clip(buf, -clip, clip, out=buf)
            z[j] = buf


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def time_ns(ts: Any, symbol: str = "?") -> int:
    """A bar time (aware datetime, pandas Timestamp, or ISO text) in UTC nanoseconds."""
    if isinstance(ts, pd.Timestamp) or not isinstance(ts, datetime):
        stamp = pd.Timestamp(ts)
        if stamp.tzinfo is None:
            raise DataValidationError(f"{symbol}: bar time {stamp} has no time zone")
        return int(stamp.tz_convert("UTC").as_unit("ns").value)
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise DataValidationError(f"{symbol}: bar time {pd.Timestamp(ts)} has no time zone")
    return ((ts - _EPOCH) // _US) * 1000


def benchmark_features(bars: pd.DataFrame, calendar: str = "XNYS") -> float:
    """Featurise every symbol of ``bars`` offline and return the throughput in bars per second.

    The kernel is compiled (or loaded from numba's cache) on a few bars first, so the figure is
    the steady-state speed, not the compile time.
    """
    if bars.empty:
        raise DataValidationError("benchmark_features needs at least one bar")
    first = bars[bars["symbol"] == bars["symbol"].iloc[0]].head(30)
    compute_features(first, calendar)
    started = time.perf_counter()
    total = 0
    for _, group in bars.groupby("symbol", sort=True):
        values, _ = compute_features(group, calendar)
        total += len(values)
    elapsed = time.perf_counter() - started
    rate = total / elapsed if elapsed > 0 else float("inf")
    log.info("featurised %d bars in %.3f s (%.0f bars/s)", total, elapsed, rate)
    return rate
