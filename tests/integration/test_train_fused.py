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


@pytest.fixture(scope="module")
def sb3_run(
    store_overrides: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> TrainResult:
    """The same tiny run with the sb3 backend."""
    cfg = tiny_config(store_overrides, tmp_path_factory.mktemp("runs_sb3"), {"training.seed": 3})
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
    # the update runs Adam fused and restores the optimizer's own flags (SB3's) afterwards
    groups = model.policy.optimizer.param_groups
    assert [(g["fused"], g["foreach"]) for g in groups] == [(None, None)] * len(groups)
    state = model.policy.optimizer.state
    assert state and all(set(s) == {"step", "exp_avg", "exp_avg_sq"} for s in state.values())


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
    fused_run: TrainResult, sb3_run: TrainResult
) -> None:
    sb3 = sb3_run
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


# ---------------------------------------------------------------- the same artefacts as sb3
def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard scalars of a run: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = {p.parent for p in (run_dir / "tensorboard").rglob("events.out.tfevents.*")}
    acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_fused_writes_what_sb3_writes(fused_run: TrainResult, sb3_run: TrainResult) -> None:
    runs = [RunDirectory.open(r.run_dir) for r in (sb3_run, fused_run)]
    # monitor.csv: the same header keys and the same columns
    headers = [json.loads(r.monitor_path.read_text().splitlines()[0][1:]) for r in runs]
    assert set(headers[0]) == set(headers[1]) == {"t_start", "env_id"}
    columns = [pd.read_csv(r.monitor_path, skiprows=1).columns.tolist() for r in runs]
    assert columns[0] == columns[1] == ["r", "l", "t", *MONITOR_KEYS]
    # checkpoints at the same timesteps with the same reasons, ranked by the same rule
    manifests = [r.read_manifest() for r in runs]
    assert [(c.timesteps, c.reason) for c in manifests[0].checkpoints] == [
        (c.timesteps, c.reason) for c in manifests[1].checkpoints
    ]
    for m in manifests:
        scored = [c for c in m.checkpoints if c.rolling_reward is not None]
        best = max(scored, key=lambda c: (c.rolling_reward, c.timesteps))
        assert m.best_checkpoint == best.path
    # every checkpoint holds the three files a resume or an evaluation reads
    for r in runs:
        for c in r.checkpoints():
            files = r.checkpoint_files(c.timesteps)
            for p in (files.model, files.vecnormalize, files.reward_state):
                assert p.is_file(), p
    # TensorBoard: every scalar SB3's run writes, at the same update steps, plus the fused
    # backend's own (its curriculum and entropy coefficient)
    sb3_tags, fused_tags = _scalars(sb3_run.run_dir), _scalars(fused_run.run_dir)
    missing = set(sb3_tags) - set(fused_tags)
    assert not missing, missing
    for tag in ("reward_components/pnl", "rollout/ep_rew_mean", "rollout/ep_len_mean"):
        assert [s for s, _ in sb3_tags[tag]] == [s for s, _ in fused_tags[tag]], tag
    # An update's train/ values: fused writes them at the timestep of the rollout it learned
    # from; SB3 at its next dump, one rollout later (and never those of its last update).
    rollout = 512
    for tag in ("train/learning_rate", "train/value_loss"):
        assert [s for s, _ in sb3_tags[tag]] == [s + rollout for s, _ in fused_tags[tag][:-1]], tag


