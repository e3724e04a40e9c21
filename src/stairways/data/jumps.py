"""The per-bar jump check: isolated bad prints (spikes) and sudden level jumps inside a session.

A vendor's bad print (a close of 8,606 between two closes of 860) passes every per-row rule: the
bar is internally consistent. Only its neighbours show it is wrong. Each bar is judged against
the previous good close of the same symbol and session (the first bar of a session, which has
none, against the next bar: overnight gaps are real and are never judged). Its limit, as an
absolute log return, is::

    limit = min(max_log_return, max(scale_multiple x scale, min_log_return))

with ``scale`` a robust scale of 1-minute returns around the bar: 1.4826 times the centred
rolling median of absolute close-to-close log returns within sessions (``scale_window_bars``;
with fewer than ``scale_min_bars`` returns in the window only ``max_log_return`` applies). The
median is barely moved by a few spikes, so a bad print cannot hide itself by inflating the scale.

Two rules (see :class:`~stairways.data.settings.JumpCheckConfig` for the defaults):

- ``price_spike``: the bar's close lies beyond the limit from the previous good close and the
  price comes back (the next close is within the limit again), or its open, high or low lies
  beyond ``max_log_return`` from it (the close-to-close scale says nothing about the spread
  within a bar, so wicks are held to the absolute cap only). A session's first bar is judged
  the same way against the next close, when the next bar agrees with the bar after it. A spike
  never becomes the reference, so the bar after it is judged against the last good close.
- ``price_jump``: the close moves beyond the limit and stays there (or the session ends). The
  new level becomes the reference, so one jump is one finding, not a cascade.

Strict imports refuse bars that break either rule (naming file, line and rule); repair imports
drop them and list them in the report; ``stairways data quality`` lists them for stored bars.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from stairways.data import calendar as cal
from stairways.data.settings import JumpCheckConfig

log = logging.getLogger(__name__)

PRICE_SPIKE = "price_spike"
PRICE_JUMP = "price_jump"

JUMP_RULES: dict[str, str] = {
    PRICE_SPIKE: (
        "no price of a bar lies beyond the jump limit from the previous good close when the "
        "next close comes back (an isolated bad print)"
    ),
    PRICE_JUMP: "no close moves beyond the jump limit from the previous good close in one bar",
}

MAD_TO_SIGMA = 1.4826
"""Scale factor from a median absolute deviation to a normal standard deviation."""

JUMP_COLUMNS: tuple[str, ...] = (
    "position",
    "symbol",
    "ts",
    "rule",
    "field",
    "price",
    "reference",
    "log_move",
    "limit",
    "scale",
)
_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")
_OK, _SPIKE, _JUMP = 0, 1, 2
_NS_PER_DAY = 86_400_000_000_000


def empty_jumps() -> pd.DataFrame:
    """A jump table without rows (columns :data:`JUMP_COLUMNS`)."""
    return pd.DataFrame(
        {
            "position": pd.Series([], dtype="int64"),
            "symbol": pd.Series([], dtype=object),
            "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
            "rule": pd.Series([], dtype=object),
            "field": pd.Series([], dtype=object),
            "price": pd.Series([], dtype="float64"),
            "reference": pd.Series([], dtype="float64"),
            "log_move": pd.Series([], dtype="float64"),
            "limit": pd.Series([], dtype="float64"),
            "scale": pd.Series([], dtype="float64"),
        }
    )


@njit(cache=True)
def _wick(lo: float, lh: float, ll: float, ref: float) -> tuple[float, int]:
    """Largest absolute log distance of a bar's open, high or low from ``ref``, and which."""
    best = abs(lo - ref)
    field = 0
    if abs(lh - ref) > best:
        best = abs(lh - ref)
        field = 1
    if abs(ll - ref) > best:
        best = abs(ll - ref)
        field = 2
    return best, field


@njit(cache=True)
def _classify(
    start: np.ndarray,
    lo: np.ndarray,
    lh: np.ndarray,
    ll: np.ndarray,
    lc: np.ndarray,
    limit: np.ndarray,
    cap: float,
    flag: np.ndarray,
    field: np.ndarray,
    reference: np.ndarray,
) -> None:
    """Mark spikes and jumps in log prices sorted by symbol and time (see the module doc).

    ``start[i]`` is True where a new (symbol, session) segment begins. Closes are held to
    ``limit[i]``; an open, high or low, whose spread the close-to-close scale does not measure,
    only to ``cap``. Writes ``flag`` (0 good, 1 spike, 2 jump), the offending ``field`` (0 open
    .. 3 close) and the log ``reference`` the bar was judged against.
    """
    n = lc.shape[0]
    ref = math.nan
    for i in range(n):
        if start[i]:
            ref = math.nan
        lim = limit[i]
        has_next = i + 1 < n and not start[i + 1]
        if math.isnan(ref):
            # No previous good close in this session: judge the bar by the next one, which must
            # itself agree with the bar after it (else the next bar is the odd one out).
            if has_next:
                nxt = lc[i + 1]
                wick, wfld = _wick(lo[i], lh[i], ll[i], nxt)
                close_off = abs(lc[i] - nxt) > lim
                if close_off or wick > cap:
                    settled = True
                    if i + 2 < n and not start[i + 2]:
                        settled = abs(lc[i + 2] - nxt) <= limit[i + 1]
                    if settled:
                        flag[i] = _SPIKE
                        field[i] = 3 if close_off else wfld
                        reference[i] = nxt
                        continue
            ref = lc[i]
            continue
        if abs(lc[i] - ref) > lim:
            back = has_next and abs(lc[i + 1] - ref) <= lim
            flag[i] = _SPIKE if back else _JUMP
            field[i] = 3
            reference[i] = ref
            if not back:
                ref = lc[i]
            continue
        wick, wfld = _wick(lo[i], lh[i], ll[i], ref)
        if wick > cap:
            # The close is fine but the open, high or low went far away within the bar.
            flag[i] = _SPIKE
            field[i] = wfld
            reference[i] = ref
        else:
            ref = lc[i]


