"""The PPO model of a run: built fresh, loaded to resume, or warm-started from other weights.

Every hyperparameter comes from ``cfg.training``. The learning rate and clip range are
:class:`~stairways.training.schedules.StepSchedule` objects on the run's absolute timestep, so
a resumed run continues its schedules where it stopped; curriculum phases that set a learning
rate replace the configured schedule from the phase's start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecEnv

from stairways.config import StairwaysConfig
from stairways.errors import InputError, MissingResourceError
from stairways.training.curriculum import phase_index, resolve_phases
from stairways.training.optim import LeanAdam
from stairways.training.rundir import CheckpointFiles
from stairways.training.schedules import StepSchedule, TimestepClock, schedule_function
from stairways.training.settings import TrainingConfig

log = logging.getLogger(__name__)

__all__ = [
    "algo_class",
    "build_model",
    "check_model_fits",
    "hyperparameters",
    "load_resumed",
    "policy_kwargs",
    "schedules",
    "warm_start",
]

_ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
    "elu": torch.nn.ELU,
    "leaky_relu": torch.nn.LeakyReLU,
    "gelu": torch.nn.GELU,
}
# Schedules are rebuilt from the config on load; a saved one is never unpickled.
_NO_SCHEDULES: dict[str, Any] = {"learning_rate": 0.0, "lr_schedule": 0.0, "clip_range": 0.0}


def algo_class(algo: str) -> tuple[Any, str]:
    """The SB3 algorithm class (typed Any: PPO and RecurrentPPO share no typed base) and policy."""
    if algo == "ppo":
        return PPO, "MlpPolicy"
    from sb3_contrib import RecurrentPPO  # imported lazily: only recurrent runs need it

    return RecurrentPPO, "MlpLstmPolicy"


def policy_kwargs(tc: TrainingConfig) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` of the configured network."""
    pk: dict[str, Any] = {
        "net_arch": {"pi": list(tc.policy.net_arch.pi), "vf": list(tc.policy.net_arch.vf)},
        "activation_fn": _ACTIVATIONS[tc.policy.activation],
        "ortho_init": tc.policy.ortho_init,
        # torch.optim.Adam's arithmetic without its one-off import of torch._dynamo
        "optimizer_class": LeanAdam,
    }
    if tc.algo == "recurrent_ppo":
        pk["lstm_hidden_size"] = tc.policy.lstm_hidden_size
        pk["n_lstm_layers"] = tc.policy.n_lstm_layers
    return pk


def hyperparameters(tc: TrainingConfig) -> dict[str, Any]:
    """The constant PPO hyperparameters (schedules are built by :func:`schedules`)."""
    return {
        "n_steps": tc.n_steps,
        "batch_size": tc.batch_size,
        "n_epochs": tc.n_epochs,
        "gamma": tc.gamma,
        "gae_lambda": tc.gae_lambda,
        "clip_range_vf": tc.clip_range_vf,
        "ent_coef": tc.ent_coef,
        "vf_coef": tc.vf_coef,
        "max_grad_norm": tc.max_grad_norm,
        "target_kl": tc.target_kl,
    }


def schedules(cfg: StairwaysConfig, clock: TimestepClock) -> tuple[StepSchedule, StepSchedule]:
    """Learning-rate schedule (curriculum phases that set one replace it) and clip range."""
    tc = cfg.training
    phases = resolve_phases(tc.curriculum, tc.ent_coef)

    def phase_lr(step: int) -> float | None:
        idx = phase_index(phases, step)
        return None if idx is None else phases[idx].learning_rate

    lr = StepSchedule(schedule_function(tc.learning_rate, tc.total_timesteps), clock, phase_lr)
    clip = StepSchedule(schedule_function(tc.clip_range, tc.total_timesteps), clock)
    return lr, clip


def build_model(
    cfg: StairwaysConfig, venv: VecEnv, clock: TimestepClock, tensorboard_dir: Path | None
) -> BaseAlgorithm:
    """A fresh PPO or RecurrentPPO model with every hyperparameter from ``cfg.training``."""
    tc = cfg.training
    cls, policy = algo_class(tc.algo)
    lr, clip = schedules(cfg, clock)
    if (tc.n_steps * venv.num_envs) % tc.batch_size:
        log.warning(
            "batch_size %d does not divide n_steps * n_envs = %d: the last mini-batch of every "
            "epoch is truncated",
            tc.batch_size,
            tc.n_steps * venv.num_envs,
        )
    return cls(
        policy,
        venv,
        learning_rate=lr,
        clip_range=clip,
        policy_kwargs=policy_kwargs(tc),
        tensorboard_log=str(tensorboard_dir) if tensorboard_dir is not None else None,
        seed=tc.seed,
        device=tc.device,
        verbose=0,
        **hyperparameters(tc),
    )


