"""`stairways tune` end to end with real training on the tiny store and two local workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import yaml

from stairways.config import PROJECT_ROOT, load_config


def _base(tiny_store: Path) -> dict[str, Any]:
    return {
        "name": "tiny_tune",
        "data": {
            "store_path": str(tiny_store),
            "splits": {
                "train": {"start": "2022-01-05", "end": "2022-01-31"},
                "validation": {"start": "2022-02-01", "end": "2022-02-14"},
                "test": {"start": "2022-02-15", "end": "2022-02-28"},
            },
            "protected_splits": ["test"],
        },
        "env": {"drawdown_cap": 0.01},
        "training": {
            "n_envs": 8,
            "n_steps": 64,
            "batch_size": 256,
            "n_epochs": 2,
            "policy": {"net_arch": [32, 32]},
            "rolling_window": 20,
            "tensorboard": False,
        },
    }


def _tune(args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("stairways")), "tune", *args]
    return subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_mini_grid_with_two_workers_then_results_and_loadable_best_config(
    tiny_store: Path, tmp_path: Path
) -> None:
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump(_base(tiny_store)))
    space = {
        "name": "tiny_mini_grid",
        "sampler": "grid",
        "budget": {"total_timesteps": 1024, "eval_every": 512},
        "pruner": {"kind": "none"},
        # Permissive criteria: a tiny budget cannot meet the real ones, and this test is about
        # the mechanics of choosing and writing the best trial.
        "criteria": {
            "min_mean_episode_length": 0,
            "min_episode_reward_mean": -1.0e6,
            "max_drawdown_termination_rate": 1.0,
        },
        "parameters": {
            "training.learning_rate": {"choices": [3.0e-4, 5.0e-5]},
            "training.target_kl": {"choices": [0.015, 0.0075]},
        },
    }
    space_path = tmp_path / "space.yaml"
    space_path.write_text(yaml.safe_dump(space))
    out = tmp_path / "out"

    done = _tune(
        ["--config", str(config), "--space", str(space_path), "--workers", "2", "--out", str(out)]
    )

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] == 4 and summary["failed"] == 0
    assert len(summary["workers"]) == 2
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4
    assert set(table["training.learning_rate"]) == {3.0e-4, 5.0e-5}
    assert table["mean_episode_length"].between(1, 390).all()
    assert table["drawdown_termination_rate"].between(0, 1).all()
    html = (out / "results.html").read_text()
    assert '<table class="sortable"' in html and "data:image/png;base64," in html
    assert "seed noise unmeasured" in html

    best = load_config(out / "best_config.yaml")
    best_row = table.loc[table["trial"] == summary["best_trial"]].iloc[0]
    assert best_row["score"] == table["score"].max()
    assert best.training.learning_rate == best_row["training.learning_rate"]
    assert best.training.target_kl == best_row["training.target_kl"]
    # The tuning budget is not baked into the best config: it keeps the base training budget.
    assert best.training.total_timesteps == load_config(config).training.total_timesteps

    # Intermediate validation scores were reported during training (what pruning reads).
    study = optuna.load_study(study_name="tiny_mini_grid", storage=f"sqlite:///{out / 'study.db'}")
    for trial in study.trials:
        assert sorted(trial.intermediate_values) == [512, 1024]
        run = Path(trial.user_attrs["run_dirs"][0])
        assert run.parent == out / "trials" / f"trial_{trial.number:04d}"
        assert json.loads((run / "manifest.json").read_text())["status"] == "completed"


def test_tuning_space_scoring_on_test_split_then_exit_2_before_training(
    tiny_store: Path, tmp_path: Path
) -> None:
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump(_base(tiny_store)))
    space = {
        "name": "leaky",
        "objective": {"split": "test"},
        "parameters": {"training.learning_rate": {"choices": [1.0e-4]}},
    }
    space_path = tmp_path / "space.yaml"
    space_path.write_text(yaml.safe_dump(space))

    done = _tune(
        ["--config", str(config), "--space", str(space_path), "--out", str(tmp_path / "o")]
    )

    assert done.returncode == 2
    assert "protected" in done.stderr
    assert not (tmp_path / "o" / "trials").exists()
