"""Small SessionPanels built directly from arrays (random walks), for env and reward tests."""

from __future__ import annotations

import numpy as np

from stairways.data.panel import SessionPanel

FULL_DAY = 390
HALF_DAY = 210


def random_walk_panel(
    lengths: tuple[int, ...] = (FULL_DAY, HALF_DAY, FULL_DAY),
    seed: int = 0,
    n_features: int = 12,
    symbols: tuple[str, ...] = ("NVDA", "MSFT"),
    vol: float = 0.001,
    start_prices: tuple[float, ...] = (450.0, 330.0),
) -> SessionPanel:
    """Sessions of random-walk bars with the given lengths, padded to the longest."""
    rng = np.random.default_rng(seed)
    s, t, f = len(lengths), len(symbols), n_features
    width = max(lengths)
    close = np.empty((s, width, t))
    open_ = np.empty((s, width, t))
    for k, n in enumerate(lengths):
        steps = rng.normal(0.0, vol, size=(n, t))
        c = np.asarray(start_prices[:t]) * np.exp(np.cumsum(steps, axis=0))
        o = np.vstack([np.asarray(start_prices[:t]), c[:-1]]) * np.exp(
            rng.normal(0.0, vol / 4, size=(n, t))
        )
        close[k, :n], open_[k, :n] = c, o
        close[k, n:], open_[k, n:] = c[-1], c[-1]
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, vol / 2, size=close.shape)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, vol / 2, size=close.shape)))
    volume = rng.uniform(5e3, 5e4, size=close.shape)
    features = np.clip(rng.normal(0.0, 1.0, size=(s, width, t, f)), -5, 5).astype(np.float32)
    dates = np.array([np.datetime64("2023-01-03") + k for k in range(s)], dtype="datetime64[D]")
    base = np.datetime64("2023-01-03T14:30", "ns").astype(np.int64)
    ts = base + np.arange(width, dtype=np.int64)[None, :] * 60_000_000_000
    ts = ts + (np.arange(s, dtype=np.int64) * 86_400_000_000_000)[:, None]
    return SessionPanel(
        symbols=symbols,
        feature_names=tuple(f"f{k}" for k in range(f)),
        dates=dates,
        lengths=np.asarray(lengths, dtype=np.int64),
        ts=ts,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        features=features,
        split="train",
        synthetic=True,
        fingerprint=f"random-walk-{seed}",
    )


def flat_panel(
    lengths: tuple[int, ...],
    open_: np.ndarray,
    close: np.ndarray,
    volume: float = 1e6,
    n_features: int = 12,
) -> SessionPanel:
    """A panel with given open/close arrays (S, L, T); high/low bracket them; zero features."""
    s, width, t = close.shape
    high = np.maximum(open_, close)
    low = np.minimum(open_, close)
    dates = np.array([np.datetime64("2023-01-03") + k for k in range(s)], dtype="datetime64[D]")
    ts = np.tile(np.arange(width, dtype=np.int64) * 60_000_000_000, (s, 1))
    return SessionPanel(
        symbols=("NVDA", "MSFT")[:t],
        feature_names=tuple(f"f{k}" for k in range(n_features)),
        dates=dates,
        lengths=np.asarray(lengths, dtype=np.int64),
        ts=ts,
        open=np.asarray(open_, dtype=np.float64),
        high=high,
        low=low,
        close=np.asarray(close, dtype=np.float64),
        volume=np.full(close.shape, volume),
        features=np.zeros((s, width, t, n_features), dtype=np.float32),
        split="train",
        synthetic=True,
        fingerprint="flat",
    )
