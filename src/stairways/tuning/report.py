"""Results of a study: the trial table (CSV and HTML), the ranking and the seed-noise check.

The ranking only considers trials that completed and met the pass criteria. The best trial's
lead over the runner-up is compared with the seed noise measured for the best trial (the sample
standard deviation of its seed scores, ddof=1): a lead that is not larger than that spread is
within the noise, and the report says so. With one seed per trial the noise is unmeasured.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from stairways.evaluation.metrics import sharpe_text
from stairways.reports import tables
from stairways.reports.html import (
    Block,
    Figure,
    Heading,
    Level,
    Paragraph,
    TableBlock,
    Verdict,
    write_page,
)
from stairways.tuning.space import ChoiceParam, FloatParam, IntParam, SearchSpace

__all__ = [
    "NoiseVerdict",
    "TrialRecord",
    "noise_verdict",
    "ranked",
    "records_of",
    "results_frame",
    "write_atomic",
    "write_results_csv",
    "write_results_html",
]

_STATE_NAMES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "queued",
}


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the report shows it (parameters as stored labels)."""

    number: int
    state: str
    score: float | None
    params: dict[str, Any]
    seed_scores: tuple[float, ...] = ()
    seed_std: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    passed: bool | None = None
    pruned_at_step: int | None = None
    duration_s: float | None = None
    worker: str = ""
    run_dirs: tuple[str, ...] = ()
    error: str = ""


def records_of(trials: Sequence[FrozenTrial]) -> list[TrialRecord]:
    """Report records of Optuna trials (abandoned trials should be filtered out first)."""
    out = []
    for t in trials:
        worker = t.user_attrs.get("worker") or {}
        duration = t.duration.total_seconds() if t.duration is not None else None
        params = dict(t.params) if t.params else dict(t.system_attrs.get("fixed_params", {}))
        error = str(t.user_attrs.get("error", "")) if t.state == TrialState.FAIL else ""
        if t.user_attrs.get("reclaimed"):
            error = "worker died; marked failed by --reclaim-running"
        out.append(
            TrialRecord(
                number=t.number,
                state=_STATE_NAMES.get(t.state, t.state.name.lower()),
                score=t.value if t.state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
                params=params,
                seed_scores=tuple(float(s) for s in t.user_attrs.get("seed_scores", ())),
                seed_std=t.user_attrs.get("seed_std"),
                metrics=dict(t.user_attrs.get("metrics", {})),
                passed=t.user_attrs.get("passed"),
                pruned_at_step=t.last_step if t.state == TrialState.PRUNED else None,
                duration_s=duration,
                worker=_worker_label(worker),
                run_dirs=tuple(t.user_attrs.get("run_dirs", ())),
                error=error.splitlines()[0][:300] if error else "",
            )
        )
    return out


def _worker_label(worker: dict[str, Any]) -> str:
    if not worker:
        return ""
    return f"{worker.get('backend', '')}:{worker.get('host', '')}:{worker.get('pid', '')}"


def ranked(records: Sequence[TrialRecord], direction: str) -> list[TrialRecord]:
    """Completed trials that met the pass criteria, best first."""
    ok = [r for r in records if r.state == "complete" and r.passed and r.score is not None]
    return sorted(ok, key=lambda r: r.score or 0.0, reverse=direction == "maximize")


@dataclass(frozen=True)
class NoiseVerdict:
    """Is the best trial's lead over the runner-up larger than its seed noise?"""

    best: int | None
    runner_up: int | None
    gap: float | None
    noise: float | None
    within_noise: bool | None
    message: str


