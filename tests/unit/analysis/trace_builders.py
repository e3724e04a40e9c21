"""Constructed action traces (positions and P&L given per step) for the analysis tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stairways.evaluation.traces import (
    Trace,
    TraceMeta,
    expected_columns,
    ticker_column,
    validate_trace,
)

SYMBOLS = ("NVDA", "MSFT")
CAPITAL = 10_000.0
PRICE = 100.0


def make_trace(
    sessions: Sequence[tuple[Sequence[float], Sequence[float], Sequence[float]]],
    *,
    checkpoint: str = "checkpoint_1000",
) -> Trace:
    """A trace with one session per (NVDA positions, MSFT positions, step P&L) triple.

    Every column the trace format has is present (zeros unless set), so the builder follows
    the format as it grows.
    """
    meta = TraceMeta(
        symbols=SYMBOLS,
        reward_components=(),
        starting_capital=CAPITAL,
        split="eval_feb2024",
        checkpoint=checkpoint,
        run="constructed",
    )
    frames = []
    for s, (nvda, msft, pnl) in enumerate(sessions):
        n = len(pnl)
        day = pd.Timestamp("2024-02-01") + pd.Timedelta(days=s)
        f = pd.DataFrame({c: np.zeros(n) for c in expected_columns(meta)})
        f["session_date"] = day
        f["session"] = s
        f["step"] = np.arange(n)
        f["ts"] = pd.date_range(
            day.tz_localize("UTC") + pd.Timedelta(hours=14.5), periods=n, freq="min"
        )
        for c in ("action", "action_changed"):
            if c in f:
                f[c] = 0
        notional = np.zeros(n)
        for sym, pos in (("NVDA", nvda), ("MSFT", msft)):
            pos = np.asarray(pos, dtype=float)
            fill = np.diff(np.concatenate([[0.0], pos]))
            f[ticker_column("position", sym)] = pos
            f[ticker_column("target", sym)] = np.sign(pos)
            f[ticker_column("price", sym)] = PRICE + np.arange(n)
            f[ticker_column("fill_qty", sym)] = fill
            f[ticker_column("fill_price", sym)] = np.where(fill != 0, PRICE + 0.5, np.nan)
            notional += np.abs(fill) * (PRICE + 0.5)
        f["notional"] = notional
        f["step_pnl"] = np.asarray(pnl, dtype=float)
        f["gross_pnl"] = f["step_pnl"]
        equity = CAPITAL + np.cumsum(pnl)
        f["equity"] = equity
        peak = np.maximum.accumulate(np.maximum(equity, CAPITAL))
        f["drawdown"] = (peak - equity) / peak
        f["reward"] = f["step_pnl"] / CAPITAL
        frames.append(f)
    frame = pd.concat(frames, ignore_index=True)
    for c in ("session", "step", "action", "action_changed"):
        if c in frame:
            frame[c] = frame[c].astype(np.int64)
    return Trace(frame=validate_trace(frame, meta, "constructed"), meta=meta)
