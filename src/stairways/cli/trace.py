"""``stairways trace RUN_DIR``: the action-trace report of a run's best checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stairways.analysis.trace_report import execute_trace_notebook


def trace(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by `stairways train`.")],
    split: Annotated[
        str,
        typer.Option(
            "--split", help="Split the checkpoints are replayed on (a development split)."
        ),
    ] = "validation",
    top_k: Annotated[
        int, typer.Option("--top-k", min=1, help="Checkpoints analysed, best first.")
    ] = 10,
    out: Annotated[
        Path | None,
        typer.Option(help="HTML report (default RUN_DIR/analysis/action_traces_<split>.html)."),
    ] = None,
    flip_window: Annotated[
        int,
        typer.Option(
            "--flip-window", min=1, help="Bars within which a sign reversal counts as a flip."
        ),
    ] = 5,
    flip_share: Annotated[
        float,
        typer.Option(
            "--flip-share",
            help="Flag episodes that reverse positions more often than this share of a policy "
            "picking positions at random (0.25: 10 flips per 60 bars with the default window).",
        ),
    ] = 0.25,
    store: Annotated[
        Path | None,
        typer.Option(help="Bar store for replays (default: the one in the run's config)."),
    ] = None,
) -> None:
    """Replay the run's top checkpoints and write the action-trace report (HTML)."""
    report = execute_trace_notebook(
        run_dir,
        split=split,
        top_k=top_k,
        flip_window=flip_window,
        flip_share=flip_share,
        out_html=out,
        store=store,
    )
    typer.echo(f"report: {report.html}")
    typer.echo(f"executed notebook (with code and log output): {report.notebook}")
    typer.echo(f"tables: {report.tables}")
