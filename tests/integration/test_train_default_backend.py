"""A run with no backend named trains with fused at its defaults; `backend: sb3` alone, SB3's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from stable_baselines3 import PPO

from stairways.config import load_config
from stairways.training.settings import BACKEND_SETTINGS, SB3_SETTINGS, THROUGHPUT_SETTINGS
from stairways.training.trainer import train


def _config(tiny_store: Path, runs: Path, extra: dict[str, Any]) -> Any:
    return load_config(
        None,
        {
            "name": "defaults",
            "data.store_path": str(tiny_store),
            "data.splits": {
                "train": {"start": "2022-01-05", "end": "2022-01-31"},
                "validation": {"start": "2022-02-01", "end": "2022-02-14"},
                "test": {"start": "2022-02-15", "end": "2022-02-28"},
            },
            "data.protected_splits": ["test"],
            "env.drawdown_cap": 0.01,
            "training.total_timesteps": 2048,
            "training.checkpoint_every": 1024,
            "training.policy.net_arch": [32, 32],
            "training.tensorboard": False,
            "training.runs_dir": str(runs),
            **extra,
        },
    )


@pytest.mark.parametrize(
    ("extra", "backend", "expected"),
    [({}, "fused", THROUGHPUT_SETTINGS), ({"training.backend": "sb3"}, "sb3", SB3_SETTINGS)],
    ids=["default", "sb3"],
)
def test_the_run_trains_and_records_its_backends_settings(
    tiny_store: Path,
    tmp_path: Path,
    extra: dict[str, Any],
    backend: str,
    expected: Any,
) -> None:
    result = train(_config(tiny_store, tmp_path, extra))
    assert result.status == "completed"
    assert result.timesteps == 2048
    recorded = yaml.safe_load((result.run_dir / "config.yaml").read_text())["training"]
    assert recorded["backend"] == backend
    assert {k: recorded[k] for k in BACKEND_SETTINGS} == dict(expected)
    # the model trained with them, and reloading the record gives the same run config
    model = PPO.load(result.run_dir / "final_model.zip", device="cpu")
    assert (model.n_envs, model.n_steps, model.batch_size, model.n_epochs) == (
        expected["n_envs"],
        expected["n_steps"],
        expected["batch_size"],
        expected["n_epochs"],
    )
    assert model.learning_rate.value_at(0) == pytest.approx(expected["learning_rate"])
    reloaded = load_config(result.run_dir / "config.yaml")
    assert reloaded.training.backend == backend
    assert reloaded.training.n_envs == expected["n_envs"]
