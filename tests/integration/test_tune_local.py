"""`stairways tune` end to end with real training on the tiny store and two local workers."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from stairways.config import load_config
from tests.integration.tune_helpers import run_tune, tiny_tune_config


@pytest.mark.slow
def test_mini_grid_with_two_workers_then_results_and_loadable_best_config(
    tiny_store: Path, tmp_path: Path
) -> None:
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump(tiny_tune_config(tiny_store)))
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

    done = run_tune(
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
    config.write_text(yaml.safe_dump(tiny_tune_config(tiny_store)))
    space = {
        "name": "leaky",
        "objective": {"split": "test"},
        "parameters": {"training.learning_rate": {"choices": [1.0e-4]}},
    }
    space_path = tmp_path / "space.yaml"
    space_path.write_text(yaml.safe_dump(space))

    done = run_tune(
        ["--config", str(config), "--space", str(space_path), "--out", str(tmp_path / "o")]
    )

    assert done.returncode == 2
    assert "protected" in done.stderr
    assert not (tmp_path / "o" / "trials").exists()
