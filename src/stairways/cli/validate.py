"""``stairways validate temporal``: walk-forward validation over the configured temporal pairs.

Exit codes: 0 every pair passed every success gate; 3 at least one did not (outputs were
written); 2 bad input; 1 any other failure.
"""

from __future__ import annotations

from pathlib import Path

import typer

from stairways.cli.common import StoreOption
from stairways.config import load_config
from stairways.evaluation.gates import GatesFailedError

app = typer.Typer(help="Out-of-sample validation.", no_args_is_help=True)


_CONFIG = typer.Option(None, "--config", "-c", help="YAML config to train.")
_PAIRS = typer.Option(
    [], "--pair", help="Temporal pair to run (repeatable; default: all, the primary first)."
)
_STEPS = typer.Option(
    None, "--total-timesteps", min=1, help="Timesteps per pair (training.total_timesteps)."
)
_OUT = typer.Option(
    None, "--out", help="Output directory (default runs/temporal_<config>_<UTC time>)."
)
_WORKERS = typer.Option(None, "--workers", min=1, help="Cap on worker processes.")


@app.command("temporal")
def temporal(
    config: Path | None = _CONFIG,
    pairs: list[str] = _PAIRS,
    total_timesteps: int | None = _STEPS,
    out: Path | None = _OUT,
    workers: int | None = _WORKERS,
    store: Path | None = StoreOption,
) -> None:
    """Train on each pair's training period, evaluate on its test period, report the gates."""
    from stairways.evaluation.temporal import run_temporal_validation, summary_table

    overrides = {"data.store_path": str(store)} if store is not None else {}
    cfg = load_config(config, overrides)
    report = run_temporal_validation(
        cfg, pairs=pairs or None, total_timesteps=total_timesteps, out_dir=out, workers=workers
    )
    typer.echo(summary_table(report))
    typer.echo(f"summary: {report.csv_path}")
    if not report.passed:
        failed = [p.name for p in report.pairs if not p.gates_passed]
        raise GatesFailedError(f"success gates failed for pairs {failed} (see {report.json_path})")
