"""Action-trace analysis: what an agent did, step by step, on a replayed split.

All computation behind notebooks/action_trace_analysis.ipynb lives here (the notebook only
calls and plots). Inputs are evaluation traces (:mod:`stairways.evaluation.traces`): one row
per step with positions in shares after the step. Each session is one episode and starts
flat. Definitions:

- *Trade events*: every step where a ticker's position changes: ``entry`` (flat to a side),
  ``exit`` (a side to flat), ``reversal`` (one side to the other) or ``resize``.
- *Holdings* (round trips): maximal runs of steps with the same non-flat sign; the holding
  time is the number of steps in the run. A reversal closes one holding and opens the next.
- *Turnover* of an episode: traded notional / starting capital (as in the metrics module).
- *Exposure*: share of an episode's steps with any non-flat position.
- *Flip-flops*: :mod:`stairways.analysis.flipflop`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stairways.analysis.checkpoints import rank_run_checkpoints
from stairways.analysis.flipflop import FlipFlopRule, detect_flip_flops, position_signs
from stairways.errors import InputError, MissingResourceError
from stairways.evaluation.traces import Trace, read_trace, ticker_column, trace_path

log = logging.getLogger(__name__)

EVENT_COLUMNS: tuple[str, ...] = (
    "session_date",
    "step",
    "ts",
    "symbol",
    "kind",
    "side",
    "position",
    "price",
)
HOLDING_COLUMNS: tuple[str, ...] = (
    "session_date",
    "symbol",
    "side",
    "entry_step",
    "exit_step",
    "holding_bars",
    "entry_ts",
    "exit_ts",
)

TraceProducer = Callable[[Path, str, Path], Path]
"""Replays one checkpoint of a run on a split: (run_dir, split, checkpoint) -> trace file."""


@dataclass(frozen=True)
class CheckpointTrace:
    """A ranked checkpoint and its replay on the split."""

    rank: int
    steps: int
    checkpoint: Path
    training_reward: float
    trace: Trace
    reused: bool

    @property
    def label(self) -> str:
        """Short name for plots and tables, for example ``#1 (12000 steps)``."""
        return f"#{self.rank} ({self.steps} steps)"


def checkpoint_name(checkpoint: Path) -> str:
    """The name a checkpoint's evaluation is stored under (file name without ``.zip``)."""
    return checkpoint.stem


def require_run(run_dir: Path) -> Path:
    """The run directory, or a MissingResourceError naming it when it does not exist."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MissingResourceError(
            f"run directory {run_dir} does not exist; pass a directory written by "
            "`stairways train` (it holds monitor.csv and checkpoints/)"
        )
    return run_dir


def checkpoint_traces(
    run_dir: Path,
    split: str,
    ranking: pd.DataFrame,
    produce: TraceProducer | None = None,
) -> list[CheckpointTrace]:
    """Traces of the ranked checkpoints on ``split``: existing ones are reused, the rest made.

    :param run_dir: the run directory
    :param split: split name (for example ``validation``)
    :param ranking: output of :func:`~stairways.analysis.checkpoints.rank_checkpoints`
    :param produce: replays a checkpoint when its trace is missing; None means missing traces
        are an error (nothing is ever made up in their place)
    """
    out: list[CheckpointTrace] = []
    for row in ranking.itertuples(index=False):
        ckpt = Path(str(row.checkpoint))
        path = trace_path(run_dir, split, checkpoint_name(ckpt))
        reused = path.is_file()
        if not reused:
            if produce is None:
                raise MissingResourceError(
                    f"no trace of {ckpt.name} on {split} at {path}; run "
                    f"`stairways evaluate {run_dir} --split {split} --checkpoint {ckpt.name}`"
                )
            log.info("replaying %s on %s", ckpt.name, split)
            made = produce(run_dir, split, ckpt)
            if made != path and not path.is_file():
                path = made
        else:
            log.info("reusing the trace of %s on %s (%s)", ckpt.name, split, path)
        trace = read_trace(path)
        out.append(
            CheckpointTrace(
                rank=int(row.rank),
                steps=int(row.steps),
                checkpoint=ckpt,
                training_reward=float(row.reward_mean),
                trace=trace,
                reused=reused,
            )
        )
    return out


def replay_producer(store: Path | None = None) -> TraceProducer:
    """Replays a checkpoint with ``stairways evaluate`` (which writes the trace file).

    :param store: bar store to read instead of the one in the run's config
    """

    def produce(run_dir: Path, split: str, checkpoint: Path) -> Path:
        from stairways.evaluation.runner import evaluate_run

        report = evaluate_run(run_dir, checkpoint=str(checkpoint), split=split, store=store)
        return trace_path(report.run_dir, split, report.checkpoint.name)

    return produce


def ranked_traces(
    run_dir: Path,
    split: str,
    top_k: int = 10,
    window: int = 100,
    produce: TraceProducer | None = None,
) -> tuple[pd.DataFrame, list[CheckpointTrace]]:
    """Rank a run's checkpoints and load (or make) their traces on ``split``."""
    run_dir = require_run(run_dir)
    ranking = rank_run_checkpoints(run_dir, top_k=top_k, window=window)
    return ranking, checkpoint_traces(run_dir, split, ranking, produce)


