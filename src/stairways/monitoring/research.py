"""The research view: the training runs, their evaluations' gate verdicts and the seed
comparisons, read from the run directories (``manifest``, ``eval/<split>/<checkpoint>/
gates.json`` and ``metrics.json``, ``seed_comparison_stats.csv``) and built with the project's
one table model and page builder."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from stairways.errors import InputError, MissingResourceError
from stairways.reports import tables as t
from stairways.reports.html import Block, Heading, Paragraph, TableBlock, Verdict, render_page
from stairways.training.runs import list_runs

__all__ = ["evaluations", "research_blocks", "research_page", "seed_comparisons"]

log = logging.getLogger(__name__)

_SEED_FILE = "seed_comparison_stats.csv"
_METRICS = ("mean_daily_pnl", "daily_sharpe", "max_drawdown", "win_rate")


def evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """One row per evaluation of a run (split, checkpoint, gates passed, headline metrics)."""
    rows: list[dict[str, Any]] = []
    for gates_path in sorted(run_dir.glob("eval/*/*/gates.json")):
        folder = gates_path.parent
        row: dict[str, Any] = {
            "run": run_dir.name,
            "split": folder.parent.name,
            "checkpoint": folder.name,
            "verdict": "",
            "failed": "",
            **{m: None for m in _METRICS},
        }
        try:
            gates = json.loads(gates_path.read_text(encoding="utf-8"))
            row["verdict"] = "PASS" if gates.get("passed") else "FAIL"
            row["failed"] = ", ".join(
                str(g.get("metric")) for g in gates.get("gates", []) if not g.get("passed")
            )
            metrics_path = folder / "metrics.json"
            if metrics_path.is_file():
                agent = json.loads(metrics_path.read_text(encoding="utf-8")).get("agent", {})
                for m in _METRICS:
                    value = agent.get(m)
                    row[m] = float(value) if isinstance(value, int | float) else None
        except (OSError, json.JSONDecodeError, AttributeError) as err:
            row["verdict"] = "unreadable"
            row["failed"] = f"{gates_path}: {err}"
        rows.append(row)
    return rows


def seed_comparisons(runs_dir: Path) -> list[tuple[Path, list[dict[str, str]]]]:
    """Each seed-comparison CSV under ``runs_dir`` (up to three folders deep) and its rows."""
    found = []
    for depth in ("", "*/", "*/*/", "*/*/*/"):
        found.extend(sorted(runs_dir.glob(f"{depth}{_SEED_FILE}")))
    out = []
    for path in found:
        with path.open(newline="", encoding="utf-8") as fh:
            out.append((path, list(csv.DictReader(fh))))
    return out


def research_blocks(runs_dir: Path) -> list[Block]:
    """The research page's blocks: runs, evaluations with their gates, seed comparisons."""
    try:
        runs = list_runs(runs_dir)
    except (MissingResourceError, InputError) as err:
        return [Verdict("warn", f"No runs to show: {err}")]
    if not runs:
        return [Verdict("info", f"No training runs in {runs_dir} yet.")]
    evals = [row for r in runs for row in evaluations(r.path)]
    passed = sum(1 for e in evals if e["verdict"] == "PASS")
    blocks: list[Block] = [
        Verdict(
            "pass" if passed else "info",
            f"{len(runs)} runs in {runs_dir}; {len(evals)} evaluations, {passed} passed their "
            "gates.",
        ),
        Heading(2, "Runs"),
        TableBlock(
            t.table(
                [
                    t.Column("name", "run"),
                    t.Column("status"),
                    t.Column("timesteps", "steps", t.integer),
                    t.Column("episodes", "episodes", t.integer),
                    t.Column("rolling_reward", "rolling reward", t.number(3)),
                    t.Column("best_checkpoint", "best checkpoint"),
                    t.Column("start_time", "started"),
                ],
                [r.__dict__ for r in runs],
            ),
            sortable=True,
        ),
        Heading(2, "Evaluations and gates"),
    ]
    if evals:
        blocks.append(
            TableBlock(
                t.table(
                    [
                        t.Column("run"),
                        t.Column("split"),
                        t.Column("checkpoint"),
                        t.Column("verdict"),
                        t.Column("failed", "failed gates"),
                        t.Column("mean_daily_pnl", "mean daily P&L", t.dollars),
                        t.Column("daily_sharpe", "daily Sharpe", t.number(2)),
                        t.Column("max_drawdown", "max drawdown", t.percent(2)),
                        t.Column("win_rate", "win rate", t.percent(1)),
                    ],
                    evals,
                ),
                sortable=True,
                status_classes={"PASS": "pass", "FAIL": "fail", "unreadable": "warn"},
            )
        )
    else:
        blocks.append(Paragraph("No evaluation yet: run `stairways evaluate RUN_DIR`.", muted=True))
    blocks.append(Heading(2, "Seed comparisons"))
    seeds = seed_comparisons(runs_dir)
    if not seeds:
        blocks.append(
            Paragraph("No seed comparison yet: run `stairways seeds` to write one.", muted=True)
        )
    for path, rows in seeds:
        if not rows:
            continue
        columns = [t.Column(k) for k in rows[0] if k != "run_dir"]
        blocks.append(TableBlock(t.table(columns, rows), caption=str(path)))
    return blocks


def research_page(runs_dir: Path) -> str:
    """The research view as one HTML page."""
    return render_page("Stairways research", research_blocks(runs_dir))
