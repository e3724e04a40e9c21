"""``stairways schedule ...``: list scheduled jobs, run the due ones, install the cron entry.

Exit codes of ``run-due``: 0 when every job that ran succeeded (its exit code is one of its
``ok_exit_codes``) or nothing was due; 1 when a job failed; 2 for a bad schedule file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from stairways.errors import ExternalServiceError, MissingResourceError
from stairways.schedule.runner import ScheduleState, cron_line, plan, run_due
from stairways.schedule.settings import load_schedule
from stairways.schedule.timing import SystemClock

app = typer.Typer(help="Scheduled jobs: reward audits, later weekly reports and stress tests.")

DEFAULT_SCHEDULE = Path("config/schedule.yaml")
_CRON_MARKER = "# stairways schedule run-due"

ScheduleOption = Annotated[Path, typer.Option("--config", "-c", help="Schedule YAML file.")]


@app.command("list")
def list_jobs(config: ScheduleOption = DEFAULT_SCHEDULE) -> None:
    """Every job with its next due time (exchange time) and its last run."""
    cfg = load_schedule(config)
    statuses = plan(cfg, ScheduleState.load(cfg.state_file), SystemClock(cfg.timezone))
    if not statuses:
        typer.echo(f"{config} defines no jobs")
        return
    for s in statuses:
        last = (
            "never"
            if s.last_due is None
            else f"{s.last_due:%Y-%m-%d %H:%M} (exit {s.last_exit_code})"
        )
        state = "DUE" if s.due else ("disabled" if not s.enabled else "waiting")
        typer.echo(f"{s.name:28s} {state:8s} next {s.next_due:%Y-%m-%d %H:%M %Z}  last {last}")
        if s.description:
            typer.echo(f"    {s.description}")


@app.command("run-due")
def run_due_cmd(
    config: ScheduleOption = DEFAULT_SCHEDULE,
    job: Annotated[
        list[str] | None, typer.Option("--job", help="Only this job (repeatable).")
    ] = None,
) -> None:
    """Run every job that is due now and record it in the state file."""
    cfg = load_schedule(config)
    runs = run_due(cfg, SystemClock(cfg.timezone), only=tuple(job or ()))
    if not runs:
        typer.echo("no job is due")
        return
    for r in runs:
        word = "ok" if r.ok else "FAILED"
        typer.echo(f"{r.name}: exit {r.exit_code} ({word}); log {r.log}")
    if not all(r.ok for r in runs):
        raise typer.Exit(1)


@app.command("install-cron")
def install_cron(
    config: ScheduleOption = DEFAULT_SCHEDULE,
    every_minutes: Annotated[
        int, typer.Option(min=1, max=59, help="How often cron checks (minutes).")
    ] = 15,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the line to this file.")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Add the line to this user's crontab (replacing ours).")
    ] = False,
) -> None:
    """Print (or write, or install) the crontab line that runs `schedule run-due`."""
    load_schedule(config)  # refuse to install a schedule that does not load
    workdir = Path.cwd()
    # cron appends to logs/schedule/cron.log; the shell cannot create the directory.
    (workdir / "logs" / "schedule").mkdir(parents=True, exist_ok=True)
    line = cron_line(config, every_minutes, workdir)
    entry = f"{line} {_CRON_MARKER}\n"
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(entry)
        typer.echo(f"wrote {output}")
    if apply:
        crontab = shutil.which("crontab")
        if crontab is None:
            raise MissingResourceError(
                "the crontab command is not installed; install cron or use the systemd timer in "
                "deploy/systemd/"
            )
        current = subprocess.run([crontab, "-l"], capture_output=True, text=True, check=False)
        kept = [
            ln
            for ln in current.stdout.splitlines()
            if current.returncode == 0 and _CRON_MARKER not in ln
        ]
        new = "\n".join([*kept, entry.rstrip("\n")]) + "\n"
        done = subprocess.run(
            [crontab, "-"], input=new, text=True, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise ExternalServiceError(f"crontab refused the entry: {done.stderr.strip()}")
        typer.echo("installed in the user's crontab")
    if output is None and not apply:
        typer.echo(entry, nl=False)