def test_fused_schedules_follow_the_absolute_timestep_as_sb3s_do(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    from stairways.training.schedules import schedule_function

    schedules = {
        "training.learning_rate": {"kind": "linear", "start": 1e-3, "end": 1e-4},
        "training.clip_range": {"kind": "piecewise", "points": [[0, 0.3], [1024, 0.1]]},
        "training.seed": 3,
    }
    seen = {}
    for backend in ("sb3", "fused"):
        extra = {**schedules, "training.backend": backend}
        result = train(tiny_config(store_overrides, tmp_path / backend, extra))
        seen[backend] = _scalars(result.run_dir)
    cfg = tiny_config(store_overrides, tmp_path / "x", schedules)
    lr = schedule_function(cfg.training.learning_rate, cfg.training.total_timesteps)
    clip = schedule_function(cfg.training.clip_range, cfg.training.total_timesteps)
    for backend, tags in seen.items():
        lrs, clips = tags["train/learning_rate"], tags["train/clip_range"]
        # one update per rollout of 512, after the rollout ended (SB3 writes its values at
        # its next dump, one rollout later)
        lag = 512 if backend == "sb3" else 0
        expected_steps = [512, 1024, 1536] if backend == "sb3" else [512, 1024, 1536, 2048]
        assert [s - lag for s, _ in lrs] == expected_steps, backend
        for step, value in lrs:
            assert value == pytest.approx(lr(step - lag), rel=1e-6), (backend, step)
        for step, value in clips:
            assert value == pytest.approx(clip(step - lag), rel=1e-6), (backend, step)
    for tag in ("train/learning_rate", "train/clip_range"):
        sb3 = [v for _, v in seen["sb3"][tag]]
        assert sb3 == [v for _, v in seen["fused"][tag]][:-1], tag


def test_fused_curriculum_changes_lr_entropy_and_env_cap_at_the_boundaries(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    from tests.integration.test_train_curriculum import PHASES

    cfg = tiny_config(
        store_overrides,
        tmp_path,
        {**FUSED, "training.curriculum": PHASES, "training.checkpoint_every": 64},
    )
    caps: list[tuple[int, float]] = []

    def at_checkpoint(model: Any, timesteps: int) -> None:
        caps.append((timesteps, model.get_env().unwrapped.drawdown_cap))

    result = train(cfg, TrainOptions(on_checkpoint=[at_checkpoint]))
    assert result.status == "completed"

    def expected(t: int) -> tuple[float, float, float]:
        if t < 1024:
            return 1e-4, 0.05, 0.2
        if t < 1536:
            return 7e-5, 0.02, 0.1
        return 3e-5, 0.01, 0.05

    assert [t for t, _ in caps] == list(range(64, 2049, 64))
    for t, cap in caps:
        assert cap == expected(t)[2], (t, cap)
    tags = _scalars(result.run_dir)
    lrs = dict(tags["train/learning_rate"])
    ents = dict(tags["train/ent_coef"])
    assert sorted(lrs) == [512, 1024, 1536, 2048]
    for t in lrs:  # the update after the rollout ending at t uses the phase in force at t
        exp_lr, exp_ent, _ = expected(t)
        assert lrs[t] == pytest.approx(exp_lr, rel=1e-6), t
        assert ents[t] == pytest.approx(exp_ent, rel=1e-6), t
    assert [v for _, v in tags["curriculum/phase"]] == [0, 1, 2]


def test_fused_resume_continues_the_step_count_and_the_optimizer_state(
    fused_run: TrainResult, store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(store_overrides, tmp_path, {**FUSED, "training.total_timesteps": 1024})
    first = train(cfg)
    more = tiny_config(store_overrides, tmp_path, {**FUSED, "training.total_timesteps": 2048})
    resumed = train(more, TrainOptions(resume=first.run_dir))
    assert resumed.status == "completed" and resumed.timesteps == 2048
    run = RunDirectory.open(resumed.run_dir)
    m = run.read_manifest()
    assert m.resumed_from and m.resumed_from[0]["timesteps"] == 1024
    # the monitor continues the count: episodes after 1024 were stamped by the resumed run
    stamps = pd.read_csv(run.monitor_path, skiprows=1)["timesteps"]
    assert stamps.is_monotonic_increasing and stamps.max() > 1024

    # Adam's state came with the checkpoint: its step count is that of an unbroken run
    def adam_steps(path: Path) -> set[int]:
        state = PPO.load(path, device="cpu").policy.optimizer.state_dict()["state"]
        return {int(s["step"]) for s in state.values()}

    # 2 epochs x 2 minibatches per rollout of 512, four rollouts
    assert adam_steps(run.path / "final_model.zip") == {16}
    assert adam_steps(fused_run.run_dir / "final_model.zip") == {16}
    assert adam_steps(run.checkpoint_files(1024).model) == {8}
    tags = _scalars(resumed.run_dir)
    assert [s for s, _ in tags["train/n_updates"]][-1] == 2048
    assert tags["train/n_updates"][-1][1] == 8  # 2 epochs x 4 updates, counted across the resume


def test_fused_init_from_starts_from_the_given_weights_and_statistics(
    fused_run: TrainResult, store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    import pickle

    # A learning rate so small the weights cannot move: the run's final weights are its start.
    slow = {**FUSED, "training.total_timesteps": 512, "training.learning_rate": 1e-12}
    base = fused_run.run_dir / "final_model.zip"
    warm = train(
        tiny_config(store_overrides, tmp_path / "warm", slow), TrainOptions(init_from=base)
    )
    cold = train(tiny_config(store_overrides, tmp_path / "cold", slow))
    wb, ww, wc = (
        _weights(p)
        for p in (base, warm.run_dir / "final_model.zip", cold.run_dir / "final_model.zip")
    )
    assert all(np.allclose(ww[k], wb[k], rtol=0, atol=1e-8) for k in wb)
    assert max(float(np.abs(wc[k] - wb[k]).max()) for k in wb) > 1e-3
    m = RunDirectory.open(warm.run_dir).read_manifest()
    assert warm.status == "completed" and warm.timesteps == 512
    assert m.init_from is not None and m.init_from.endswith("final_model.zip")
    # the base run's VecNormalize statistics were loaded and kept counting
    with (fused_run.run_dir / "final_vecnormalize.pkl").open("rb") as fh:
        before = pickle.load(fh).obs_rms.count
    with (warm.run_dir / "final_vecnormalize.pkl").open("rb") as fh:
        after = pickle.load(fh).obs_rms.count
    assert after > before + 512


def test_fused_shim_reward_gives_the_internal_rewards_run(
    fused_run: TrainResult, store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    shim = train(tiny_config(store_overrides, tmp_path, {**FUSED, "reward.mode": "shim"}))
    assert shim.status == "completed"
    a = pd.read_csv(fused_run.run_dir / "monitor.csv", skiprows=1).drop(columns=["t"])
    b = pd.read_csv(shim.run_dir / "monitor.csv", skiprows=1).drop(columns=["t"])
    pd.testing.assert_frame_equal(a, b)
    wa = _weights(fused_run.run_dir / "final_model.zip")
    wb = _weights(shim.run_dir / "final_model.zip")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    internal, shimmed = _scalars(fused_run.run_dir), _scalars(shim.run_dir)
    comps = sorted(t for t in internal if t.startswith("reward_components/"))
    assert comps and comps == sorted(t for t in shimmed if t.startswith("reward_components/"))
    for tag in comps:
        assert internal[tag] == shimmed[tag], tag
    state = json.loads((shim.run_dir / "final_reward_state.json").read_text())
    assert state == json.loads((fused_run.run_dir / "final_reward_state.json").read_text())


def test_fused_refuses_library_callbacks_before_writing(
    store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    from tests.integration.train_helpers import AtStep

    cfg = tiny_config(store_overrides, tmp_path, FUSED)
    with pytest.raises(InputError, match=r"extra_callbacks.*on_checkpoint"):
        train(cfg, TrainOptions(extra_callbacks=[AtStep(lambda m: None)]))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"training.algo": "recurrent_ppo"}, r"training\.backend 'fused'.*recurrent_ppo"),
        ({"training.device": "auto"}, r"training\.backend 'fused' runs on the CPU.*'auto'"),
    ],
)
def test_fused_refuses_what_it_cannot_run_at_config_load(
    store_overrides: dict[str, Any], tmp_path: Path, extra: dict[str, Any], message: str
) -> None:
    from stairways.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        tiny_config(store_overrides, tmp_path, {**FUSED, **extra})


@pytest.mark.slow  # a `stairways train` process: about a minute on two busy cores
def test_same_seed_same_fused_run_in_another_process(
    fused_run: TrainResult, store_overrides: dict[str, Any], tmp_path: Path
) -> None:
    import subprocess
    import sys

    from tests.integration.train_helpers import write_yaml

    cfg = tiny_config(store_overrides, tmp_path / "runs", FUSED)
    path = write_yaml(cfg, tmp_path / "tiny.yaml")
    exe = str(Path(sys.executable).with_name("stairways"))
    out = tmp_path / "other"
    done = subprocess.run(
        [exe, "train", "--config", str(path), "--run-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    a = pd.read_csv(fused_run.run_dir / "monitor.csv", skiprows=1).drop(columns=["t"])
    b = pd.read_csv(out / "monitor.csv", skiprows=1).drop(columns=["t"])
    pd.testing.assert_frame_equal(a, b)
    wa = _weights(fused_run.run_dir / "final_model.zip")
    wb = _weights(out / "final_model.zip")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
