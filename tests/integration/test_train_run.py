"""A short real training run: the run directory contract, reproducibility, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import load_results
from stable_baselines3.common.vec_env import VecNormalize

from stairways.config import load_config
from stairways.data.normalise import Normaliser
from stairways.training.monitor import MONITOR_KEYS
from stairways.training.rundir import RunDirectory
from stairways.training.trainer import TrainOptions, TrainResult, train
from tests.cli_helpers import stairways
from tests.integration.train_helpers import tiny_config, write_yaml

EXTRA_COLUMNS = [
    "episode_pnl",
    "episode_fees",
    "episode_trades",
    "max_drawdown",
    "hold_rate",
    "terminated_by_drawdown",
    "early_exit",
]


@pytest.fixture(scope="module")
def store_overrides(tiny_store: Path) -> dict[str, Any]:
    return {
        "data.store_path": str(tiny_store),
        "data.splits": {
            "train": {"start": "2022-01-05", "end": "2022-01-31"},
            "test": {"start": "2022-02-01", "end": "2022-02-28"},
        },
        "data.protected_splits": ["test"],
    }


@pytest.fixture(scope="module")
def baseline(
    store_overrides: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> TrainResult:
    runs = tmp_path_factory.mktemp("runs")
    cfg = tiny_config(store_overrides, runs, {"training.seed": 7})
    return train(cfg, TrainOptions(command=["stairways", "train", "--seed", "7"]))


def _monitor_without_time(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, skiprows=1)
    return frame.drop(columns=["t"])


def test_completed_run_writes_every_file_of_the_contract(baseline: TrainResult) -> None:
    run = RunDirectory.open(baseline.run_dir)
    assert run.name.startswith("tiny_seed7_")
    assert baseline.status == "completed"
    for p in (run.config_path, run.command_path, run.normaliser_path, run.monitor_path):
        assert p.is_file(), p
    assert (run.path / "final_model.zip").is_file()
    assert (run.path / "final_vecnormalize.pkl").is_file()
    assert (run.path / "final_reward_state.json").is_file()
    assert [c.timesteps for c in run.checkpoints()] == [1024, 2048]
    assert run.command_path.read_text() == "stairways train --seed 7\n"
    Normaliser.load(run.normaliser_path)  # readable as the data layer's normaliser


def test_manifest_records_provenance_status_and_best_checkpoint(baseline: TrainResult) -> None:
    m = RunDirectory.open(baseline.run_dir).read_manifest()
    assert m.status == "completed"
    assert m.timesteps == baseline.timesteps >= 2048
    assert m.seed == 7
    assert m.git_commit == "unknown" or len(m.git_commit) == 40
    assert m.versions["torch"].startswith("2.13.0")
    assert m.data.symbols == ["NVDA", "MSFT"]
    assert m.data.split_range == {"start": "2022-01-05", "end": "2022-01-31"}
    assert m.data.synthetic is True
    assert len(m.data.panel_fingerprint) == 16
    assert m.data.allow_test_overlap is False
    assert m.final_model == "final_model.zip"
    scored = [c for c in m.checkpoints if c.rolling_reward is not None]
    best = max(scored, key=lambda c: (c.rolling_reward, c.timesteps))
    assert m.best_checkpoint == best.path
    assert m.end_time is not None and m.end_time >= m.start_time


def test_config_yaml_is_the_resolved_config_and_loads_back(baseline: TrainResult) -> None:
    run = RunDirectory.open(baseline.run_dir)
    cfg = load_config(run.config_path)
    assert cfg.training.seed == 7
    assert cfg.training.n_envs == 8
    assert cfg.name == "tiny"


def test_monitor_csv_is_sb3_monitor_format_with_episode_columns(baseline: TrainResult) -> None:
    run = RunDirectory.open(baseline.run_dir)
    first = run.monitor_path.read_text().splitlines()[0]
    assert first.startswith("#") and "t_start" in json.loads(first[1:])
    frame = load_results(str(run.path))
    assert list(frame.columns[:4]) == ["index", "r", "l", "t"]
    assert list(frame.columns[4:]) == list(MONITOR_KEYS)
    assert set(EXTRA_COLUMNS) <= set(frame.columns)
    assert len(frame) == baseline.episodes >= 8
    assert frame["l"].between(1, 390).all()
    assert frame["terminated_by_drawdown"].isin([0, 1]).all()
    assert frame["hold_rate"].between(0.0, 1.0).all()
    # timesteps at episode end never decrease and never pass the run's count
    ts = pd.read_csv(run.monitor_path, skiprows=1)["timesteps"]
    assert ts.is_monotonic_increasing and ts.max() <= baseline.timesteps


def test_final_model_loads_with_its_statistics(baseline: TrainResult) -> None:
    run = RunDirectory.open(baseline.run_dir)
    model = PPO.load(run.path / "final_model.zip", device="cpu")
    assert model.num_timesteps == baseline.timesteps
    assert model.observation_space.shape == (26,)
    with (run.path / "final_vecnormalize.pkl").open("rb") as fh:
        import pickle

        stats: VecNormalize = pickle.load(fh)
    assert stats.obs_rms.count > baseline.timesteps  # fitted on every observation seen
    state = json.loads((run.path / "final_reward_state.json").read_text())
    assert state["reward"] == "v3"


def test_tensorboard_holds_reward_component_episode_sums(baseline: TrainResult) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((baseline.run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "reward_components/pnl" in tags
    assert "rollout/rolling_episode_reward" in tags
    assert "train/learning_rate" in tags


def test_same_seed_gives_the_same_monitor_csv(
    baseline: TrainResult, store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(store_overrides, tmp_path, {"training.seed": 7})
    again = train(cfg)
    a = _monitor_without_time(baseline.run_dir / "monitor.csv")
    b = _monitor_without_time(again.run_dir / "monitor.csv")
    pd.testing.assert_frame_equal(a, b)
    pa = PPO.load(baseline.run_dir / "final_model.zip", device="cpu").policy.state_dict()
    pb = PPO.load(again.run_dir / "final_model.zip", device="cpu").policy.state_dict()
    assert all(np.array_equal(pa[k].numpy(), pb[k].numpy()) for k in pa)


def test_another_seed_gives_another_monitor_csv(
    baseline: TrainResult, store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(store_overrides, tmp_path, {"training.seed": 8})
    other = train(cfg)
    a = _monitor_without_time(baseline.run_dir / "monitor.csv")
    b = _monitor_without_time(other.run_dir / "monitor.csv")
    assert not (len(a) == len(b) and np.allclose(a["r"].to_numpy(), b["r"].to_numpy()))


def test_cli_flags_override_the_config_and_are_recorded(
    store_overrides: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = tiny_config(store_overrides, tmp_path / "runs", {"training.target_kl": 0.05})
    config = write_yaml(cfg, tmp_path / "tiny.yaml")
    run_dir = tmp_path / "cli_run"
    code = stairways(
        monkeypatch,
        "train",
        "--config",
        config,
        "--total_timesteps",  # snake_case alias
        "1024",
        "--seed",
        "3",
        "--ent-coef",
        "0.02",
        "--early-exit-threshold",
        "50",
        "--run-dir",
        run_dir,
        "--no-progress",
    )
    assert code == 0, capsys.readouterr().err
    text = (run_dir / "config.yaml").read_text()
    assert "#   training.total_timesteps = 1024" in text
    resolved = yaml.safe_load(text)
    assert resolved["training"]["total_timesteps"] == 1024
    assert resolved["training"]["seed"] == 3
    assert resolved["training"]["ent_coef"] == 0.02
    assert resolved["reward"]["refined"]["min_episode_length"] == 50
    # flags not given keep the config's values
    assert resolved["training"]["target_kl"] == 0.05
    assert resolved["training"]["n_steps"] == 64
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["overrides"] == {
        "training.total_timesteps": 1024,
        "training.ent_coef": 0.02,
        "reward.refined.min_episode_length": 50,
        "training.seed": 3,
    }
    assert manifest["command"][:3] == ["stairways", "train", "--config"]
    out = capsys.readouterr().out
    assert f"run directory: {run_dir}" in out
    assert "status: completed" in out

    code = stairways(monkeypatch, "runs", "list", "--runs-dir", tmp_path)
    assert code == 0
    listing = capsys.readouterr().out
    assert "cli_run" in listing and "completed" in listing


def test_training_on_the_protected_split_is_refused_and_writes_nothing(
    store_overrides: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = tiny_config(store_overrides, tmp_path / "runs", {"training.split": "test"})
    config = write_yaml(cfg, tmp_path / "tiny.yaml")
    code = stairways(monkeypatch, "train", "--config", config, "--no-progress")
    assert code == 2
    assert "overlaps protected split 'test'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_allowed_test_overlap_is_recorded_in_the_manifest(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(
        store_overrides,
        tmp_path,
        {"training.split": "test", "training.total_timesteps": 512, "training.tensorboard": False},
    )
    result = train(cfg, TrainOptions(allow_test_overlap=True))
    m = RunDirectory.open(result.run_dir).read_manifest()
    assert m.data.allow_test_overlap is True
    assert m.data.overlapping_splits == ["test"]
    assert m.data.split == "test"


def test_recurrent_ppo_is_selectable_and_resumable(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    from sb3_contrib import RecurrentPPO

    extra = {
        "training.algo": "recurrent_ppo",
        "training.total_timesteps": 256,
        "training.n_envs": 4,
        "training.n_steps": 32,
        "training.batch_size": 64,
        "training.n_epochs": 1,
        "training.checkpoint_every": 128,
        "training.policy.lstm_hidden_size": 16,
        "training.tensorboard": False,
    }
    first = train(tiny_config(store_overrides, tmp_path, extra))
    assert first.final_model is not None
    model = RecurrentPPO.load(first.final_model, device="cpu")
    assert model.policy.lstm_actor.hidden_size == 16
    extra["training.total_timesteps"] = 384
    second = train(
        tiny_config(store_overrides, tmp_path, extra), TrainOptions(resume=first.run_dir)
    )
    assert second.timesteps >= 384
    # a PPO config cannot resume a recurrent checkpoint
    extra["training.algo"] = "ppo"
    extra["training.total_timesteps"] = 2048
    from stairways.errors import InputError

    with pytest.raises(InputError, match=r"training\.algo"):
        train(tiny_config(store_overrides, tmp_path, extra), TrainOptions(resume=first.run_dir))
