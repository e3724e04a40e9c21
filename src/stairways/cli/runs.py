"""``stairways runs ...``: inspect training run directories."""

from __future__ import annotations

from pathlib import Path

import typer

from stairways.reports import tables as t

app = typer.Typer(help="Inspect training run directories.", no_args_is_help=True)


def _steps(done: int | None, total: int | None) -> str:
    if done is None:
        return "n/a"
    return f"{done:,}" if total is None else f"{done:,}/{total:,}"


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
    columns = (
        t.Column("name", "run"),
        t.Column("status"),
        t.Column("steps", align="right"),
        t.Column("episodes", fmt=t.integer),
        t.Column("reward", f"reward (last {window})", t.number(4)),
        t.Column("best", "best checkpoint"),
    )
    rows = [
        {
            "name": s.name,
            "status": s.status,
            "steps": _steps(s.timesteps, s.total_timesteps),
            "episodes": s.episodes,
            "reward": s.rolling_reward,
            "best": s.best_checkpoint or "n/a",
        }
        for s in runs
    ]
    typer.echo(t.render_text(t.table(columns, rows)))
    notes = [
        f"  {s.name}: problem: {s.problem}"
        if s.problem
        else f"  {s.name}: {s.status}: {s.stop_reason}"
        for s in runs
        if s.problem or (s.stop_reason and s.status in ("stopped", "failed", "interrupted"))
    ]
    if notes:
        typer.echo("notes:")
        typer.echo("\n".join(notes))
