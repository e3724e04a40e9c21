"""Build :class:`~stairways.data.panel.SessionPanel` objects from the bar store (or a bar frame).

For a split, the builder reads the split's bars plus ``FeatureConfig.warmup_sessions`` earlier
sessions, computes the causal features over that continuous history (one call per ticker), keeps
the split's sessions that are complete for every ticker versus the calendar and have at least
``FeatureConfig.warmup_bars`` bars of earlier history, normalises and clips the features with a
normaliser fitted on the normalisation split only, and aligns everything into the panel arrays
(padded to 390 minutes with the last real value).

Sessions left out are counted, logged (a warning for incomplete ones, naming the first dates) and
listed in ``SessionPanel.excluded_sessions``: nothing is forward-filled. Incomplete sessions
still feed the rolling windows of the sessions after them, through the bars they do have.

Panels built from the store with a given normaliser are kept in a small in-process cache
(:func:`build_panel`), keyed on a digest of the stored bars they read
(:meth:`~stairways.data.store.BarStore.content_digest`: every value of the symbols over the
split and its warm-up, and their provenance), the data config (store path aside), the split and
the normaliser. Any change to one of these is a different key, so a stale panel cannot be
returned; a hit returns copies of the arrays, so a caller that changes them cannot change the
cache. A second evaluation in one process (checkpoint after checkpoint, seed after seed) then
skips the read and the features: a year's panel costs the digest (a scan of the range in the
store, about 15 ms) instead of about a second. Nothing is cached on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from stairways.data import calendar as cal
from stairways.data.features import FEATURE_NAMES, compute_features
from stairways.data.normalise import Normaliser
from stairways.data.panel import SessionPanel
from stairways.data.settings import DataConfig, DateRange
from stairways.data.splits import check_training_range, resolve_split
from stairways.data.store import BarStore
from stairways.errors import ConfigError, MissingResourceError

log = logging.getLogger(__name__)

PADDED_LENGTH = cal.FULL_SESSION_MINUTES
_MINUTE_NS = 60_000_000_000
_PRICE_FIELDS = ("open", "high", "low", "close", "volume")
_CREATE_HINT = "create them with `stairways data synth` or `stairways data import ...`"
# Panels kept by build_panel (least recently used first out); a year of two tickers is ~30 MB.
PANEL_CACHE_SIZE = 4
_PANEL_CACHE: OrderedDict[str, SessionPanel] = OrderedDict()
_PANEL_CACHE_LOCK = threading.Lock()
_PANEL_ARRAYS = ("dates", "lengths", "ts", *_PRICE_FIELDS, "features")


@dataclass(frozen=True)
class _RawPanel:
    """Aligned bars and raw (not normalised) features of the kept sessions of a split."""

    dates: np.ndarray
    lengths: np.ndarray
    ts: np.ndarray
    prices: dict[str, np.ndarray]
    features: np.ndarray
    excluded: tuple[tuple[str, str], ...]

    def real_mask(self) -> np.ndarray:
        """(S, L) True on real minutes, False on padding."""
        return np.arange(self.ts.shape[1])[None, :] < self.lengths[:, None]


def warmup_start(cfg: DataConfig, rng: DateRange) -> pd.Timestamp:
    """The first date to read so that ``warmup_sessions`` sessions precede the range."""
    need = cfg.features.warmup_sessions
    lo = max(pd.Timestamp(rng.start) - timedelta(days=7 * need + 14), pd.Timestamp("2000-01-03"))
    hi = pd.Timestamp(rng.start) - timedelta(days=1)
    if hi < lo:
        return pd.Timestamp(rng.start)
    before = cal.sessions(lo, hi, cfg.calendar).dates
    if len(before) == 0:
        return pd.Timestamp(rng.start)
    return pd.Timestamp(before[max(0, len(before) - need)])


def read_split_bars(cfg: DataConfig, split: str, store: BarStore) -> pd.DataFrame:
    """The split's bars for ``cfg.symbols`` plus the warm-up sessions before it."""
    rng = resolve_split(cfg, split)
    return store.read_bars(list(cfg.symbols), warmup_start(cfg, rng).date(), rng.end)


