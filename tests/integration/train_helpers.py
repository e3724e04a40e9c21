"""Small configs and callbacks shared by the training integration tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from stable_baselines3.common.callbacks import BaseCallback

from stairways.config import StairwaysConfig, load_config

# Eight envs and a small network: a rollout is 8 * 64 = 512 timesteps. The drawdown cap is
# tight so that a random policy ends episodes early and runs of a few thousand steps see
# dozens of episodes. The sb3 backend, named (the default is fused): these tests check SB3's
# run (its callbacks, its rollout timing); test_train_fused.py sets training.backend: fused on
# the same config, and test_train_default_backend.py trains the defaults.
TRAINING: dict[str, Any] = {
    "backend": "sb3",
    "n_envs": 8,
    "n_steps": 64,
    "batch_size": 256,
    "n_epochs": 2,
    "total_timesteps": 2048,
    "checkpoint_every": 1024,
    "policy": {"net_arch": [32, 32]},
    "rolling_window": 20,
    "tensorboard": True,
}


def tiny_config(
    overrides: dict[str, Any], runs_dir: Path, extra: dict[str, Any] | None = None
) -> StairwaysConfig:
    """The tiny-store config with the small training section; ``extra`` adds dotted keys."""
    data = dict(overrides)
    data["name"] = "tiny"
    if "training.curriculum" not in (extra or {}):
        data["env.drawdown_cap"] = 0.01  # a curriculum sets its own caps (one place per value)
    data["training.runs_dir"] = str(runs_dir)
    for key, value in TRAINING.items():
        data[f"training.{key}"] = value
    data.update(extra or {})
    return load_config(None, data)


def write_yaml(cfg: StairwaysConfig, path: Path) -> Path:
    """Write ``cfg`` as a config file a user could pass to --config."""
    raw = cfg.model_dump(mode="json")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class AtStep(BaseCallback):
    """Call ``fn(model)`` on every step (tests record or interrupt with it)."""

    def __init__(self, fn: Callable[[Any], None], on_start: Callable[[Any], None] | None = None):
        super().__init__()
        self.fn = fn
        self.on_start = on_start

    def _on_training_start(self) -> None:
        if self.on_start is not None:
            self.on_start(self.model)

    def _on_step(self) -> bool:
        self.fn(self.model)
        return True