def noise_verdict(
    records: Sequence[TrialRecord], direction: str, seeds_per_trial: int
) -> NoiseVerdict:
    """Compare the lead of the best passing trial with the spread of its seed scores."""
    order = ranked(records, direction)
    if not order:
        return NoiseVerdict(None, None, None, None, None, "no trial passed the criteria")
    best = order[0]
    if len(order) < 2:
        return NoiseVerdict(
            best.number, None, None, best.seed_std, None, "no runner-up passed the criteria"
        )
    runner = order[1]
    gap = abs((best.score or 0.0) - (runner.score or 0.0))
    if seeds_per_trial < 2 or best.seed_std is None:
        return NoiseVerdict(
            best.number,
            runner.number,
            gap,
            None,
            None,
            f"seed noise unmeasured (one seed per trial): trial {best.number} leads trial "
            f"{runner.number} by {gap:.6g}; run with --seeds-per-trial 2 or more to know whether "
            "that lead is real",
        )
    within = gap <= best.seed_std
    if within:
        message = (
            f"WARNING: trial {best.number} leads trial {runner.number} by {gap:.6g}, which is "
            f"within its seed noise (std {best.seed_std:.6g} over {len(best.seed_scores)} seeds); "
            "the ranking of the two is not reliable"
        )
    else:
        message = (
            f"trial {best.number} leads trial {runner.number} by {gap:.6g}, more than its seed "
            f"noise (std {best.seed_std:.6g} over {len(best.seed_scores)} seeds)"
        )
    return NoiseVerdict(best.number, runner.number, gap, best.seed_std, within, message)


SHARPE_COLUMN = "sharpe_30min_and_daily"


def results_frame(records: Sequence[TrialRecord], space: SearchSpace) -> pd.DataFrame:
    """The trial table: one row per trial, parameters and metrics as columns; after the
    30-minute ``sharpe``, :data:`SHARPE_COLUMN` gives both Sharpe ratios and the daily one's
    95 % interval in one phrase."""
    metric_names: list[str] = []
    for r in records:
        for name in r.metrics:
            if name not in metric_names:
                metric_names.append(name)
    rows = []
    for r in records:
        row: dict[str, Any] = {"trial": r.number, "state": r.state, "score": r.score}
        row["seed_std"] = r.seed_std
        row["seeds"] = len(r.seed_scores)
        row["passed"] = "" if r.passed is None else ("yes" if r.passed else "no")
        for name in space.parameters:
            row[name] = r.params.get(name)
        for name in metric_names:
            row[name] = r.metrics.get(name)
            if name == "sharpe":
                # the daily Sharpe and its interval beside the 30-minute one, as everywhere
                row[SHARPE_COLUMN] = _sharpe_of(r.metrics) if "sharpe" in r.metrics else None
        row["pruned_at_step"] = r.pruned_at_step
        row["duration_s"] = None if r.duration_s is None else round(r.duration_s, 2)
        row["worker"] = r.worker
        row["run_dirs"] = ";".join(r.run_dirs)
        row["error"] = r.error
        rows.append(row)
    return pd.DataFrame(rows)


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def write_results_csv(frame: pd.DataFrame, path: Path) -> Path:
    """The trial table as CSV."""
    return write_atomic(path, frame.to_csv(index=False))


def _axis_position(spec: Any, value: Any) -> float | None:
    """Where a parameter value sits on its parallel-coordinates axis, in [0, 1]."""
    if value is None:
        return None
    if isinstance(spec, ChoiceParam):
        labels = list(spec.labels)
        if value not in labels:
            return None
        return labels.index(value) / max(len(labels) - 1, 1)
    if isinstance(spec, FloatParam | IntParam):
        lo, hi, v = float(spec.low), float(spec.high), float(value)
        if spec.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(v)
        return (v - lo) / (hi - lo)
    return None