def _raw_panel(
    bars: pd.DataFrame, cfg: DataConfig, split: str, rng: DateRange, where: str
) -> _RawPanel:
    """Features over each ticker's history, then the complete and warmed-up split sessions."""
    sess = cal.sessions(rng.start, rng.end, cfg.calendar)
    if len(sess) == 0:
        raise ConfigError(
            f"split {split!r} ({rng.start}..{rng.end}) contains no {cfg.calendar} sessions"
        )
    n_s = len(sess)
    opens = sess.opens.as_unit("ns").asi8
    closes = sess.closes.as_unit("ns").asi8
    minutes = sess.minutes.astype(np.int64)
    complete = np.ones(n_s, dtype=bool)
    warm = np.ones(n_s, dtype=bool)
    short: dict[int, list[str]] = {}
    per_symbol: list[tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]] = []
    for symbol in cfg.symbols:
        group = bars[bars["symbol"] == symbol]
        if len(group):
            in_rth = cal.rth_mask(group["ts"], cfg.calendar)
            if not in_rth.all():
                log.info(
                    "%s: ignoring %d bars outside regular trading hours",
                    symbol,
                    int((~in_rth).sum()),
                )
                group = group[in_rth]
        ts_ns = pd.DatetimeIndex(group["ts"]).as_unit("ns").asi8
        pos = np.searchsorted(opens, ts_ns, side="right") - 1
        in_split = (pos >= 0) & (ts_ns < closes[np.maximum(pos, 0)])
        if not in_split.any():
            raise MissingResourceError(
                f"no {symbol} bars for split {split!r} ({rng.start}..{rng.end}) in {where}; "
                f"{_CREATE_HINT}"
            )
        values, _ = compute_features(group.reset_index(drop=True), cfg.calendar)
        counts = np.bincount(pos[in_split], minlength=n_s)
        before = np.searchsorted(ts_ns, opens, side="left")
        complete &= counts == minutes
        warm &= before >= cfg.features.warmup_bars
        for bad in np.nonzero(counts != minutes)[0].tolist():
            short.setdefault(bad, []).append(f"{symbol} {counts[bad]}/{minutes[bad]}")
        per_symbol.append((ts_ns, pos, in_split, group, values))

    keep = complete & warm
    dates = sess.dates.to_numpy().astype("datetime64[D]")
    excluded: list[tuple[str, str]] = []
    for s in range(n_s):
        if not complete[s]:
            excluded.append((str(dates[s]), "incomplete bars: " + ", ".join(short[s])))
        elif not warm[s]:
            excluded.append(
                (str(dates[s]), f"fewer than {cfg.features.warmup_bars} bars of earlier history")
            )
    _log_exclusions(split, excluded, n_s, cfg)
    if not keep.any():
        raise MissingResourceError(
            f"split {split!r} ({rng.start}..{rng.end}) has no complete session with warm-up "
            f"history in {where} ({len(excluded)} excluded, first: {excluded[0][0]} "
            f"{excluded[0][1]}); {_CREATE_HINT}"
        )

    kept = np.nonzero(keep)[0]
    new_index = np.full(n_s, -1, dtype=np.int64)
    new_index[kept] = np.arange(len(kept))
    n_k, n_t, n_f, width = len(kept), len(cfg.symbols), len(FEATURE_NAMES), PADDED_LENGTH
    lengths = minutes[kept]
    # Padding repeats the last real minute: gather column min(j, length - 1) of each session.
    gather = np.minimum(np.arange(width)[None, :], lengths[:, None] - 1)
    ts = opens[kept][:, None] + gather * _MINUTE_NS
    prices = {name: np.empty((n_k, width, n_t), dtype=np.float64) for name in _PRICE_FIELDS}
    features = np.empty((n_k, width, n_t, n_f), dtype=np.float64)
    rows = np.arange(n_k)[:, None]
    for t, (ts_ns, pos, in_split, group, values) in enumerate(per_symbol):
        take = in_split & keep[np.maximum(pos, 0)]
        s_idx = new_index[pos[take]]
        k_idx = (ts_ns[take] - opens[pos[take]]) // _MINUTE_NS
        for name in _PRICE_FIELDS:
            full = np.zeros((n_k, width), dtype=np.float64)
            full[s_idx, k_idx] = group[name].to_numpy(dtype=np.float64)[take]
            prices[name][:, :, t] = full[rows, gather]
        full_f = np.zeros((n_k, width, n_f), dtype=np.float64)
        full_f[s_idx, k_idx] = values[take]
        features[:, :, t, :] = full_f[rows, gather]
    return _RawPanel(
        dates=dates[kept],
        lengths=lengths,
        ts=ts,
        prices=prices,
        features=features,
        excluded=tuple(excluded),
    )


def _log_exclusions(
    split: str,
    excluded: list[tuple[str, str]] | tuple[tuple[str, str], ...],
    n_s: int,
    cfg: DataConfig,
) -> None:
    """Log the sessions left out: a warning for incomplete ones, a note for cold ones."""
    incomplete = [d for d, why in excluded if why.startswith("incomplete")]
    if incomplete:
        log.warning(
            "split %s: excluded %d of %d sessions whose bars are incomplete versus the %s "
            "calendar (first: %s); they are not forward-filled",
            split,
            len(incomplete),
            n_s,
            cfg.calendar,
            ", ".join(incomplete[:5]),
        )
    cold = [d for d, why in excluded if not why.startswith("incomplete")]
    if cold:
        log.info(
            "split %s: excluded %d sessions without %d bars of earlier history for warm-up "
            "(first: %s)",
            split,
            len(cold),
            cfg.features.warmup_bars,
            cold[0],
        )


