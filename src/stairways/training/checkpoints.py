"""Checkpoints of a run: their names, where they are, and the files saved beside them.

A checkpoint is ``checkpoints/checkpoint_<timesteps>.zip`` with ``vecnormalize_<timesteps>.pkl``
and ``reward_state_<timesteps>.json`` beside it (see
:class:`~stairways.training.rundir.RunDirectory`); the final model has ``final_*`` companions.
This is the one place that reads those names; the trainer, the evaluation diagnostics and the
trace analysis all use it. (Whether a model zip fits an env is checked in
:func:`stairways.training.model.check_model_fits`.)
"""

from __future__ import annotations

from pathlib import Path

from stairways.errors import InputError, MissingResourceError
from stairways.training.rundir import CHECKPOINT_PATTERN, CheckpointFiles, RunDirectory

__all__ = [
    "checkpoint_steps",
    "companion_files",
    "list_checkpoints",
    "owning_run",
]


def checkpoint_steps(path: Path) -> int:
    """Timesteps encoded in a checkpoint file name ``checkpoint_<steps>.zip``."""
    match = CHECKPOINT_PATTERN.match(path.name)
    if match is None:
        raise InputError(f"{path} is not named checkpoint_<steps>.zip")
    return int(match.group(1))


def list_checkpoints(run_dir: Path) -> dict[int, Path]:
    """Checkpoint zips of a run directory by timesteps; a missing folder or none is an error."""
    folder = RunDirectory(run_dir).checkpoints_dir
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


def companion_files(model_zip: Path) -> CheckpointFiles:
    """VecNormalize statistics and reward state saved beside a checkpoint or final model."""
    if model_zip.name == RunDirectory.FINAL_MODEL:
        return RunDirectory(model_zip.parent).final_files(-1)
    if CHECKPOINT_PATTERN.match(model_zip.name) is not None:
        t = checkpoint_steps(model_zip)
        return CheckpointFiles(
            timesteps=t,
            model=model_zip,
            vecnormalize=model_zip.with_name(f"vecnormalize_{t}.pkl"),
            reward_state=model_zip.with_name(f"reward_state_{t}.json"),
        )
    stem = model_zip.with_suffix("")
    return CheckpointFiles(
        timesteps=-1,
        model=model_zip,
        vecnormalize=stem.with_name(stem.name + "_vecnormalize.pkl"),
        reward_state=stem.with_name(stem.name + "_reward_state.json"),
    )


def owning_run(model_zip: Path) -> RunDirectory | None:
    """The run directory a checkpoint or final model belongs to, if any."""
    for candidate in (model_zip.parent, model_zip.parent.parent):
        if (candidate / RunDirectory.MANIFEST).is_file():
            return RunDirectory(candidate)
    return None
