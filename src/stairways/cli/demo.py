"""``stairways demo``: the main job on the embedded default data."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import typer

from stairways.cli.common import ConfigOption, StoreOption, build_config


def demo(
    out: Path = typer.Option(
        Path("outputs/demo"), "--out", help="Where the demo writes its run and summary."
    ),
    config: Path | None = ConfigOption,
    store: Path | None = StoreOption,
    total_timesteps: int | None = typer.Option(
        None, "--total-timesteps", help="Training budget (default: the config's)."
    ),
    trace_split: str = typer.Option(
        "validation",
        "--trace-split",
        help="Split the action-trace report replays (development work: not the test year).",
    ),
) -> None:
    """Run the research pipeline on the embedded synthetic market and say where outputs went.

    Synthetic market -> features and splits -> a PPO training run on train -> out-of-sample
    evaluation on test against the success gates and baselines -> action-trace report ->
    model registration and one rehearsed session through the live loop (equal to the replay).
    """
    # Imported here, not at module level: `stairways --help` and light commands stay fast.
    from stairways import demo as pipeline

    overrides: dict[str, object] = {"training.runs_dir": str(out / "runs")}
    if total_timesteps is not None:
        overrides["training.total_timesteps"] = total_timesteps
    cfg = build_config(config, store, overrides)
    summary = pipeline.DemoSummary(out_dir=out)
    pipeline.market_data_stage(cfg, summary)
    pipeline.features_stage(cfg, summary)
    result = pipeline.training_stage(cfg, summary, sys.argv)
    report = pipeline.evaluation_stage(result, summary, split=cfg.evaluation.split)
    pipeline.trace_stage(result.run_dir, summary, trace_split)
    equal = pipeline.live_stage(result, report, summary, who=getpass.getuser())
    path = summary.write()
    typer.echo(summary.to_markdown())
    typer.echo(f"summary written to {path}")
    if not equal:
        typer.echo(
            "the live loop's rehearsal did NOT equal the replay evaluation (see the live loop "
            "section above)",
            err=True,
        )
        raise typer.Exit(1)
    if not report.verdict.passed:
        typer.echo(
            "the demo ran to the end; the agent did NOT pass the out-of-sample success gates "
            "(see the evaluation section above)"
        )
