"""``monitor.csv``: the one reader of a run's episode log (and its rewriter on resume).

The file is SB3 Monitor format: a ``#{json}`` header line, a CSV column line starting
``r,l,t``, then one line per finished episode. Training runs add :data:`MONITOR_KEYS`.

One rule for a damaged file, applied by every reader (``stairways runs list``, the trace
notebook's checkpoint ranking, the diagnostics and a resumed run):

- SB3 ends every episode line with a newline and flushes it, so a last line without its
  newline is a write cut short by a kill: it is dropped, with a warning naming the file and
  the line. It is dropped even when it looks complete, since a number cut mid-digit (a
  timestep count of ``20`` for ``2048``) still parses.
- Any other line that lacks fields or holds a non-number where a number belongs is damage,
  not an interrupted write: :class:`~stairways.errors.DataValidationError` names the file and
  the line, and nothing is guessed.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stairways.errors import DataValidationError, InputError, MissingResourceError
from stairways.training.rundir import RunDirectory, atomic_write_text

log = logging.getLogger(__name__)

__all__ = [
    "MONITOR_KEYS",
    "TIMESTEP_COLUMNS",
    "MonitorLog",
    "parse_monitor",
    "read_monitor",
    "read_monitor_file",
    "reward_at",
    "truncate_monitor",
]

# Episode summary keys of the env's final-step info written as monitor.csv columns, plus the
# run's timestep count when the episode ended (lets analysis align episodes with checkpoints).
MONITOR_KEYS: tuple[str, ...] = (
    "episode_pnl",
    "episode_fees",
    "episode_trades",
    "max_drawdown",
    "hold_rate",
    "terminated_by_drawdown",
    "early_exit",
    "timesteps",
)
# Columns that give the run's timestep count at the end of an episode, in order of preference.
TIMESTEP_COLUMNS: tuple[str, ...] = ("timesteps", "total_timesteps", "num_timesteps")
_REQUIRED = ("r", "l", "t")


@dataclass(frozen=True)
class MonitorLog:
    """Training episodes of a run in end order.

    :param episodes: columns ``r`` (reward), ``l`` (length), ``t`` (seconds since start) and
        ``end_step`` (timesteps done when the episode ended), plus any extras the run logged
    :param timesteps_source: the column ``end_step`` came from, or ``"cumsum(l)"``
    :param dropped_last_line: the 1-based number of an unfinished last line that was dropped
    """

    episodes: pd.DataFrame
    timesteps_source: str
    dropped_last_line: int | None = None

    @property
    def rewards(self) -> list[float]:
        """Episode rewards, oldest first."""
        return [float(r) for r in self.episodes["r"]]


@dataclass(frozen=True)
class _Lines:
    """A monitor file split into its parts (the unfinished last line already removed)."""

    head: str  # the JSON header line and the column line, as written
    header: dict[str, Any]
    columns: list[str]
    raw: list[str]  # the episode lines as written, newline included
    cells: list[list[str]]
    dropped_last_line: int | None


def _split(text: str, source: str) -> _Lines:
    """Header, columns and episode lines of monitor text, with the damage rule applied."""
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].startswith("#"):
        raise DataValidationError(f"{source}: line 1 must be the SB3 '#{{json}}' header")
    try:
        header = json.loads(lines[0][1:])
    except json.JSONDecodeError as err:
        raise DataValidationError(f"{source}: line 1 header is not JSON: {err}") from None
    if not isinstance(header, dict):
        raise DataValidationError(f"{source}: line 1 header must be a JSON object")
    if len(lines) < 2 or not lines[1].strip():
        raise DataValidationError(f"{source}: no column header line after the JSON header")
    columns = lines[1].strip().split(",")
    for col in _REQUIRED:
        if col not in columns:
            raise DataValidationError(f"{source}: line 2 lacks column {col!r} (has {columns})")
    body = lines[2:]
    dropped: int | None = None
    if body and not body[-1].endswith("\n"):
        dropped = len(lines)
        log.warning(
            "%s: line %d has no newline: the run was killed while writing it, so it is ignored",
            source,
            dropped,
        )
        body = body[:-1]
    raw: list[str] = []
    cells: list[list[str]] = []
    for i, line in enumerate(body, start=3):
        if not line.strip():
            continue
        problem = _problem(line, columns)
        if problem is not None:
            raise DataValidationError(
                f"{source}: line {i} {problem}; only a last line cut short by a kill is "
                "skipped, so this file is damaged"
            )
        raw.append(line)
        cells.append(line.strip().split(","))
    return _Lines(lines[0] + lines[1], header, columns, raw, cells, dropped)


def _problem(line: str, columns: list[str]) -> str | None:
    """What is wrong with an episode line, or None when it is complete."""
    row = line.strip().split(",")
    if len(row) != len(columns):
        return f"has {len(row)} fields, the header has {len(columns)}"
    for col in _REQUIRED:
        value = row[columns.index(col)]
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isnan(number):
            return f"column {col!r} is not a number: {value!r}"
    return None


def parse_monitor(text: str, source: str) -> MonitorLog:
    """Parse SB3 monitor.csv text (see the module docstring for damaged lines).

    :param text: the file content
    :param source: file name used in messages
    """
    parts = _split(text, source)
    frame = pd.DataFrame(parts.cells, columns=parts.columns)
    for col in frame.columns:
        converted = pd.to_numeric(frame[col], errors="coerce")
        if col in _REQUIRED:
            frame[col] = converted.astype(np.float64)
        elif converted.notna().sum() == frame[col].notna().sum():
            frame[col] = converted
    if (frame["l"] < 0).any():
        line = int(np.flatnonzero((frame["l"] < 0).to_numpy())[0]) + 3
        raise DataValidationError(f"{source}: line {line}: episode lengths must be >= 0")
    frame = frame.sort_values("t", kind="stable").reset_index(drop=True)
    source_col = next((c for c in TIMESTEP_COLUMNS if c in frame.columns), None)
    if source_col is not None:
        frame["end_step"] = frame[source_col].astype(np.float64)
        used = source_col
    else:
        frame["end_step"] = frame["l"].cumsum()
        used = "cumsum(l)"
    return MonitorLog(frame, used, parts.dropped_last_line)


def _read(path: Path) -> str:
    """The file's text with its line endings as written (SB3 writes \\r\\n)."""
    with path.open(newline="") as fh:
        return fh.read()