def _fit_from_raw(
    raw: _RawPanel, cfg: DataConfig, split: str, rng: DateRange, override: bool
) -> Normaliser:
    mask = raw.real_mask()
    samples = {sym: raw.features[:, :, t, :][mask] for t, sym in enumerate(cfg.symbols)}
    norm = Normaliser.fit(
        samples,
        FEATURE_NAMES,
        clip=cfg.features.clip,
        split=split,
        start=str(rng.start),
        end=str(rng.end),
        test_overlap_override=override,
    )
    log.info(
        "fitted the feature normaliser on split %s (%s..%s, %d sessions)",
        split,
        rng.start,
        rng.end,
        len(raw.dates),
    )
    return norm


def fit_normaliser_from_bars(
    bars: pd.DataFrame, cfg: DataConfig, *, allow_test_overlap: bool = False, where: str = "bars"
) -> Normaliser:
    """Fit the normaliser on ``cfg.features.normalisation_split`` of a bar frame only.

    :param bars: canonical bars covering the split (and, for warm-up, the sessions before it)
    :param cfg: data config (symbols, splits, feature settings)
    :param allow_test_overlap: allow a normalisation split that overlaps a protected split
    :param where: description of the bars' origin, used in error messages
    """
    split = cfg.features.normalisation_split
    check = check_training_range(cfg, split, allow_test_overlap=allow_test_overlap)
    rng = resolve_split(cfg, split)
    raw = _raw_panel(bars, cfg, split, rng, where)
    return _fit_from_raw(raw, cfg, split, rng, check.override)


def fit_normaliser(
    cfg: DataConfig, store: BarStore, *, allow_test_overlap: bool = False
) -> Normaliser:
    """Fit the normaliser on the normalisation split (the training split by default) of a store.

    :param cfg: data config (symbols, splits, feature settings)
    :param store: bar store to read from
    :param allow_test_overlap: allow a normalisation split that overlaps a protected split
    """
    split = cfg.features.normalisation_split
    check_training_range(cfg, split, allow_test_overlap=allow_test_overlap)
    bars = read_split_bars(cfg, split, store)
    return fit_normaliser_from_bars(
        bars, cfg, allow_test_overlap=allow_test_overlap, where=f"bar store {store.path}"
    )


def _fingerprint(raw: _RawPanel, cfg: DataConfig, norm: Normaliser) -> str:
    """Short sha256 of the bar arrays, symbols and feature settings (normaliser included)."""
    h = hashlib.sha256()
    h.update(json.dumps(list(cfg.symbols)).encode())
    h.update(json.dumps(list(FEATURE_NAMES)).encode())
    h.update(json.dumps(cfg.features.model_dump(mode="json"), sort_keys=True).encode())
    h.update(json.dumps(norm.to_dict(), sort_keys=True).encode())
    h.update(cfg.calendar.encode())
    for arr in (raw.dates.astype("int64"), raw.lengths, raw.ts):
        h.update(np.ascontiguousarray(arr).tobytes())
    for name in _PRICE_FIELDS:
        h.update(np.ascontiguousarray(raw.prices[name]).tobytes())
    return h.hexdigest()[:16]


def panel_from_bars(
    bars: pd.DataFrame,
    cfg: DataConfig,
    split: str,
    normaliser: Normaliser | None = None,
    *,
    synthetic: bool = False,
    allow_test_overlap: bool = False,
    where: str = "bars",
) -> SessionPanel:
    """Build the panel of ``split`` from a bar frame (the store-free core of :func:`build_panel`).

    :param bars: canonical bars of ``cfg.symbols`` covering the split and its warm-up sessions;
        when ``normaliser`` is None they must also cover the normalisation split
    :param cfg: data config (symbols, splits, feature settings)
    :param split: name of the split to build
    :param normaliser: fitted normaliser; None fits one on the normalisation split of ``bars``
    :param synthetic: whether the bars are generated (recorded on the panel)
    :param allow_test_overlap: passed on when a normaliser has to be fitted
    :param where: description of the bars' origin, used in error messages
    """
    started = time.perf_counter()
    rng = resolve_split(cfg, split)
    if normaliser is None:
        normaliser = fit_normaliser_from_bars(
            bars, cfg, allow_test_overlap=allow_test_overlap, where=where
        )
    normaliser.check_compatible(tuple(cfg.symbols), FEATURE_NAMES)
    if normaliser.clip != cfg.features.clip:
        raise ConfigError(
            f"normaliser clips at {normaliser.clip} but data.features.clip is "
            f"{cfg.features.clip}; use the config the normaliser was fitted with"
        )
    raw = _raw_panel(bars, cfg, split, rng, where)
    panel = SessionPanel(
        symbols=tuple(cfg.symbols),
        feature_names=FEATURE_NAMES,
        dates=raw.dates,
        lengths=raw.lengths,
        ts=raw.ts,
        open=raw.prices["open"],
        high=raw.prices["high"],
        low=raw.prices["low"],
        close=raw.prices["close"],
        volume=raw.prices["volume"],
        features=normaliser.transform(raw.features),
        split=split,
        synthetic=synthetic,
        fingerprint=_fingerprint(raw, cfg, normaliser),
        normaliser=normaliser,
        excluded_sessions=raw.excluded,
    )
    log.info(
        "built panel %s: %d sessions (%d excluded), %s, fingerprint %s, %.2f s",
        split,
        panel.n_sessions,
        len(raw.excluded),
        ",".join(panel.symbols),
        panel.fingerprint,
        time.perf_counter() - started,
    )
    return panel


