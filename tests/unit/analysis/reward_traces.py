"""Constructed evaluation traces for the reward-audit tests (every number hand-checkable)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from stairways.evaluation.traces import (
    INT_COLUMNS,
    Trace,
    TraceMeta,
    component_column,
    expected_columns,
    trace_path,
    validate_trace,
    write_trace,
)

CAPITAL = 10_000.0
SYMBOLS = ("NVDA", "MSFT")
# 2024-03-04 14:30 UTC is the 09:30 New York open of a regular session.
OPEN = pd.Timestamp("2024-03-04 14:30", tz="UTC")


def episode_trace(
    pnl: Sequence[float],
    components: Mapping[str, Sequence[float]],
    *,
    steps: int = 4,
    max_drawdown: Sequence[float] | None = None,
    reward: Sequence[float] | None = None,
) -> Trace:
    """A trace of ``len(pnl)`` episodes of ``steps`` steps each.

    Episode ``e`` makes P&L ``pnl[e]`` and collects ``components[c][e]`` of each component,
    both spread evenly over its steps; the step reward is the sum of the components unless
    ``reward`` (episode totals) is given. Episode ``e`` reaches a drawdown of
    ``max_drawdown[e]`` at its last step (0 elsewhere).
    """
    n = len(pnl)
    rows = n * steps
    meta = TraceMeta(
        symbols=SYMBOLS,
        reward_components=tuple(components),
        starting_capital=CAPITAL,
        split="validation",
    )
    data: dict[str, object] = {}
    for col in expected_columns(meta):
        data[col] = np.zeros(rows, dtype=np.int64 if col in INT_COLUMNS else np.float64)
    session = np.repeat(np.arange(n), steps)
    step = np.tile(np.arange(steps), n)
    day_ns = 86_400 * 10**9
    data["session"] = session.astype(np.int64)
    data["step"] = step.astype(np.int64)
    data["ts"] = pd.to_datetime(OPEN.value + session * day_ns + step * 60 * 10**9, utc=True)
    data["session_date"] = pd.to_datetime(
        np.datetime64("2024-03-04") + session.astype("timedelta64[D]")
    ).as_unit("ns")
    data["step_pnl"] = np.repeat(np.asarray(pnl, dtype=float) / steps, steps)
    comp_total = np.zeros(rows)
    for name, values in components.items():
        per_step = np.repeat(np.asarray(values, dtype=float) / steps, steps)
        data[component_column(name)] = per_step
        comp_total += per_step
    data["reward"] = (
        comp_total if reward is None else np.repeat(np.asarray(reward, dtype=float) / steps, steps)
    )
    dd = np.zeros(rows)
    if max_drawdown is not None:
        dd[np.arange(n) * steps + steps - 1] = max_drawdown
    data["drawdown"] = dd
    data["equity"] = CAPITAL + np.asarray(data["step_pnl"])
    for sym in SYMBOLS:
        data[f"price__{sym}"] = np.full(rows, 100.0)
        data[f"fill_price__{sym}"] = np.full(rows, np.nan)
    frame = pd.DataFrame(data)[expected_columns(meta)]
    return Trace(frame=validate_trace(frame, meta, "constructed trace"), meta=meta)


def write_run(run_dir: Path, trace: Trace, drawdown_cap: float | None = 0.02) -> Path:
    """A run directory: config.yaml (env.drawdown_cap) and the trace where evaluate puts it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = {"name": "audit_run"}
    if drawdown_cap is not None:
        cfg["env"] = {"drawdown_cap": drawdown_cap}  # type: ignore[assignment]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return write_trace(trace, trace_path(run_dir, "validation", "final"))
