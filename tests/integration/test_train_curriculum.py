"""Curriculum phases and the speed-bump act inside a real SB3 run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from stairways.training.rundir import RunDirectory
from stairways.training.trainer import TrainOptions, train
from tests.integration.train_helpers import AtStep, tiny_config

PHASES = {
    "phases": [
        {"start": 0, "drawdown_cap": 0.2, "ent_coef": 0.05, "learning_rate": 1e-4},
        {"start": 1024, "drawdown_cap": 0.1, "ent_coef": 0.02, "learning_rate": 7e-5},
        {"start": 1536, "drawdown_cap": 0.05, "ent_coef": 0.01, "learning_rate": 3e-5},
    ]
}


def test_curriculum_changes_optimizer_lr_entropy_and_env_cap_at_the_boundaries(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    # training.learning_rate keeps its default: the phases replace it (setting both is refused)
    cfg = tiny_config(tiny_overrides, tmp_path, {"training.curriculum": PHASES})
    steps: list[tuple[int, float]] = []  # (timesteps, env drawdown cap) on every step
    updates: list[tuple[int, float, float]] = []  # (timesteps, optimizer lr, ent_coef)

    class Recorder(AtStep):
        def _on_rollout_start(self) -> None:
            # train() of the previous rollout has just set the optimizer's learning rate
            lr = self.model.policy.optimizer.param_groups[0]["lr"]
            updates.append((self.model.num_timesteps, lr, self.model.ent_coef))

    def on_step(model: Any) -> None:
        steps.append((model.num_timesteps, model.get_env().unwrapped.drawdown_cap))

    result = train(cfg, TrainOptions(extra_callbacks=[Recorder(on_step)]))
    assert result.status == "completed"

    def expected(t: int) -> tuple[float, float, float]:
        if t < 1024:
            return 1e-4, 0.05, 0.2
        if t < 1536:
            return 7e-5, 0.02, 0.1
        return 3e-5, 0.01, 0.05

    assert [u[0] for u in updates] == [0, 512, 1024, 1536]
    for t, lr, ent in updates[1:]:  # after each update: values of the phase at that timestep
        exp_lr, exp_ent, _ = expected(t)
        assert lr == exp_lr, (t, lr)
        assert ent == exp_ent, (t, ent)
    for t, cap in steps:
        assert cap == expected(t)[2], (t, cap)
    # the boundary steps themselves were seen
    assert (1024, 0.1) in steps and (1016, 0.2) in steps


def test_curriculum_phase_is_restored_on_resume(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(
        tiny_overrides,
        tmp_path,
        {"training.curriculum": PHASES, "training.total_timesteps": 1536},
    )
    first = train(cfg)
    seen: dict[str, float] = {}

    def at_start(model: Any) -> None:
        seen["cap"] = model.get_env().unwrapped.drawdown_cap
        seen["ent"] = model.ent_coef
        seen["lr"] = model.lr_schedule(1.0)

    cfg2 = tiny_config(
        tiny_overrides,
        tmp_path,
        {"training.curriculum": PHASES, "training.total_timesteps": 2048},
    )
    train(
        cfg2, TrainOptions(resume=first.run_dir, extra_callbacks=[AtStep(lambda m: None, at_start)])
    )
    assert seen == {"cap": 0.05, "ent": 0.01, "lr": 3e-5}


class LoseOnePerStep(VecEnvWrapper):
    """Subtract 1 from every reward: the run can only lose."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        return obs, rewards - np.float32(1.0), dones, infos


def test_speed_bump_stops_a_losing_run_with_a_checkpoint_and_a_reason(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(
        tiny_overrides,
        tmp_path,
        {
            "training.total_timesteps": 20_000,
            "training.speed_bump": {
                "enabled": True,
                "min_timesteps": 1000,
                "min_episodes": 10,
                "window": 1000,
            },
        },
    )
    result = train(cfg, TrainOptions(env_wrappers=[LoseOnePerStep]))
    assert result.status == "stopped"
    assert result.timesteps < 20_000
    assert result.timesteps >= 1000
    assert result.stop_reason is not None and "rolling Sharpe" in result.stop_reason
    run = RunDirectory.open(result.run_dir)
    m = run.read_manifest()
    assert m.status == "stopped" and m.stop_reason == result.stop_reason
    assert m.checkpoints[-1].reason == "speed-bump"
    assert run.latest_checkpoint().timesteps == result.timesteps
    assert m.final_model is None


def test_without_losses_the_speed_bump_lets_the_run_complete(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(
        tiny_overrides,
        tmp_path,
        {
            "training.total_timesteps": 1024,
            "training.speed_bump": {
                "enabled": True,
                "min_timesteps": 0,
                "min_episodes": 2,
                "threshold": -100.0,
            },
        },
    )
    assert train(cfg).status == "completed"


def test_quality_gates_record_their_verdicts(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(
        tiny_overrides,
        tmp_path,
        {
            "training.gates": {
                "mid_run_fraction": 0.5,
                "mid_run_min_reward": 1e9,  # unreachable: must be recorded as missed
                "final_min_reward": -1e9,  # always reached
            }
        },
    )
    result = train(cfg)
    gates = RunDirectory.open(result.run_dir).read_manifest().quality_gates
    assert [(g.name, g.passed) for g in gates] == [("mid_run", False), ("final", True)]
    assert gates[0].timesteps >= 1024