def parallel_coordinates_png(records: Sequence[TrialRecord], space: SearchSpace) -> bytes:
    """A parallel-coordinates plot of parameters and score (PNG bytes)."""
    names = list(space.parameters)
    scored = [r for r in records if r.score is not None]
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * (len(names) + 1)), 4.5), dpi=100)
    axes_x = np.arange(len(names) + 1)
    if scored:
        scores = np.array([r.score for r in scored], dtype=float)
        lo, hi = float(scores.min()), float(scores.max())
        span = hi - lo if hi > lo else 1.0
        cmap = plt.get_cmap("viridis")
        for r in scored:
            ys = [_axis_position(space.parameters[n], r.params.get(n)) for n in names]
            ys.append(((r.score or 0.0) - lo) / span)
            pts = [(x, y) for x, y in zip(axes_x, ys, strict=True) if y is not None]
            if len(pts) < 2:
                continue
            xs, yv = zip(*pts, strict=True)
            if r.state == "complete":
                ax.plot(xs, yv, color=cmap(((r.score or 0.0) - lo) / span), lw=2, alpha=0.85)
            else:
                ax.plot(xs, yv, color="0.6", lw=1, ls="--", alpha=0.8)
        ax.text(len(names), -0.08, f"{lo:.4g}", ha="center", va="top", fontsize=8)
        ax.text(len(names), 1.08, f"{hi:.4g}", ha="center", va="bottom", fontsize=8)
    for x, name in enumerate(names):
        spec = space.parameters[name]
        ax.axvline(x, color="0.2", lw=0.8)
        if isinstance(spec, ChoiceParam):
            for k, label in enumerate(spec.labels):
                y = k / max(len(spec.labels) - 1, 1)
                ax.text(x + 0.03, y, _short(label), fontsize=7, va="center")
        else:
            ax.text(x + 0.03, 0.0, f"{spec.low:g}", fontsize=7, va="center")
            ax.text(x + 0.03, 1.0, f"{spec.high:g}", fontsize=7, va="center")
    ax.axvline(len(names), color="0.2", lw=0.8)
    ax.set_xticks(axes_x, [*names, "score"], fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.15)
    ax.set_xlim(-0.2, len(names) + 0.4)
    ax.set_title("Trials: parameters and score (solid: complete, dashed: pruned)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _short(label: Any) -> str:
    text = str(label)
    return text if len(text) <= 28 else text[:25] + "..."


def _cell(value: Any) -> str:
    """A trial-table cell: six significant digits for floats, empty when missing."""
    if tables.is_missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _best_sharpe(records: Sequence[TrialRecord], best: int) -> str:
    """``; Sharpe 1.23 (30-min) / 1.10 daily [-0.8, 3.0]`` of the best trial, if it has one."""
    metrics = next((r.metrics for r in records if r.number == best), {})
    return f"; {_sharpe_of(metrics)}" if "sharpe" in metrics else ""


def _sharpe_of(metrics: dict[str, float]) -> str:
    """:func:`stairways.evaluation.metrics.sharpe_text` of a trial's metrics."""
    values: dict[str, float | int | None] = dict(metrics)
    return sharpe_text(values)


def write_results_html(
    frame: pd.DataFrame,
    records: Sequence[TrialRecord],
    space: SearchSpace,
    verdict: NoiseVerdict,
    path: Path,
    summary: dict[str, Any],
) -> Path:
    """A self-contained HTML page: the seed-noise verdict and summary, the sortable trial table
    (best passing trial highlighted) and the parallel-coordinates plot."""
    png = parallel_coordinates_png(records, space)
    columns = [
        tables.Column(
            str(c),
            fmt=_cell,
            align="right" if pd.api.types.is_numeric_dtype(frame[c]) else "left",
        )
        for c in frame.columns
    ]
    table = tables.table(
        columns,
        frame,
        row_classes=lambda r: (
            "best" if verdict.best is not None and r["trial"] == verdict.best else ""
        ),
    )
    level: Level = "warn" if verdict.within_noise else ("fail" if verdict.best is None else "pass")
    best_line = (
        ()
        if verdict.best is None
        else (
            f"best trial {verdict.best}: score {_cell(summary.get('best_score'))}, "
            f"parameters {json.dumps(summary.get('best_params'))}"
            + _best_sharpe(records, verdict.best),
        )
    )
    facts = tables.table(
        (tables.Column("item"), tables.Column("value")),
        [
            {"item": k, "value": v if isinstance(v, str) else json.dumps(v)}
            for k, v in summary.items()
            if k != "seed_noise"  # the verdict says it
        ],
    )
    blocks: list[Block] = [
        Verdict(level, verdict.message, best_line),
        Heading(2, "Trials"),
        Paragraph("Click a column header to sort. The best passing trial is highlighted."),
        TableBlock(table, sortable=True),
        Heading(2, "Parameters and score"),
        Figure(png=png, alt="parallel coordinates of parameters and score"),
        Heading(2, "Study"),
        TableBlock(facts),
    ]
    return write_page(path, f"Study {summary.get('study', space.name)}", blocks)