def positions(trace: Trace) -> pd.DataFrame:
    """Positions (shares after each step) with one column per ticker, indexed like the trace."""
    cols = {ticker_column("position", s): s for s in trace.meta.symbols}
    return trace.frame[list(cols)].rename(columns=cols)


def position_patterns(trace: Trace) -> pd.DataFrame:
    """Per ticker: share of steps long, short and flat, and mean absolute position in shares."""
    rows = []
    for sym in trace.meta.symbols:
        pos = trace.frame[ticker_column("position", sym)].to_numpy(dtype=np.float64)
        sign = position_signs(pos)
        n = max(len(pos), 1)
        rows.append(
            {
                "symbol": sym,
                "long": float((sign > 0).sum()) / n,
                "short": float((sign < 0).sum()) / n,
                "flat": float((sign == 0).sum()) / n,
                "mean_abs_shares": float(np.abs(pos).mean()) if len(pos) else 0.0,
            }
        )
    return pd.DataFrame(rows).set_index("symbol")


def position_by_step(trace: Trace) -> pd.DataFrame:
    """Mean position sign per step of the session (rows: step; columns: tickers).

    +1 means always long at that minute of the day, -1 always short, 0 flat or balanced.
    """
    f = trace.frame
    data = {
        sym: position_signs(f[ticker_column("position", sym)].to_numpy()).astype(np.float64)
        for sym in trace.meta.symbols
    }
    frame = pd.DataFrame(data)
    frame["step"] = f["step"].to_numpy()
    return frame.groupby("step").mean()


def trade_events(trace: Trace) -> pd.DataFrame:
    """Every position change: entries, exits, reversals and resizes (:data:`EVENT_COLUMNS`).

    ``price`` is the fill price when the step filled, else the bar's mark.
    """
    f = trace.frame
    session = f["session"].to_numpy()
    first = np.ones(len(f), dtype=bool)
    first[1:] = session[1:] != session[:-1]
    parts = []
    for sym in trace.meta.symbols:
        pos = f[ticker_column("position", sym)].to_numpy(dtype=np.float64)
        prev = np.where(first, 0.0, np.roll(pos, 1))  # every episode starts flat
        sign, prev_sign = position_signs(pos), position_signs(prev)
        changed = pos != prev
        if not changed.any():
            continue
        kind = np.full(len(f), "resize", dtype=object)
        kind[(prev_sign == 0) & (sign != 0)] = "entry"
        kind[(prev_sign != 0) & (sign == 0)] = "exit"
        kind[(prev_sign != 0) & (sign != 0) & (prev_sign != sign)] = "reversal"
        side_sign = np.where(sign != 0, sign, prev_sign)
        fill = f[ticker_column("fill_price", sym)].to_numpy(dtype=np.float64)
        mark = f[ticker_column("price", sym)].to_numpy(dtype=np.float64)
        price = np.where(np.isfinite(fill), fill, mark)
        idx = np.flatnonzero(changed)
        parts.append(
            pd.DataFrame(
                {
                    "session_date": f["session_date"].to_numpy()[idx],
                    "step": f["step"].to_numpy()[idx],
                    "ts": f["ts"].iloc[idx].to_numpy(),
                    "symbol": sym,
                    "kind": kind[idx],
                    "side": np.where(side_sign[idx] > 0, "long", "short"),
                    "position": pos[idx],
                    "price": price[idx],
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: [] for c in EVENT_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    return out.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def holdings(trace: Trace) -> pd.DataFrame:
    """Every holding (run of same-sign positions) and its length in steps.

    Columns: :data:`HOLDING_COLUMNS`.

    A holding still open at the last step of an episode ends there (the episode ended).
    """
    f = trace.frame
    rows: list[dict[str, object]] = []
    ts = f["ts"].to_numpy()
    dates = f["session_date"].to_numpy()
    steps = f["step"].to_numpy()
    bounds = np.flatnonzero(np.diff(f["session"].to_numpy())) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(f)]])
    for sym in trace.meta.symbols:
        sign_all = position_signs(f[ticker_column("position", sym)].to_numpy())
        for a, b in zip(starts, ends, strict=True):
            sign = sign_all[a:b]
            if not sign.any():
                continue
            change = np.flatnonzero(np.diff(sign)) + 1
            run_start = np.concatenate([[0], change])
            run_end = np.concatenate([change, [len(sign)]])
            for rs, re_ in zip(run_start, run_end, strict=True):
                if sign[rs] == 0:
                    continue
                rows.append(
                    {
                        "session_date": dates[a],
                        "symbol": sym,
                        "side": "long" if sign[rs] > 0 else "short",
                        "entry_step": int(steps[a + rs]),
                        "exit_step": int(steps[a + re_ - 1]),
                        "holding_bars": int(re_ - rs),
                        "entry_ts": ts[a + rs],
                        "exit_ts": ts[a + re_ - 1],
                    }
                )
    if not rows:
        return pd.DataFrame({c: [] for c in HOLDING_COLUMNS})
    return pd.DataFrame(rows, columns=list(HOLDING_COLUMNS))


