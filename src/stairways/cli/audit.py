"""``stairways audit rewards``: does the reward agree with the money?

Exit codes: 0 when no audited trace has a critical flag (warnings allowed); 3 when at least one
has a critical flag (reward hacking, dominant component, ... see
:mod:`stairways.analysis.reward_audit`); 2 for bad input; 1 when a trace is missing (run
``stairways evaluate`` first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stairways.analysis.reward_audit import (
    AUDIT_CRITICAL_EXIT_CODE,
    RewardAuditConfig,
    audit_path,
    latest_run_traces,
)
from stairways.analysis.reward_audit_report import summary_table, write_audit_report
from stairways.configbase import load_yaml_with_extends, validate_model
from stairways.errors import InputError

app = typer.Typer(help="Audits of trained agents.", no_args_is_help=True)


@app.callback()
def _audit() -> None:
    """Audits of trained agents (reward audits now; more audits join this group)."""


@app.command("rewards")
def rewards(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Run directories, evaluation directories or traces.parquet files."),
    ] = None,
    latest: Annotated[
        int | None,
        typer.Option("--latest", min=1, max=1000, help="Audit the N most recently evaluated runs."),
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where --latest looks.")] = Path(
        "runs"
    ),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Report directory (default: reward_audit/ next to each trace)."),
    ] = None,
    thresholds: Annotated[
        Path | None,
        typer.Option("--thresholds", help="YAML with warning/critical thresholds."),
    ] = None,
    drawdown_cap: Annotated[
        float | None,
        typer.Option("--drawdown-cap", min=0.0, max=1.0, help="Override the run's drawdown cap."),
    ] = None,
) -> None:
    """Per-episode reward components, their shares and correlation with P&L, and flags."""
    cfg = (
        validate_model(RewardAuditConfig, load_yaml_with_extends(thresholds), str(thresholds))
        if thresholds is not None
        else RewardAuditConfig()
    )
    targets = list(paths or [])
    if latest is not None:
        targets.extend(latest_run_traces(runs_dir, latest))
    if not targets:
        raise InputError("name run directories or traces to audit, or use --latest N")
    worst = 0
    audits = []
    for k, target in enumerate(targets):
        audit, trace_file = audit_path(target, cfg, drawdown_cap)
        if out is None:
            report_dir = trace_file.parent / "reward_audit"
        else:
            report_dir = out if len(targets) == 1 else out / f"{k:02d}_{trace_file.parent.name}"
        files = write_audit_report(audit, report_dir)
        audits.append(audit)
        worst = max(worst, audit.exit_code)
        typer.echo(f"report: {files['markdown']} and {files['html']}")
    typer.echo(summary_table(audits))
    if worst == AUDIT_CRITICAL_EXIT_CODE:
        typer.echo("critical flags found (exit code 3)")
        raise typer.Exit(AUDIT_CRITICAL_EXIT_CODE)
