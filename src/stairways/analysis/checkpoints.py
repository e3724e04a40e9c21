"""Rank a run's checkpoints by the training episode reward at the time each was saved.

The score of a checkpoint saved after ``N`` timesteps is the mean reward of the last
``window`` training episodes that had finished by then (the same rolling mean SB3 logs as
``rollout/ep_rew_mean``, whose buffer holds 100 episodes). Episode end times come from a
timestep column of monitor.csv when the run wrote one, otherwise from the running sum of
episode lengths (exact for one environment; with a vector env the sum undercounts the
timesteps by the unfinished episodes, so an episode may be credited to a checkpoint saved
shortly before it really ended). The source used is recorded in the log. The run's
monitor.csv and checkpoints are read by :mod:`stairways.training.monitor` and
:mod:`stairways.training.checkpoints`, the one reader of each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from stairways.errors import InputError, MissingResourceError
from stairways.training.checkpoints import list_checkpoints
from stairways.training.monitor import MonitorLog, read_monitor, reward_at

log = logging.getLogger(__name__)

RANKING_COLUMNS: tuple[str, ...] = (
    "rank",
    "steps",
    "checkpoint",
    "reward_mean",
    "episodes_in_window",
)


def rank_checkpoints(
    monitor: MonitorLog, checkpoints: Mapping[int, Path], top_k: int = 10, window: int = 100
) -> pd.DataFrame:
    """The ``top_k`` checkpoints by rolling training reward at save time, best first.

    Ties go to the later checkpoint (more training for the same score). Checkpoints saved
    before any episode finished have no score (NaN, ``episodes_in_window`` 0) and rank last.

    :param monitor: the run's training episodes
    :param checkpoints: checkpoint paths by timesteps
    :param top_k: how many to return
    :param window: episodes in the rolling mean
    :return: :data:`RANKING_COLUMNS`, ``rank`` starting at 1
    """
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}")
    rows = []
    for steps, path in checkpoints.items():
        mean, n = reward_at(monitor, steps, window)
        rows.append(
            {
                "steps": int(steps),
                "checkpoint": str(path),
                "reward_mean": mean,
                "episodes_in_window": n,
            }
        )
    if not rows:
        raise MissingResourceError("no checkpoints to rank")
    table = pd.DataFrame(rows)
    table["_scored"] = table["reward_mean"].notna()
    table = table.sort_values(
        ["_scored", "reward_mean", "steps"], ascending=[False, False, False], kind="stable"
    ).drop(columns="_scored")
    table = table.head(top_k).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    unscored = int((table["episodes_in_window"] == 0).sum())
    if unscored:
        log.warning(
            "%d of the ranked checkpoints were saved before any training episode finished; "
            "they have no score and rank last",
            unscored,
        )
    return table[list(RANKING_COLUMNS)]


def rank_run_checkpoints(run_dir: Path, top_k: int = 10, window: int = 100) -> pd.DataFrame:
    """Rank the checkpoints of ``run_dir`` (reads monitor.csv and checkpoints/)."""
    if not run_dir.is_dir():
        raise MissingResourceError(
            f"run directory {run_dir} does not exist; pass a directory written by stairways train"
        )
    monitor = read_monitor(run_dir)
    log.info(
        "ranking checkpoints of %s (episode end steps from %s)", run_dir, monitor.timesteps_source
    )
    return rank_checkpoints(monitor, list_checkpoints(run_dir), top_k=top_k, window=window)