def read_monitor_file(path: Path) -> MonitorLog:
    """Read one monitor file; a missing or unreadable file names the path."""
    try:
        text = _read(path)
    except FileNotFoundError:
        raise MissingResourceError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise DataValidationError(f"{path} is not a text file; it is not an SB3 monitor") from None
    return parse_monitor(text, str(path))


def read_monitor(run_dir: Path) -> MonitorLog:
    """Read a run's monitor.csv; a missing file is a MissingResourceError naming the run."""
    path = RunDirectory(run_dir).monitor_path
    if not path.is_file():
        raise MissingResourceError(
            f"run {run_dir} has no {RunDirectory.MONITOR} ({path}); it is written by training "
            "(stairways train) and is needed to rank checkpoints"
        )
    return read_monitor_file(path)


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


def truncate_monitor(path: Path, timesteps: int) -> dict[str, Any]:
    """Drop monitor lines of episodes that ended after ``timesteps``; return the JSON header.

    A run that failed or was killed after its last checkpoint logged episodes the resumed run
    will play again; keeping them would count them twice. The kept lines are written back as
    they were (an unfinished last line is dropped by the same rule as every reader's).
    """
    text = _read(path)
    parts = _split(text, str(path))
    expected = ["r", "l", "t", *MONITOR_KEYS]
    if parts.columns != expected:
        raise InputError(
            f"{path} has columns {parts.columns}, expected {expected}; it was not written by "
            "this version of stairways train"
        )
    idx = parts.columns.index("timesteps")
    kept: list[str] = []
    for raw, row in zip(parts.raw, parts.cells, strict=True):
        try:
            ended = int(float(row[idx]))
        except ValueError:
            raise InputError(f"{path}: timesteps {row[idx]!r} is not a number") from None
        if ended <= timesteps:
            kept.append(raw)
    rewritten = parts.head + "".join(kept)
    if rewritten != text:
        log.info(
            "dropped %d monitor lines logged after the checkpoint at %d",
            len(parts.raw) - len(kept) + (parts.dropped_last_line is not None),
            timesteps,
        )
        atomic_write_text(path, rewritten)
    return parts.header
