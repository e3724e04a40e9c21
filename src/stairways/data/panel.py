"""The session panel: bars and normalised features aligned by session and minute.

This is the one structure the environment, the replay evaluator and later the live loop read.
Arrays are padded to the longest session (390 minutes); ``lengths`` says how many minutes each
session really has (210 on half days). Padding holds the last real value and is never stepped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stairways.data.normalise import Normaliser


@dataclass(frozen=True)
class SessionPanel:
    """Bars and features of a set of whole sessions, shaped (session, minute, ticker, ...).

    :param symbols: tickers in column order (for example ("NVDA", "MSFT"))
    :param feature_names: names of the per-ticker features, in order
    :param dates: session dates, ``datetime64[D]``, shape (S,)
    :param lengths: minutes in each session, int64, shape (S,)
    :param ts: bar start instants as int64 nanoseconds since the epoch (UTC), shape (S, L)
    :param open: float64 (S, L, T); likewise high, low, close, volume
    :param features: normalised and clipped features, float32, shape (S, L, T, F)
    :param split: name of the split the sessions were taken from
    :param synthetic: whether the bars are generated
    :param fingerprint: hash of the bars (and feature settings) the panel was built from
    :param normaliser: the fitted normaliser the features went through (runs save it)
    :param excluded_sessions: (date, reason) of split sessions left out (incomplete bars, no
        warm-up history), as reported by the panel builder
    """

    symbols: tuple[str, ...]
    feature_names: tuple[str, ...]
    dates: np.ndarray
    lengths: np.ndarray
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    features: np.ndarray
    split: str
    synthetic: bool
    fingerprint: str
    normaliser: Normaliser | None = None
    excluded_sessions: tuple[tuple[str, str], ...] = ()

    @property
    def n_sessions(self) -> int:
        """Number of sessions."""
        return int(self.dates.shape[0])

    @property
    def n_tickers(self) -> int:
        """Number of tickers."""
        return len(self.symbols)

    @property
    def n_features(self) -> int:
        """Number of features per ticker."""
        return len(self.feature_names)

    @property
    def max_length(self) -> int:
        """Padded session length (L)."""
        return int(self.ts.shape[1])

    def __post_init__(self) -> None:
        s, length = self.ts.shape
        t, f = self.n_tickers, self.n_features
        for name in ("open", "high", "low", "close", "volume"):
            arr = getattr(self, name)
            if arr.shape != (s, length, t):
                raise ValueError(f"panel.{name} has shape {arr.shape}, expected {(s, length, t)}")
        if self.features.shape != (s, length, t, f):
            raise ValueError(
                f"panel.features has shape {self.features.shape}, expected {(s, length, t, f)}"
            )
        if self.dates.shape != (s,) or self.lengths.shape != (s,):
            raise ValueError("panel.dates and panel.lengths must have one entry per session")
        if s and (self.lengths.min() < 2 or self.lengths.max() > length):
            raise ValueError("panel.lengths must lie between 2 and the padded length")

    def subset(self, index: np.ndarray) -> SessionPanel:
        """A panel of the sessions at ``index`` (same split name and fingerprint)."""
        return SessionPanel(
            symbols=self.symbols,
            feature_names=self.feature_names,
            dates=self.dates[index],
            lengths=self.lengths[index],
            ts=self.ts[index],
            open=self.open[index],
            high=self.high[index],
            low=self.low[index],
            close=self.close[index],
            volume=self.volume[index],
            features=self.features[index],
            split=self.split,
            synthetic=self.synthetic,
            fingerprint=self.fingerprint,
            normaliser=self.normaliser,
            excluded_sessions=self.excluded_sessions,
        )
