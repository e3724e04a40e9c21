"""``stairways demo``: the main job on the embedded default data."""

from __future__ import annotations

from pathlib import Path

import typer

from stairways import demo as pipeline
from stairways.cli.common import ConfigOption, StoreOption, build_config


def demo(
    out: Path = typer.Option(Path("outputs/demo"), "--out", help="Where the demo writes outputs."),
    config: Path | None = ConfigOption,
    store: Path | None = StoreOption,
) -> None:
    """Run the research pipeline on the embedded synthetic market and print where outputs went."""
    cfg = build_config(config, store)
    summary = pipeline.DemoSummary(out_dir=out)
    pipeline.market_data_stage(cfg, summary)
    pipeline.features_stage(cfg, summary)
    path = summary.write()
    typer.echo(summary.to_markdown())
    typer.echo(f"summary written to {path}")
