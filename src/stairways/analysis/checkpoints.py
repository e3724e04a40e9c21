"""Rank a run's checkpoints by the training episode reward at the time each was saved.

The score of a checkpoint saved after ``N`` timesteps is the mean reward of the last
``window`` training episodes that had finished by then (the same rolling mean SB3 logs as
``rollout/ep_rew_mean``, whose buffer holds 100 episodes). Episode end times come from a
timestep column of monitor.csv when the run wrote one, otherwise from the running sum of
episode lengths (exact for one environment; with a vector env the sum undercounts the
timesteps by the unfinished episodes, so an episode may be credited to a checkpoint saved
shortly before it really ended). The source used is recorded in the log.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stairways.errors import DataValidationError, InputError, MissingResourceError

log = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint_(\d+)\.zip$")
TIMESTEP_COLUMNS: tuple[str, ...] = ("timesteps", "total_timesteps", "num_timesteps")
RANKING_COLUMNS: tuple[str, ...] = (
    "rank",
    "steps",
    "checkpoint",
    "reward_mean",
    "episodes_in_window",
)


@dataclass(frozen=True)
class MonitorLog:
    """Training episodes of a run in end order.

    :param episodes: columns ``r`` (reward), ``l`` (length), ``t`` (seconds since start) and
        ``end_step`` (timesteps done when the episode ended), plus any extras the run logged
    :param timesteps_source: the column ``end_step`` came from, or ``"cumsum(l)"``
    """

    episodes: pd.DataFrame
    timesteps_source: str


def checkpoint_steps(path: Path) -> int:
    """Timesteps encoded in a checkpoint file name ``checkpoint_<steps>.zip``."""
    match = CHECKPOINT_PATTERN.match(path.name)
    if match is None:
        raise InputError(f"{path} is not named checkpoint_<steps>.zip")
    return int(match.group(1))


def list_checkpoints(run_dir: Path) -> dict[int, Path]:
    """Checkpoints of a run directory by timesteps; a missing folder or none saved is an error."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        raise MissingResourceError(
            f"run {run_dir} has no checkpoints folder ({folder}); train it with checkpoints "
            "enabled (stairways train) before ranking or tracing it"
        )
    found = {
        checkpoint_steps(p): p
        for p in sorted(folder.iterdir())
        if CHECKPOINT_PATTERN.match(p.name) is not None
    }
    if not found:
        raise MissingResourceError(
            f"run {run_dir} has no checkpoint_<steps>.zip files in {folder}; "
            "train longer than the checkpoint interval or lower it"
        )
    return dict(sorted(found.items()))


def parse_monitor(text: str, source: str) -> MonitorLog:
    """Parse SB3 monitor.csv text (a ``#{json}`` header line, then ``r,l,t,...`` rows).

    :param text: the file content
    :param source: file name used in error messages
    """
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#"):
        raise DataValidationError(f"{source}: line 1 must be the SB3 '#{{json}}' header")
    try:
        json.loads(lines[0][1:])
    except json.JSONDecodeError as err:
        raise DataValidationError(f"{source}: line 1 header is not JSON: {err}") from None
    if len(lines) < 2:
        raise DataValidationError(f"{source}: no column header line after the JSON header")
    header = lines[1].split(",")
    for col in ("r", "l", "t"):
        if col not in header:
            raise DataValidationError(f"{source}: line 2 lacks column {col!r} (has {header})")
    rows = [line.split(",") for line in lines[2:] if line.strip()]
    for i, row in enumerate(rows, start=3):
        if len(row) != len(header):
            raise DataValidationError(
                f"{source}: line {i} has {len(row)} fields, the header has {len(header)}"
            )
    frame = pd.DataFrame(rows, columns=header)
    for col in frame.columns:
        converted = pd.to_numeric(frame[col], errors="coerce")
        if col in ("r", "l", "t"):
            bad = converted.isna() & frame[col].notna()
            if bad.any():
                line = int(np.flatnonzero(bad.to_numpy())[0]) + 3
                given = frame[col][bad].iloc[0]
                raise DataValidationError(
                    f"{source}: line {line} column {col!r} is not a number: {given!r}"
                )
            frame[col] = converted.astype(np.float64)
        elif converted.notna().sum() == frame[col].notna().sum():
            frame[col] = converted
    if (frame["l"] < 0).any():
        raise DataValidationError(f"{source}: episode lengths must be >= 0")
    frame = frame.sort_values("t", kind="stable").reset_index(drop=True)
    source_col = next((c for c in TIMESTEP_COLUMNS if c in frame.columns), None)
    if source_col is not None:
        frame["end_step"] = frame[source_col].astype(np.float64)
        used = source_col
    else:
        frame["end_step"] = frame["l"].cumsum()
        used = "cumsum(l)"
    return MonitorLog(episodes=frame, timesteps_source=used)


def read_monitor(run_dir: Path) -> MonitorLog:
    """Read a run's monitor.csv; a missing file is a MissingResourceError naming the run."""
    path = run_dir / "monitor.csv"
    if not path.is_file():
        raise MissingResourceError(
            f"run {run_dir} has no monitor.csv ({path}); it is written by training "
            "(stairways train) and is needed to rank checkpoints"
        )
    return parse_monitor(path.read_text(), str(path))


def reward_at(monitor: MonitorLog, steps: int, window: int) -> tuple[float, int]:
    """Rolling mean reward of the last ``window`` episodes finished by ``steps`` timesteps.

    :return: (mean, episodes used); NaN and 0 when no episode had finished
    """
    if window < 1:
        raise InputError(f"ranking window must be at least 1 episode, got {window}")
    done = monitor.episodes[monitor.episodes["end_step"] <= steps]
    recent = done["r"].iloc[-window:]
    if recent.empty:
        return math.nan, 0
    return float(recent.mean()), len(recent)


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
