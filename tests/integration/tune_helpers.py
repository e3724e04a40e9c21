"""The base config of the tuning integration tests and ``stairways tune`` as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from stairways.bench.tune_bench import mini_grid_overrides
from stairways.configbase import set_by_path
from tests.paths import REPO_ROOT


def tiny_tune_config(store: Path, **training: Any) -> dict[str, Any]:
    """The benchmark's trial config on ``store`` as config-file YAML data, named tiny_tune.

    :param store: the tiny bar store (2022-01-03..2022-02-28)
    :param training: training keys replacing the benchmark's small PPO settings
    """
    overrides = {
        "name": "tiny_tune",
        **mini_grid_overrides(store),
        **{f"training.{key}": value for key, value in training.items()},
    }
    config: dict[str, Any] = {}
    for dotted, value in overrides.items():
        config = set_by_path(config, dotted, value)
    return config


def run_tune(args: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``stairways tune ARGS`` in a separate process from the project root."""
    cmd = [str(Path(sys.executable).with_name("stairways")), "tune", *args]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
