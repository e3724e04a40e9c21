"""``stairways evaluate RUN_DIR``: replay a checkpoint out of sample and judge it by the gates.

Exit codes: 0 every success gate passed; 3 at least one gate failed (the evaluation itself
worked and its outputs were written); 2 bad input; 1 any other failure (for example a missing
run, checkpoint or bar store).
"""

from __future__ import annotations

from pathlib import Path

import typer

from stairways.cli.common import StoreOption
from stairways.config import load_config
from stairways.evaluation.gates import GatesFailedError
from stairways.writable import require_writable_dir

_RUN_DIR = typer.Argument(..., help="Run directory written by `stairways train`.")
_CHECKPOINT = typer.Option(
    None,
    "--checkpoint",
    help="final, best, or a checkpoints/checkpoint_<steps>.zip file "
    "(default: evaluation.checkpoint of the run's config, normally final).",
)
_SPLIT = typer.Option(
    None,
    "--split",
    help="Split to replay (default: evaluation.split, normally test, for the final verdict; "
    "every look at test is counted in the test ledger beside the bar store).",
)
_CONFIG = typer.Option(
    None,
    "--config",
    "-c",
    help="Take the evaluation section (gates, Sharpe windows) from this YAML instead of "
    "the run's config; data, market, env and reward always come from the run.",
)


def evaluate(
    run_dir: Path = _RUN_DIR,
    checkpoint: str | None = _CHECKPOINT,
    split: str | None = _SPLIT,
    store: Path | None = StoreOption,
    config: Path | None = _CONFIG,
) -> None:
    """Replay every session of a split with the checkpoint; write traces, metrics and gates."""
    # Imported here so that other subcommands do not pay for loading torch.
    from stairways.evaluation.runner import comparison_table, evaluate_run

    evaluation = load_config(config).evaluation if config is not None else None
    if run_dir.is_dir():  # the outputs go into the run: refuse a read-only one before replaying
        require_writable_dir(
            run_dir, "RUN_DIR", alternative="evaluate a writable copy of the run directory"
        )
    report = evaluate_run(
        run_dir, checkpoint=checkpoint, split=split, store=store, evaluation=evaluation
    )
    typer.echo(
        f"run {report.run_dir} checkpoint {report.checkpoint.name} on split {report.split}: "
        f"{report.agent.sessions} sessions, {report.agent.steps} steps, replay "
        f"{report.timings['replay_stepping_seconds']:.2f} s, total "
        f"{report.timings['total_seconds']:.2f} s"
    )
    typer.echo(report.data_label)
    for count in report.test_looks:
        typer.echo(f"held-out test: {count.describe()}")
    typer.echo("")
    typer.echo(comparison_table(report))
    typer.echo("")
    typer.echo(report.verdict.table())
    typer.echo(f"outputs: {report.out_dir}")
    if not report.verdict.passed:
        raise GatesFailedError(
            f"success gates failed: {', '.join(report.verdict.failed())} "
            f"(verdict in {report.out_dir / 'gates.json'})"
        )
