"""Assembling the weekly report: the journal's figures, the ladder, the last stress run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stairways.clock import Clock
from stairways.live.ladder import Ladder
from stairways.live.ladder_config import load_ladder_config
from stairways.reports.weekly import IsoWeek, LadderLine, StressLine, StressSummary, WeekReport
from stairways.stress.results import read_latest
from stairways.weekly.collect import collect_week
from stairways.weekly.settings import WeeklyReportConfig

__all__ = ["build_week", "ladder_lines", "stress_summary"]


def ladder_lines(source: Any, ladder_config: Path | None, clock: Clock) -> list[LadderLine]:
    """Every registered model's stage and gate progress, as :meth:`Ladder.status` reports it."""
    ladder = Ladder(source, load_ladder_config(ladder_config), clock)
    out: list[LadderLine] = []
    for st in ladder.status():
        out.append(
            LadderLine(
                model_id=st.model.model_id,
                stage=st.stage,
                next_stage=st.next_stage or "",
                gates_passed=sum(1 for c in st.checks if c.passed),
                gates_total=len(st.checks),
                failing=tuple(c.name for c in st.checks if not c.passed),
                approvals_missing=st.missing if st.next_stage else 0,
            )
        )
    return out


def stress_summary(stress_dir: Path) -> StressSummary | None:
    """The last stress run under ``stress_dir`` (None when it never ran there)."""
    suite = read_latest(stress_dir)
    if suite is None:
        return None
    return StressSummary(
        started=suite.started,
        short=suite.short,
        passed=suite.passed,
        scenarios=tuple(
            StressLine(
                name=s.name,
                passed=s.passed,
                detail=s.error or "; ".join(g.line() for g in s.gates),
            )
            for s in suite.scenarios
        ),
    )


def build_week(source: Any, week: IsoWeek, cfg: WeeklyReportConfig, clock: Clock) -> WeekReport:
    """The whole report of ``week``: journal figures, ladder status and the last stress run.

    :param source: the journal (a reader)
    :param week: the ISO week
    :param cfg: the report's settings (evaluation split, ladder config, stress folder)
    :param clock: exchange time (the ladder checks approvals' expiry against it)
    """
    report = collect_week(source, week, eval_split=cfg.eval_split)
    report.ladder = ladder_lines(source, cfg.ladder_config, clock)
    if not report.ladder:
        report.ladder_note = "No model is registered (stairways models register)."
    report.stress = stress_summary(cfg.stress_dir)
    if report.stress is None:
        report.stress_note = (
            f"No stress results in {cfg.stress_dir} (stairways stress run --out {cfg.stress_dir})."
        )
    return report
