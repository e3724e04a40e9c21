"""Helpers of the diagnostics and action-trace integration tests: tiny suite config, CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stairways.cli.main import run
from stairways.configbase import CONFIG_DIR


def stairways(monkeypatch: pytest.MonkeyPatch, *args: str | Path) -> int:
    """Run the console entry point in-process; the exit code it would give the shell."""
    monkeypatch.setattr(sys, "argv", ["stairways", *map(str, args)])
    try:
        run()
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def tiny_suite_config(folder: Path, store: Path, workers: int = 2) -> Path:
    """A suite config on the tiny synthetic store: small envs, short runs, 9 eval sessions.

    January 2022 trains; the split named eval_feb2024 is taken from February 2022 so the
    suite's default split name is exercised on the data the store holds.
    """
    path = folder / "tiny_diagnostics.yaml"
    path.write_text(
        f"""extends: {CONFIG_DIR / "diagnostics.yaml"}
name: tiny
data:
  store_path: {store}
  splits:
    train: {{start: "2022-01-05", end: "2022-01-31"}}
    eval_feb2024: {{start: "2022-02-01", end: "2022-02-11"}}
    test: {{start: "2022-02-14", end: "2022-02-28"}}
  protected_splits: [test]
training:
  n_envs: 4
  n_steps: 128
  batch_size: 128
  n_epochs: 2
  tensorboard: false
diagnostics:
  workers: {workers}
  total_timesteps: 3000
  freeze:
    checkpoints: [1000, 2000, 3000]
    in_sample_max_sessions: 5
"""
    )
    return path