def build_panel(
    cfg: DataConfig,
    split: str,
    store: BarStore,
    normaliser: Normaliser | None = None,
    *,
    allow_test_overlap: bool = False,
) -> SessionPanel:
    """Build the session panel of ``split`` from the bar store.

    :param cfg: data config (symbols, splits, feature settings)
    :param split: name of the split to build
    :param store: bar store to read from
    :param normaliser: fitted normaliser; None fits one on the normalisation split of the store
    :param allow_test_overlap: passed on when a normaliser has to be fitted

    Given a normaliser, the panel comes from the in-process cache when the stored bars, the
    data config, the split and the normaliser are those it was built from (module docstring).
    """
    if normaliser is None:
        normaliser = fit_normaliser(cfg, store, allow_test_overlap=allow_test_overlap)
        return _build_from_store(cfg, split, store, normaliser)
    key = panel_cache_key(cfg, split, store, normaliser)
    with _PANEL_CACHE_LOCK:
        hit = _PANEL_CACHE.get(key)
        if hit is not None:
            _PANEL_CACHE.move_to_end(key)
    if hit is not None:
        # the build's own notes about left-out sessions, as a fresh build gives them
        _log_exclusions(
            split, hit.excluded_sessions, hit.n_sessions + len(hit.excluded_sessions), cfg
        )
        log.info("panel %s from the in-process cache (key %s)", split, key[:16])
        return _copy_panel(hit, normaliser)
    panel = _build_from_store(cfg, split, store, normaliser)
    with _PANEL_CACHE_LOCK:
        _PANEL_CACHE[key] = _copy_panel(panel, normaliser)
        while len(_PANEL_CACHE) > PANEL_CACHE_SIZE:
            _PANEL_CACHE.popitem(last=False)
    return panel


def _build_from_store(
    cfg: DataConfig, split: str, store: BarStore, normaliser: Normaliser
) -> SessionPanel:
    bars = read_split_bars(cfg, split, store)
    return panel_from_bars(
        bars,
        cfg,
        split,
        normaliser,
        synthetic=store.is_synthetic(list(cfg.symbols)),
        where=f"bar store {store.path}",
    )


def panel_cache_key(cfg: DataConfig, split: str, store: BarStore, normaliser: Normaliser) -> str:
    """The cache key of a panel: stored bars read, data config, split and normaliser.

    The split's range and warm-up start are resolved here (an unknown split raises as the build
    would), and the store's digest covers every bar of the symbols the build could read.
    """
    rng = resolve_split(cfg, split)
    first = warmup_start(cfg, rng).date()
    h = hashlib.sha256()
    for part in (
        store.content_digest(list(cfg.symbols), first, rng.end),
        json.dumps(cfg.model_dump(mode="json", exclude={"store_path"}), sort_keys=True),
        json.dumps([split, str(first), str(rng.start), str(rng.end), list(FEATURE_NAMES)]),
        json.dumps(normaliser.to_dict(), sort_keys=True),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _copy_panel(panel: SessionPanel, normaliser: Normaliser) -> SessionPanel:
    """The panel with its own copy of every array (and the caller's normaliser object)."""
    arrays = {name: getattr(panel, name).copy() for name in _PANEL_ARRAYS}
    return dataclasses.replace(panel, normaliser=normaliser, **arrays)


def clear_panel_cache() -> None:
    """Forget every cached panel."""
    with _PANEL_CACHE_LOCK:
        _PANEL_CACHE.clear()


def panel_cache_size() -> int:
    """Number of panels in the in-process cache."""
    with _PANEL_CACHE_LOCK:
        return len(_PANEL_CACHE)
