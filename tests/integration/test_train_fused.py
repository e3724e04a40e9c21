"""The fused training backend end to end: same run directory, same model format, same features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from stable_baselines3 import PPO

from stairways.errors import InputError
from stairways.evaluation.runner import evaluate_run
from stairways.evaluation.settings import EvaluationConfig
from stairways.training.monitor import MONITOR_KEYS, read_monitor_file
from stairways.training.rundir import RunDirectory
from stairways.training.trainer import TrainOptions, TrainResult, train
from tests.integration.train_helpers import tiny_config

FUSED = {"training.backend": "fused", "training.seed": 3}


@pytest.fixture(scope="module")
def store_overrides(tiny_store: Path) -> dict[str, Any]:
    return {
        "data.store_path": str(tiny_store),
        "data.splits": {
            "train": {"start": "2022-01-05", "end": "2022-01-31"},
            "validation": {"start": "2022-02-01", "end": "2022-02-14"},
            "test": {"start": "2022-02-15", "end": "2022-02-28"},
        },
        "data.protected_splits": ["test"],
    }


@pytest.fixture(scope="module")
def fused_run(
    store_overrides: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> TrainResult:
    cfg = tiny_config(store_overrides, tmp_path_factory.mktemp("runs"), FUSED)
    return train(cfg)


def _weights(path: Path) -> dict[str, np.ndarray]:
    state = PPO.load(path, device="cpu").policy.state_dict()
    return {k: v.numpy() for k, v in state.items()}


def test_fused_run_writes_the_run_directory_contract(fused_run: TrainResult) -> None:
    run = RunDirectory.open(fused_run.run_dir)
    m = run.read_manifest()
    assert fused_run.status == m.status == "completed"
    assert m.timesteps == fused_run.timesteps == 2048
    assert [c.timesteps for c in run.checkpoints()] == [1024, 2048]
    for name in ("final_model.zip", "final_vecnormalize.pkl", "final_reward_state.json"):
        assert (run.path / name).is_file(), name
    scored = [c for c in m.checkpoints if c.rolling_reward is not None]
    assert m.best_checkpoint == max(scored, key=lambda c: (c.rolling_reward, c.timesteps)).path


def test_fused_monitor_csv_is_read_by_the_one_reader(fused_run: TrainResult) -> None:
    log = read_monitor_file(fused_run.run_dir / "monitor.csv")
    frame = log.episodes
    assert len(frame) == fused_run.episodes >= 8
    assert log.timesteps_source == "timesteps"
    for key in MONITOR_KEYS:
        assert key in frame.columns, key
    assert frame["l"].between(1, 390).all()
    assert frame["end_step"].is_monotonic_increasing
    assert frame["end_step"].max() <= fused_run.timesteps
    assert frame["terminated_by_drawdown"].isin([0, 1]).all()


def test_fused_model_is_an_sb3_ppo_zip_with_its_statistics(fused_run: TrainResult) -> None:
    import pickle

    model = PPO.load(fused_run.run_dir / "final_model.zip", device="cpu")
    assert model.num_timesteps == fused_run.timesteps
    with (fused_run.run_dir / "final_vecnormalize.pkl").open("rb") as fh:
        stats = pickle.load(fh)
    # VecNormalize's statistics saw every observation: the reset plus one per env per step
    assert stats.obs_rms.count > fused_run.timesteps
    assert json.loads((fused_run.run_dir / "final_reward_state.json").read_text())["reward"]


def test_fused_tensorboard_holds_reward_components_and_losses(fused_run: TrainResult) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((fused_run.run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in (
        "reward_components/pnl",
        "rollout/rolling_episode_reward",
        "train/learning_rate",
        "train/value_loss",
    ):
        assert tag in tags, tag


def test_same_seed_same_fused_run_and_another_seed_differs(
    fused_run: TrainResult, store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    again = train(tiny_config(store_overrides, tmp_path / "a", FUSED))
    a = pd.read_csv(fused_run.run_dir / "monitor.csv", skiprows=1).drop(columns=["t"])
    b = pd.read_csv(again.run_dir / "monitor.csv", skiprows=1).drop(columns=["t"])
    pd.testing.assert_frame_equal(a, b)
    wa = _weights(fused_run.run_dir / "final_model.zip")
    wb = _weights(again.run_dir / "final_model.zip")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    other = train(tiny_config(store_overrides, tmp_path / "b", {**FUSED, "training.seed": 4}))
    wc = _weights(other.run_dir / "final_model.zip")
    assert not all(np.array_equal(wa[k], wc[k]) for k in wa)


def test_both_backends_evaluate_through_the_same_code(
    fused_run: TrainResult, store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    sb3 = train(tiny_config(store_overrides, tmp_path, {"training.seed": 3}))
    ev = EvaluationConfig.model_validate({"gates": {"significance": False, "excess": False}})
    reports = [
        evaluate_run(r.run_dir, checkpoint="final", split="validation", evaluation=ev)
        for r in (sb3, fused_run)
    ]
    for report in reports:
        assert report.agent.sessions == 10  # 2022-02-01..14: every validation session played
    # different weights, so different trading: each model really ran
    a, b = reports[0].agent, reports[1].agent
    assert (a.total_pnl, a.trades_per_day) != (b.total_pnl, b.trades_per_day)


def test_fused_resume_continues_the_run_to_its_new_end(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(store_overrides, tmp_path, {**FUSED, "training.total_timesteps": 1024})
    first = train(cfg)
    more = cfg.model_copy(
        update={"training": cfg.training.model_copy(update={"total_timesteps": 2048})}
    )
    resumed = train(more, TrainOptions(resume=first.run_dir))
    assert resumed.status == "completed"
    assert resumed.timesteps == 2048
    m = RunDirectory.open(resumed.run_dir).read_manifest()
    assert m.resumed_from and m.resumed_from[0]["timesteps"] == 1024


def test_fused_init_from_starts_from_the_given_weights(
    fused_run: TrainResult, store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(store_overrides, tmp_path, {**FUSED, "training.total_timesteps": 512})
    result = train(cfg, TrainOptions(init_from=fused_run.run_dir / "final_model.zip"))
    m = RunDirectory.open(result.run_dir).read_manifest()
    assert result.status == "completed"
    assert m.init_from is not None and m.init_from.endswith("final_model.zip")


def test_fused_speed_bump_stops_the_run(store_overrides: dict[str, Any], tmp_path: Path) -> None:
    bump = {
        "enabled": True,
        "window": 10,
        "min_timesteps": 0,
        "min_episodes": 2,
        "threshold": 100.0,  # no run reaches a Sharpe of 100: it stops at the second episode
    }
    cfg = tiny_config(store_overrides, tmp_path, {**FUSED, "training.speed_bump": bump})
    result = train(cfg)
    assert result.status == "stopped"
    assert result.stop_reason is not None and "speed-bump" in result.stop_reason
    assert result.timesteps < 2048


def test_fused_refuses_the_reward_shim_before_writing(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(store_overrides, tmp_path, {**FUSED, "reward.mode": "shim"})
    with pytest.raises(InputError, match=r"reward\.mode 'internal'"):
        train(cfg)
    assert not any(tmp_path.iterdir())