def robust_scale(
    log_close: np.ndarray, segment_start: np.ndarray, window: int, min_bars: int
) -> np.ndarray:
    """1.4826 x the centred rolling median absolute 1-minute log return (NaN where too few).

    Returns across a segment start (the overnight gap, or another symbol) are left out.
    """
    r = np.abs(np.diff(log_close, prepend=np.nan))
    r[segment_start] = np.nan
    med = pd.Series(r).rolling(window, center=True, min_periods=min_bars).median()
    return MAD_TO_SIGMA * med.to_numpy(dtype=np.float64)


def jump_limits(scale: np.ndarray, cfg: JumpCheckConfig) -> np.ndarray:
    """Per-bar limits in absolute log return: the absolute cap where the scale is unknown."""
    relative = np.clip(cfg.scale_multiple * scale, cfg.min_log_return, cfg.max_log_return)
    return np.where(np.isnan(scale), cfg.max_log_return, relative)


def find_price_jumps(
    bars: pd.DataFrame, cfg: JumpCheckConfig | None = None, calendar: str = "XNYS"
) -> pd.DataFrame:
    """Bars that break the jump rules, one row each (columns :data:`JUMP_COLUMNS`).

    :param bars: frame with ``symbol``, ``ts`` (UTC) and positive finite ``open, high, low,
        close``; any row order and index (``position`` in the result is the 0-based row
        position in ``bars``)
    :param cfg: limits (the defaults when None); a disabled check finds nothing
    :param calendar: exchange calendar whose local date separates sessions
    """
    cfg = cfg or JumpCheckConfig()
    if not cfg.enabled or len(bars) < 2:
        return empty_jumps()
    ts = pd.DatetimeIndex(bars["ts"]).tz_convert(cal.EXCHANGE_TZ)
    local_day = ts.tz_localize(None).as_unit("ns").asi8 // _NS_PER_DAY
    symbols = bars["symbol"].to_numpy()
    sym_codes, sym_names = pd.factorize(symbols, sort=True)
    order = np.lexsort((ts.asi8, sym_codes))
    codes = sym_codes[order]
    days = local_day[order]
    start = np.ones(len(order), dtype=np.bool_)
    start[1:] = (codes[1:] != codes[:-1]) | (days[1:] != days[:-1])
    logs = {f: np.log(bars[f].to_numpy(dtype=np.float64)[order]) for f in _FIELDS}
    scale = np.full(len(order), np.nan)
    for code in range(len(sym_names)):
        rows = np.flatnonzero(codes == code)
        if len(rows):
            scale[rows] = robust_scale(
                logs["close"][rows], start[rows], cfg.scale_window_bars, cfg.scale_min_bars
            )
    limit = jump_limits(scale, cfg)
    flag = np.zeros(len(order), dtype=np.int8)
    field = np.zeros(len(order), dtype=np.int8)
    reference = np.full(len(order), np.nan)
    _classify(
        start,
        logs["open"],
        logs["high"],
        logs["low"],
        logs["close"],
        limit,
        cfg.max_log_return,
        flag,
        field,
        reference,
    )
    hit = np.flatnonzero(flag != _OK)
    if len(hit) == 0:
        return empty_jumps()
    positions = order[hit]
    fields = [_FIELDS[int(k)] for k in field[hit]]
    price_logs = np.array([logs[f][i] for f, i in zip(fields, hit, strict=True)])
    out = pd.DataFrame(
        {
            "position": positions.astype(np.int64),
            "symbol": symbols[positions],
            "ts": pd.DatetimeIndex(bars["ts"]).tz_convert("UTC")[positions],
            "rule": np.where(flag[hit] == _SPIKE, PRICE_SPIKE, PRICE_JUMP),
            "field": fields,
            "price": np.exp(price_logs),
            "reference": np.exp(reference[hit]),
            "log_move": price_logs - reference[hit],
            "limit": limit[hit],
            "scale": scale[hit],
        }
    )
    log.debug("jump check: %d of %d bars flagged", len(out), len(bars))
    return out.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)


def describe_jump(finding: Mapping[str, Any]) -> str:
    """A finding (one row of :func:`find_price_jumps` as a mapping) in words."""
    price = float(finding["price"])
    reference = float(finding["reference"])
    scale = float(finding["scale"])
    basis = "the absolute cap" if math.isnan(scale) else f"robust scale {scale:.5f}"
    head = (
        f"{finding['field']} {price:g} is {price / reference:.4g}x the reference close "
        f"{reference:g} (log move {float(finding['log_move']):+.3f}, limit "
        f"{float(finding['limit']):.3f} from {basis})"
    )
    if finding["rule"] == PRICE_SPIKE:
        return head + "; the price comes back, so this bar is an isolated print"
    return head + "; the price stays at the new level"
