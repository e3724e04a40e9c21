"""``stairways readme-figures``: regenerate every demo figure the README quotes."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from stairways.cli.common import ConfigOption
from stairways.errors import InputError

_SEEDS = typer.Option([0, 1, 2], "--seed", help="Training seed (repeatable; default 0 1 2).")
_OUT = typer.Option(
    Path("outputs/readme-figures"), "--out", help="Markets, runs, figures.json and figures.md."
)
_README = typer.Option(
    None, "--readme", help="Replace this file's readme-figures block with the new figures."
)
_RECORD = typer.Option(
    None, "--record", help="Copy figures.json here (the committed record the README is checked on)."
)
_FROM = typer.Option(
    None,
    "--from-record",
    help="Render the block from this figures.json instead of measuring (no training).",
)


def readme_figures(
    config: Path | None = ConfigOption,
    seeds: list[int] = _SEEDS,
    total_timesteps: int | None = typer.Option(
        None, "--total-timesteps", min=1, help="Training budget per run (default: the config's)."
    ),
    out: Path = _OUT,
    readme: Path | None = _README,
    record: Path | None = _RECORD,
    from_record: Path | None = _FROM,
) -> None:
    """Train the demo with the planted signal on and off, judge each seed on test, write figures.

    Every figure of the README's demo block comes from here (`make readme-figures`).
    """
    from stairways import readme_figures as rf

    if from_record is not None:
        if not from_record.is_file():
            raise InputError(f"--from-record {from_record}: no such file")
        report = rf.FiguresReport.from_json(from_record.read_text(), str(from_record))
    else:
        report = rf.run_readme_figures(
            config, seeds, out, total_timesteps=total_timesteps, command=sys.argv
        )
        typer.echo(f"figures: {out / rf.FIGURES_FILE}, block: {out / rf.BLOCK_FILE}")
    block = rf.render_block(report)
    typer.echo(block)
    if record is not None and from_record is None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(report.to_json())
        typer.echo(f"recorded the figures in {record}")
    if readme is not None:
        text = readme.read_text()
        readme.write_text(rf.replace_marked_block(text, rf.BLOCK_NAME, block, str(readme)))
        typer.echo(f"updated the {rf.BLOCK_NAME} block of {readme}")
