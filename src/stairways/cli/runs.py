"""``stairways runs ...``: inspect training run directories."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from stairways.training.runs import RunSummary

app = typer.Typer(help="Inspect training run directories.", no_args_is_help=True)


def _fmt_reward(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _fmt_steps(s: RunSummary) -> str:
    if s.timesteps is None:
        return "-"
    return f"{s.timesteps}/{s.total_timesteps}"


_RUNS_DIR = typer.Option(Path("runs"), "--runs-dir", "--runs_dir", help="Runs folder.")
_WINDOW = typer.Option(100, "--window", min=1, help="Episodes in the rolling reward.")


@app.command("list")
def list_command(runs_dir: Path = _RUNS_DIR, window: int = _WINDOW) -> None:
    """Show runs with status, steps, rolling episode reward and best checkpoint."""
    # Imported here, not at module level: `stairways --help` and light commands stay fast.
    from stairways.training.runs import list_runs

    runs = list_runs(runs_dir, window=window)
    if not runs:
        typer.echo(f"no runs in {runs_dir}")
        return
    header = ("run", "status", "steps", "episodes", f"reward(last {window})", "best checkpoint")
    rows = [
        (
            s.name,
            s.status,
            _fmt_steps(s),
            str(s.episodes),
            _fmt_reward(s.rolling_reward),
            s.best_checkpoint or "-",
        )
        for s in runs
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for s, row in zip(runs, rows, strict=True):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if s.problem:
            typer.echo(f"    problem: {s.problem}")
        elif s.stop_reason and s.status in ("stopped", "failed", "interrupted"):
            typer.echo(f"    reason: {s.stop_reason}")
