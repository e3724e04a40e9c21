"""Listing run directories: status, steps, rolling reward and best checkpoint of each run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from stairways.errors import InputError, MissingResourceError
from stairways.training.callbacks import rolling_mean
from stairways.training.monitor import read_monitor_file
from stairways.training.rundir import RunDirectory

log = logging.getLogger(__name__)

__all__ = ["RunSummary", "list_runs", "summarise_run"]


@dataclass(frozen=True)
class RunSummary:
    """One line of ``stairways runs list``.

    :param problem: why the directory could not be read (then the other fields are empty)
    """

    name: str
    path: Path
    status: str
    timesteps: int | None
    total_timesteps: int | None
    episodes: int
    rolling_reward: float | None
    best_checkpoint: str | None
    start_time: str | None
    stop_reason: str | None = None
    problem: str | None = None


def summarise_run(path: Path, window: int) -> RunSummary:
    """Summary of one run directory; unreadable manifests are reported, not skipped."""
    run = RunDirectory(path)
    try:
        manifest = run.read_manifest()
    except (InputError, MissingResourceError) as err:
        return RunSummary(
            name=path.name,
            path=path,
            status="unreadable",
            timesteps=None,
            total_timesteps=None,
            episodes=0,
            rolling_reward=None,
            best_checkpoint=None,
            start_time=None,
            problem=str(err),
        )
    rolling = manifest.rolling_reward
    episodes = manifest.episodes
    problem = None
    if run.monitor_path.is_file():
        # The monitor is flushed per episode, the manifest per checkpoint: prefer the monitor.
        # A damaged file is this run's problem line; the other runs are still listed.
        try:
            rewards = read_monitor_file(run.monitor_path).rewards
        except InputError as err:
            problem = str(err)
        else:
            episodes = len(rewards)
            rolling = rolling_mean(rewards, window)
    return RunSummary(
        name=manifest.run_name,
        path=path,
        status=manifest.status,
        timesteps=manifest.timesteps,
        total_timesteps=manifest.total_timesteps,
        episodes=episodes,
        rolling_reward=rolling,
        best_checkpoint=manifest.best_checkpoint,
        start_time=manifest.start_time,
        stop_reason=manifest.stop_reason or manifest.error,
        problem=problem,
    )


def list_runs(runs_dir: Path, window: int = 100) -> list[RunSummary]:
    """Summaries of the run directories directly under ``runs_dir``, oldest start first.

    :param runs_dir: folder holding run directories
    :param window: episodes in the rolling reward
    """
    if not runs_dir.is_dir():
        raise MissingResourceError(
            f"runs folder {runs_dir} does not exist; start a run with `stairways train` or "
            "pass --runs-dir"
        )
    out = [
        summarise_run(p, window)
        for p in sorted(runs_dir.iterdir())
        if p.is_dir() and (p / RunDirectory.MANIFEST).exists()
    ]
    return sorted(out, key=lambda s: (s.start_time or "", s.name))
