"""Resume, interruption and warm start of training runs."""

from __future__ import annotations

import json
import logging
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from stairways.errors import InputError
from stairways.training.envstack import vecnormalize
from stairways.training.rundir import RunDirectory
from stairways.training.runlock import LOCK_FILE
from stairways.training.trainer import TrainOptions, train
from tests.cli_helpers import stairways
from tests.integration.train_helpers import AtStep, tiny_config

STAIRWAYS = str(Path(sys.executable).with_name("stairways"))


def _load_stats(path: Path) -> VecNormalize:
    with path.open("rb") as fh:
        return pickle.load(fh)


def test_interrupted_run_leaves_a_consistent_directory_that_resume_completes(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_overrides, tmp_path)

    def interrupt(model: Any) -> None:
        if model.num_timesteps >= 1200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, TrainOptions(extra_callbacks=[AtStep(interrupt)]))
    (run_path,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    run = RunDirectory.open(run_path)
    m = run.read_manifest()
    assert m.status == "interrupted"
    assert m.stop_reason is not None and "KeyboardInterrupt" in m.stop_reason
    assert m.timesteps == 1200
    # the periodic checkpoint at 1024 and the one saved on interrupt, each complete
    assert [c.timesteps for c in run.checkpoints()] == [1024, 1200]
    assert [c.reason for c in m.checkpoints] == ["periodic", "interrupted"]
    assert not (run.path / "final_model.zip").exists()
    assert not list(run.path.rglob("*.tmp"))
    assert pd.read_csv(run.monitor_path, skiprows=1)["timesteps"].max() <= 1200

    saved = _load_stats(run.checkpoint_files(1200).vecnormalize)
    saved_state = json.loads(run.checkpoint_files(1200).reward_state.read_text())
    seen: dict[str, Any] = {}

    def at_start(model: Any) -> None:
        seen["timesteps"] = model.num_timesteps
        seen["count"] = vecnormalize(model.get_env()).obs_rms.count
        seen["mean"] = vecnormalize(model.get_env()).obs_rms.mean.copy()

    result = train(
        cfg,
        TrainOptions(resume=run.path, extra_callbacks=[AtStep(lambda m: None, at_start)]),
    )
    assert result.run_dir == run.path
    assert result.status == "completed"
    assert seen["timesteps"] == 1200  # the count continues, it does not restart at 0
    # VecNormalize statistics were loaded (plus the reset observations seen since)
    assert seen["count"] >= saved.obs_rms.count
    assert seen["count"] <= saved.obs_rms.count + cfg.training.n_envs
    assert np.allclose(seen["mean"], saved.obs_rms.mean, atol=0.05)
    assert saved_state["reward"] == "v3"
    m = run.read_manifest()
    assert m.status == "completed"
    assert m.timesteps == result.timesteps >= 2048
    assert m.resumed_from[0]["timesteps"] == 1200
    assert m.resumed_from[0]["previous_status"] == "interrupted"
    assert PPO.load(run.path / "final_model.zip", device="cpu").num_timesteps == m.timesteps
    ts = pd.read_csv(run.monitor_path, skiprows=1)["timesteps"]
    assert ts.is_monotonic_increasing and ts.max() > 1200
    assert len(run.command_path.read_text().splitlines()) == 2


def test_resume_restores_the_reward_state_saved_with_the_checkpoint(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_overrides, tmp_path, {"training.total_timesteps": 1024})
    first = train(cfg)
    files = RunDirectory(first.run_dir).checkpoint_files(1024)
    # A recognisable reward state: every env's running value set to 1.5.
    state = json.loads(files.reward_state.read_text())
    state["state"] = [[1.5] * len(row) for row in state["state"]]
    files.reward_state.write_text(json.dumps(state))
    seen: dict[str, Any] = {}

    def at_start(model: Any) -> None:
        seen["state"] = model.get_env().unwrapped.get_state()

    cfg2 = tiny_config(tiny_overrides, tmp_path, {"training.total_timesteps": 1536})
    train(
        cfg2, TrainOptions(resume=first.run_dir, extra_callbacks=[AtStep(lambda m: None, at_start)])
    )
    assert seen["state"] == state


def test_resume_from_a_checkpoint_zip_starts_a_new_run_directory(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_overrides, tmp_path / "a", {"training.total_timesteps": 1024})
    first = train(cfg)
    zip_path = RunDirectory(first.run_dir).checkpoint_files(1024).model
    cfg2 = tiny_config(tiny_overrides, tmp_path / "a", {"training.total_timesteps": 1536})
    second = train(cfg2, TrainOptions(resume=zip_path, run_dir=tmp_path / "b"))
    assert second.run_dir == tmp_path / "b"
    m = RunDirectory.open(second.run_dir).read_manifest()
    assert m.timesteps == second.timesteps >= 1536
    assert m.resumed_from[0]["checkpoint"] == str(zip_path.resolve())
    assert (second.run_dir / "normaliser.json").read_text() == (
        first.run_dir / "normaliser.json"
    ).read_text()


def test_resume_past_the_target_is_refused(tiny_overrides: dict[str, Any], tmp_path: Path) -> None:
    cfg = tiny_config(tiny_overrides, tmp_path, {"training.total_timesteps": 1024})
    first = train(cfg)
    with pytest.raises(InputError, match="pass a larger --total-timesteps"):
        train(cfg, TrainOptions(resume=first.run_dir))
    assert RunDirectory(first.run_dir).read_manifest().status == "completed"


def test_init_from_copies_the_base_weights_into_a_new_run(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_overrides, tmp_path / "base", {"training.total_timesteps": 1024})
    base = train(cfg)
    assert base.final_model is not None
    base_weights = PPO.load(base.final_model, device="cpu").policy.state_dict()
    seen: dict[str, Any] = {}

    def at_start(model: Any) -> None:
        seen["timesteps"] = model.num_timesteps
        seen["weights"] = {k: v.clone() for k, v in model.policy.state_dict().items()}

    cfg2 = tiny_config(tiny_overrides, tmp_path / "new", {"training.total_timesteps": 512})
    result = train(
        cfg2,
        TrainOptions(
            init_from=base.final_model, extra_callbacks=[AtStep(lambda m: None, at_start)]
        ),
    )
    assert seen["timesteps"] == 0  # a new run counts from zero
    assert all(np.array_equal(seen["weights"][k], base_weights[k]) for k in base_weights)
    m = RunDirectory.open(result.run_dir).read_manifest()
    assert m.init_from == str(base.final_model)


def test_init_from_a_model_with_another_observation_space_fails_clearly(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    other = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, device="cpu")
    other_path = tmp_path / "cartpole.zip"
    other.save(other_path)
    cfg = tiny_config(tiny_overrides, tmp_path / "runs")
    with pytest.raises(
        InputError, match=r"observation_space Box\(shape \(4,\).*Box\(shape \(26,\)"
    ):
        train(cfg, TrainOptions(init_from=other_path))
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_resume_and_init_from_together_are_refused(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_overrides, tmp_path)
    with pytest.raises(InputError, match="exclude each other"):
        train(cfg, TrainOptions(resume=tmp_path, init_from=tmp_path / "m.zip"))


def test_crashed_run_is_marked_failed_and_resume_drops_episodes_after_its_checkpoint(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_overrides, tmp_path)

    def crash(model: Any) -> None:
        if model.num_timesteps >= 1800:
            raise RuntimeError("simulated failure inside the env")

    with pytest.raises(RuntimeError, match="simulated failure"):
        train(cfg, TrainOptions(extra_callbacks=[AtStep(crash)]))
    (run_path,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    run = RunDirectory.open(run_path)
    m = run.read_manifest()
    assert m.status == "failed"
    assert m.error == "RuntimeError: simulated failure inside the env"
    assert m.timesteps == 1800
    assert run.latest_checkpoint().timesteps == 1024  # no checkpoint of a failed state
    before = pd.read_csv(run.monitor_path, skiprows=1)
    assert before["timesteps"].max() > 1024  # episodes logged after the checkpoint

    result = train(cfg, TrainOptions(resume=run.path))
    assert result.status == "completed"
    after = pd.read_csv(run.monitor_path, skiprows=1)
    ts = after["timesteps"]
    assert ts.is_monotonic_increasing  # the episodes after 1024 were dropped, then replayed
    kept = before[before["timesteps"] <= 1024]
    pd.testing.assert_frame_equal(after.iloc[: len(kept)], kept)
    assert run.read_manifest().resumed_from[0]["previous_status"] == "failed"


@pytest.mark.slow  # a second `stairways train` process (about a minute on two busy cores)
def test_a_second_writer_is_refused_while_a_training_process_holds_the_run(
    tiny_overrides: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = tiny_config(tiny_overrides, tmp_path, {"training.total_timesteps": 1024})
    run = RunDirectory(train(cfg).run_dir)
    # The first writer: a real `stairways train --resume` process with a long way to go.
    first = subprocess.Popen(
        [STAIRWAYS, "train", "--resume", str(run.path), "--total-timesteps", "10000000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lock = run.path / LOCK_FILE
        for _ in range(1200):  # up to two minutes for it to start and take the lock
            if first.poll() is not None or (lock.is_file() and lock.read_text()):
                break
            time.sleep(0.1)
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        assert json.loads(lock.read_text())["pid"] == first.pid
        capsys.readouterr()
        code = stairways(monkeypatch, "train", "--resume", run.path, "--no-progress")
        err = capsys.readouterr().err
        assert code == 1
        assert f"is being written by pid {first.pid} on host {socket.gethostname()}" in err
        assert "Traceback" not in err
        assert json.loads(lock.read_text())["pid"] == first.pid  # the holder kept its lock
        assert first.poll() is None
    finally:
        first.kill()  # a crash: the lock file stays behind, naming a dead process
        first.wait(timeout=60)
    assert lock.is_file()
    done = run.latest_checkpoint().timesteps
    cfg2 = tiny_config(tiny_overrides, tmp_path, {"training.total_timesteps": done + 512})
    with caplog.at_level(logging.WARNING, logger="stairways.training.runlock"):
        result = train(cfg2, TrainOptions(resume=run.path))
    assert result.status == "completed"
    assert f"of pid {first.pid} on host" in caplog.text and "no longer running" in caplog.text
    assert not lock.exists()  # released at the end
