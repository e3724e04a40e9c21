"""Helpers of the diagnostics and action-trace integration tests: the tiny suite config."""

from __future__ import annotations

from pathlib import Path

from stairways.configbase import CONFIG_DIR


def tiny_suite_config(folder: Path, store: Path, workers: int = 2) -> Path:
    """A suite config on the tiny synthetic store: small envs, short runs, 9 eval sessions.

    January 2022 trains; the split named validation is taken from February 2022 so the
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
    validation: {{start: "2022-02-01", end: "2022-02-11"}}
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
  leakage:
    min_total_timesteps: 3000   # the tiny runs are the minimum here, so a verdict is given
"""
    )
    return path