def equity_curve(trace: Trace) -> pd.DataFrame:
    """Chained equity over all sessions (capital + cumulative net P&L) and its drawdown.

    Sessions do not compound (each starts from the same capital), so the chained curve is the
    running total of P&L on top of one starting capital, as in the metrics module.
    """
    f = trace.frame
    capital = trace.meta.starting_capital
    equity = capital + np.cumsum(f["step_pnl"].to_numpy(dtype=np.float64))
    peak = np.maximum.accumulate(np.maximum(equity, capital))
    return pd.DataFrame(
        {
            "ts": f["ts"].to_numpy(),
            "session_date": f["session_date"].to_numpy(),
            "equity": equity,
            "drawdown": (peak - equity) / peak,
        }
    )


def episode_summary(trace: Trace, rule: FlipFlopRule) -> pd.DataFrame:
    """One row per episode (session): P&L, reward, steps, turnover, fills, exposure, holding, flips.

    ``fills`` counts (step, ticker) pairs with a non-zero fill, as the metrics' trades do.
    """
    f = trace.frame
    capital = trace.meta.starting_capital
    pos_cols = [ticker_column("position", s) for s in trace.meta.symbols]
    fill_cols = [ticker_column("fill_qty", s) for s in trace.meta.symbols]
    g = f.groupby("session_date", sort=True)
    out = pd.DataFrame(
        {
            "net_pnl": g["step_pnl"].sum(),
            "reward": g["reward"].sum(),
            "steps": g.size(),
            "turnover": g["notional"].sum() / capital,
            "fills": g[fill_cols].apply(lambda x: int((x.to_numpy() != 0.0).sum())),
            "max_drawdown": g["drawdown"].max(),
            "exposure": g[pos_cols].apply(
                lambda x: float((position_signs(x.to_numpy()) != 0).any(axis=1).mean())
            ),
        }
    )
    held = holdings(trace)
    if len(held):
        out["mean_holding_bars"] = held.groupby("session_date")["holding_bars"].mean()
    else:
        out["mean_holding_bars"] = np.nan
    flips = detect_flip_flops(
        f,
        episode_columns=["session_date"],
        position_columns=pos_cols,
        pnl_column="step_pnl",
        rule=rule,
        order_column="step",
    )
    out = out.join(flips[["flips", "flip_rate", "flagged", "flagged_losing"]])
    return out


def good_vs_bad(summary: pd.DataFrame, fraction: float = 0.25) -> pd.DataFrame:
    """Mean episode statistics of the best and worst ``fraction`` of episodes by net P&L.

    :param summary: output of :func:`episode_summary`
    :param fraction: share of episodes in each group (at least one episode each)
    :return: rows ``good`` and ``bad``, one column per numeric statistic, plus ``episodes``
    """
    if not 0 < fraction <= 0.5:
        raise InputError(f"fraction must be in (0, 0.5], got {fraction}")
    if len(summary) < 2:
        raise InputError(
            f"good-versus-bad comparison needs at least 2 episodes, got {len(summary)}"
        )
    k = max(1, int(np.floor(len(summary) * fraction)))
    ordered = summary.sort_values("net_pnl", ascending=False, kind="stable")
    numeric = ordered.select_dtypes(include=["number", "bool"]).astype(np.float64)
    good, bad = numeric.head(k).mean(), numeric.tail(k).mean()
    table = pd.DataFrame({"good": good, "bad": bad}).T
    table.insert(0, "episodes", [k, k])
    return table


def flip_flop_table(traces: Mapping[str, Trace], rule: FlipFlopRule) -> pd.DataFrame:
    """Flip-flop summary per checkpoint: episodes, flagged, flagged with net P&L <= 0, mean rate."""
    rows = []
    for label, trace in traces.items():
        s = episode_summary(trace, rule)
        rows.append(
            {
                "checkpoint": label,
                "episodes": len(s),
                "mean_flip_rate": float(s["flip_rate"].mean()),
                "flagged": int(s["flagged"].sum()),
                "flagged_losing": int(s["flagged_losing"].sum()),
                "net_pnl": float(s["net_pnl"].sum()),
            }
        )
    return pd.DataFrame(rows).set_index("checkpoint")