def load_resumed(
    cfg: StairwaysConfig,
    files: CheckpointFiles,
    venv: VecEnv,
    clock: TimestepClock,
    tensorboard_dir: Path | None,
    set_reward_state: Callable[[dict[str, Any]], None],
) -> BaseAlgorithm:
    """The checkpoint's model on ``venv``, with the config's schedules and its reward state."""
    tc = cfg.training
    cls, _ = algo_class(tc.algo)
    lr, clip = schedules(cfg, clock)
    model = cls.load(
        files.model,
        env=venv,
        device=tc.device,
        custom_objects={"learning_rate": lr, "lr_schedule": lr, "clip_range": clip},
        learning_rate=lr,
        clip_range=clip,
        tensorboard_log=str(tensorboard_dir) if tensorboard_dir is not None else None,
        **hyperparameters(tc),
    )
    # Continue the random streams where a fresh seed would not replay the run's start.
    model.set_random_seed((tc.seed + model.num_timesteps) % 2**31)
    try:
        state = json.loads(files.reward_state.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"reward state {files.reward_state} is not valid JSON: {err}") from None
    set_reward_state(state)
    log.info("resumed from %s at %d timesteps", files.model, model.num_timesteps)
    return model


def warm_start(model: BaseAlgorithm, source: Path, algo: str, device: str) -> None:
    """Copy the policy weights of the model zip ``source`` into ``model``."""
    cls, _ = algo_class(algo)
    base = cls.load(source, device=device, custom_objects=_NO_SCHEDULES)
    try:
        model.policy.load_state_dict(base.policy.state_dict())
    except RuntimeError as err:
        raise InputError(
            f"{source} has a different network shape than training.policy: {err}"
        ) from None
    log.info("initialised the policy from %s", source)


# ---------------------------------------------------------------- fitting a saved model
def _space_text(space: spaces.Space[Any]) -> str:
    if isinstance(space, spaces.Box):
        lo, hi = float(space.low.min()), float(space.high.max())
        return f"Box(shape {space.shape}, {space.dtype}, bounds {lo}..{hi})"
    return str(space)


def _check_spaces(source: Path, data: Mapping[str, Any], venv: VecEnv) -> None:
    """A saved model's observation and action spaces must equal the env's."""
    for key, ours in (
        ("observation_space", venv.observation_space),
        ("action_space", venv.action_space),
    ):
        saved = data.get(key)
        if saved is None:
            raise InputError(f"{source} does not record its {key}; it is not an SB3 model zip")
        same = saved == ours
        if isinstance(saved, spaces.Box) and isinstance(ours, spaces.Box):
            same = saved.shape == ours.shape and bool(
                np.array_equal(saved.low, ours.low) and np.array_equal(saved.high, ours.high)
            )
        if not same:
            raise InputError(
                f"{source} was trained with {key} {_space_text(saved)} but this config's env has "
                f"{_space_text(ours)}; use a config with the same symbols, action set and "
                "observation extras (env.obs_*), or start a new run without it"
            )


def _read_model_data(path: Path, cls: type[BaseAlgorithm]) -> dict[str, Any]:
    """Saved attributes of a model zip (spaces, policy class and kwargs), checked for the algo."""
    if not path.is_file():
        raise MissingResourceError(f"model file {path} does not exist")
    try:
        data, _, _ = load_from_zip_file(
            path,
            load_data=True,
            custom_objects=_NO_SCHEDULES,
            device="cpu",
        )
    except (ValueError, OSError, KeyError) as err:
        raise InputError(f"{path} is not a readable SB3 model zip: {err}") from None
    if data is None:
        raise InputError(f"{path} holds no model data")
    policy_class = data.get("policy_class")
    expected = cls.policy_aliases.values()
    if policy_class is not None and policy_class not in expected:
        raise InputError(
            f"{path} holds a {getattr(policy_class, '__name__', policy_class)} policy, which "
            f"{cls.__name__} (training.algo) cannot load; set training.algo to match"
        )
    return data


def check_model_fits(path: Path, tc: TrainingConfig, venv: VecEnv) -> None:
    """Refuse a model zip whose algorithm, spaces or network differ from the config's env.

    :param path: a checkpoint, final model or any SB3 model zip
    :param tc: the training config (algorithm and network shape)
    :param venv: the env the model will run on
    """
    cls, _ = algo_class(tc.algo)
    data = _read_model_data(path, cls)
    _check_spaces(path, data, venv)
    # The optimizer does not shape the network: a zip saved with torch.optim.Adam fits too.
    saved = dict(data.get("policy_kwargs") or {})
    saved.pop("optimizer_class", None)
    ours = policy_kwargs(tc)
    ours.pop("optimizer_class")
    if saved != ours:
        raise InputError(
            f"{path} was trained with policy {saved} but training.policy gives {ours}; "
            "its weights only fit the same network: make training.policy match it"
        )
