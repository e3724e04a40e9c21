"""Constructed traces and panels for evaluation tests, with numbers that can be hand-checked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stairways.data.panel import SessionPanel
from stairways.evaluation.traces import (
    FLOAT_COLUMNS,
    TICKER_FIELDS,
    Trace,
    TraceMeta,
    build_trace_frame,
)

SYMBOLS = ("NVDA", "MSFT")
CAPITAL = 100_000.0
# 2024-03-04 14:30 UTC is the 09:30 New York open of a regular session.
FIRST_OPEN = pd.Timestamp("2024-03-04 14:30", tz="UTC")


def make_trace(
    pnl: Sequence[Sequence[float]],
    *,
    fees: Sequence[Sequence[float]] | None = None,
    fill_qty: Sequence[Sequence[float]] | None = None,
    fill_price: float = 100.0,
    reward: Sequence[Sequence[float]] | None = None,
    capital: float = CAPITAL,
    earned: Sequence[Sequence[float]] | None = None,
) -> Trace:
    """A trace with one session per entry of ``pnl`` (net step P&L), one step per minute.

    Fills (if given) happen on NVDA at ``fill_price``; a step holds when it fills nothing.
    Spread and impact costs are zero, so gross P&L is net P&L plus fees. The reward has one
    component, ``pnl``, equal to the reward; with ``earned`` it has two: ``pnl`` (the earned
    part) and ``hold`` (the rest, a shaping bonus).
    """
    n = np.array([len(p) for p in pnl], dtype=np.int64)
    s, m = len(pnl), int(n.max())
    t = len(SYMBOLS)

    def pad(rows: Sequence[Sequence[float]] | None) -> np.ndarray:
        out = np.zeros((s, m))
        for i, row in enumerate(rows or []):
            out[i, : len(row)] = row
        return out

    net, fee, qty = pad(pnl), pad(fees), pad(fill_qty)
    rew = pad(reward) if reward is not None else net / capital
    equity = capital + np.cumsum(net, axis=1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), capital)
    day_ns = 86_400 * 10**9
    ts = (
        FIRST_OPEN.value
        + np.arange(s, dtype=np.int64)[:, None] * day_ns
        + np.arange(m, dtype=np.int64)[None, :] * 60 * 10**9
    )
    dates = np.array(
        [np.datetime64("2024-03-04") + np.timedelta64(i, "D") for i in range(s)],
        dtype="datetime64[D]",
    )
    per_step = {
        "step_pnl": net,
        "gross_pnl": net + fee,
        "fees": fee,
        "spread_cost": np.zeros((s, m)),
        "impact_cost": np.zeros((s, m)),
        "notional": np.abs(qty) * fill_price,
        "equity": equity,
        "drawdown": (peak - equity) / peak,
        "reward": rew,
    }
    assert set(per_step) == set(FLOAT_COLUMNS)
    zeros = np.zeros((s, m, t))
    q = zeros.copy()
    q[:, :, 0] = qty
    price = np.full((s, m, t), fill_price)
    per_ticker = {
        "target": np.cumsum(q, axis=1),
        "position": np.cumsum(q, axis=1),
        "price": price,
        "fill_qty": q,
        "fill_price": np.where(q != 0.0, fill_price, np.nan),
    }
    assert set(per_ticker) == set(TICKER_FIELDS)
    components = {"pnl": rew}
    if earned is not None:
        components = {"pnl": pad(earned), "hold": rew - pad(earned)}
    meta = TraceMeta(
        symbols=SYMBOLS,
        reward_components=tuple(components),
        starting_capital=capital,
        split="test",
        policy="agent",
        checkpoint="final",
        run="constructed",
    )
    frame = build_trace_frame(
        meta=meta,
        dates=dates,
        n_steps=n,
        ts=ts,
        action=np.zeros((s, m), dtype=np.int64),
        action_changed=(qty != 0.0).astype(np.int64),
        per_step=per_step,
        per_ticker=per_ticker,
        components=components,
    )
    return Trace(frame=frame, meta=meta)


def spread(window_sums: Sequence[float], window: int = 30) -> list[float]:
    """Step P&L of one session whose consecutive ``window``-minute sums are ``window_sums``."""
    out: list[float] = []
    for total in window_sums:
        out.extend([total] + [0.0] * (window - 1))
    return out


def make_panel(
    open_: np.ndarray,
    close: np.ndarray,
    *,
    volume: float = 1e6,
    spread: float = 0.001,
    lengths: Sequence[int] | None = None,
    split: str = "test",
    features: np.ndarray | None = None,
) -> SessionPanel:
    """A hand-made panel: ``open_`` and ``close`` shaped (S, L, T); highs and lows bracket them.

    High is ``max(open, close) * (1 + spread)`` and low ``min(open, close) * (1 - spread)``, so
    every bar's Parkinson sigma is known. Features default to one column of zeros.
    """
    s, length, t = open_.shape
    lens = np.full(s, length, dtype=np.int64) if lengths is None else np.asarray(lengths)
    high = np.maximum(open_, close) * (1.0 + spread)
    low = np.minimum(open_, close) * (1.0 - spread)
    day_ns = 86_400 * 10**9
    ts = (
        FIRST_OPEN.value
        + np.arange(s, dtype=np.int64)[:, None] * day_ns
        + np.arange(length, dtype=np.int64)[None, :] * 60 * 10**9
    )
    dates = np.array(
        [np.datetime64("2024-03-04") + np.timedelta64(i, "D") for i in range(s)],
        dtype="datetime64[D]",
    )
    return SessionPanel(
        symbols=SYMBOLS[:t],
        feature_names=tuple(f"f{k}" for k in range(1 if features is None else features.shape[3])),
        dates=dates,
        lengths=lens.astype(np.int64),
        ts=ts,
        open=open_.astype(np.float64),
        high=high,
        low=low,
        close=close.astype(np.float64),
        volume=np.full((s, length, t), volume),
        features=(
            np.zeros((s, length, t, 1), dtype=np.float32)
            if features is None
            else features.astype(np.float32)
        ),
        split=split,
        synthetic=True,
        fingerprint="handmade",
    )


def random_walk_panel(sessions: int, length: int, seed: int, n_features: int = 3) -> SessionPanel:
    """A panel of random-walk prices and standard-normal features (for replay tests)."""
    rng = np.random.default_rng(seed)
    start = np.array([100.0, 250.0])
    steps = rng.normal(0.0, 0.001, size=(sessions, length, 2))
    close = start * np.exp(np.cumsum(steps, axis=1))
    open_ = close * np.exp(rng.normal(0.0, 0.0003, size=close.shape))
    feats = rng.normal(size=(sessions, length, 2, n_features)).clip(-4, 4)
    return make_panel(open_, close, features=feats)
