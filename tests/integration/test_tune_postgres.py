"""``stairways tune --storage postgresql://...`` with real (tiny) training on a real server.

The server is the test session's throwaway PostgreSQL (``tests/pg.py``); the URL is given as a
user types it, ``postgresql://`` without a driver.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from stairways.tuning.settings import HeartbeatConfig
from stairways.tuning.storage import open_storage
from tests.integration.tune_helpers import run_tune, tiny_tune_config

pytestmark = pytest.mark.slow


def test_tune_on_postgres_then_two_trials_and_a_resume_that_runs_only_the_missing_one(
    tiny_store: Path, tmp_path: Path, fresh_postgres_url: str
) -> None:
    url = fresh_postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    base = tiny_tune_config(
        tiny_store, n_epochs=1, policy={"net_arch": [16, 16]}, rolling_window=10
    )
    space: dict[str, Any] = {
        "name": "pg_grid",
        "sampler": "grid",
        "budget": {"total_timesteps": 512, "eval_every": 512},
        "pruner": {"kind": "none"},
        "parameters": {"training.target_kl": {"choices": [0.015, 0.0075]}},
    }
    config_path = tmp_path / "base.yaml"
    config_path.write_text(yaml.safe_dump(base))
    space_path = tmp_path / "space.yaml"
    space_path.write_text(yaml.safe_dump(space))
    out = tmp_path / "out"
    args = ["--config", str(config_path), "--space", str(space_path), "--storage", url]
    args += ["--out", str(out)]

    first = run_tune([*args, "--trials", "1"], timeout=600)

    # 0: a trial passed the criteria; 3: none did (tiny budgets rarely pass). Both ran.
    assert first.returncode in (0, 3), first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    assert json.loads((out / "summary.json").read_text())["complete"] == 1, first.stderr[-3000:]
    first_run = next((out / "trials" / "trial_0000").glob("*/manifest.json"))
    first_written = first_run.stat().st_mtime_ns

    second = run_tune(args, timeout=600)

    assert second.returncode in (0, 3), second.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] == 2 and summary["failed"] == 0
    assert summary["storage"] == url
    assert not (out / "study.db").exists()
    # Resumed: trial 0 was not trained again, trial 1 was.
    assert first_run.stat().st_mtime_ns == first_written
    assert sum(len(w["trials"]) for w in summary["workers"]) == 1
    study = optuna.load_study(study_name="pg_grid", storage=open_storage(url, HeartbeatConfig()))
    trials = [t for t in study.trials if "abandoned" not in t.user_attrs]
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert {float(t.params["training.target_kl"]) for t in trials} == {0.015, 0.0075}
    for trial in trials:
        assert sorted(trial.intermediate_values) == [512]
