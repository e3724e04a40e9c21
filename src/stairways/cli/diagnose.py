"""``stairways diagnose``: the diagnostic suite (freeze-early, reward A/B/C, leakage audit)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stairways.cli.task_backend import AddressOption, BackendOption, task_backend
from stairways.evaluation.diagnostics.decision_matrix import interpret
from stairways.evaluation.diagnostics.report import findings_from, suite_passed
from stairways.evaluation.diagnostics.runner import (
    PARTS,
    DiagnosticsFailedError,
    SuiteRequest,
    parse_parts,
    run_suite,
)


def diagnose(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Suite config (for example config/diagnostics.yaml)."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for job results and the report.")
    ] = Path("diagnostics"),
    parts: Annotated[
        str, typer.Option("--parts", help="Parts to run: any of freeze,abc,leakage.")
    ] = ",".join(PARTS),
    total_timesteps: Annotated[
        int | None,
        typer.Option(
            "--total-timesteps",
            min=1,
            help="Training length of every run (freeze points scale with it).",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse finished jobs in --out instead of recomputing.")
    ] = False,
    backend: BackendOption = "local",
    address: AddressOption = None,
) -> None:
    """Run the diagnostic suite and write report.md and report.html with every verdict.

    Exits 0 when every part that ran passed, 3 when any failed (or the audit is broken).
    """
    request = SuiteRequest(
        config_path=config,
        out_dir=out,
        parts=parse_parts(parts),
        total_timesteps=total_timesteps,
        resume=resume,
        backend=task_backend(backend, address, None),
    )
    outcome = run_suite(request, progress=lambda line: typer.echo(line, err=True))
    r = outcome.results
    for name, part in (("freeze-early", r.freeze), ("reward A/B/C", r.abc), ("leakage", r.leakage)):
        if part is not None:
            typer.echo(f"{name}: {part.judgement.verdict.upper()}: {part.judgement.message}")
    for item in interpret(findings_from(r)):
        if item.triggered:
            typer.echo(f"decision matrix: {item.condition} -> {item.interpretation}")
    typer.echo(f"report: {outcome.report_md}")
    typer.echo(f"report: {outcome.report_html}")
    if not suite_passed(r):
        raise DiagnosticsFailedError(
            f"the diagnostic suite ran, but not every verdict passed (see {outcome.report_md})"
        )
