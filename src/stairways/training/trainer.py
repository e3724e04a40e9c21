"""Reproducible PPO runs on the batched trading env, recorded in a run directory.

:func:`train` reads top to bottom: seed everything, build the training panel (refusing
protected dates unless allowed), open or create the run directory, wrap the batched env
(timestep stamp -> VecMonitor -> VecNormalize), build, resume or warm-start the model, attach
the callbacks (clock, curriculum, episode statistics, gates, speed-bump, checkpoints, progress),
learn, and write the outcome. Whatever happens (completion, speed-bump, Ctrl-C, an error) the
manifest ends with a status and the directory can be resumed from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import ResultsWriter
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor, VecNormalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from stairways.config import StairwaysConfig, load_config
from stairways.data.normalise import Normaliser
from stairways.data.panel import SessionPanel
from stairways.data.panel_builder import build_panel, fit_normaliser
from stairways.data.splits import check_training_range, resolve_split
from stairways.data.store import BarStore
from stairways.env.vector import find_layer
from stairways.errors import InputError, MissingResourceError, StairwaysError
from stairways.training.callbacks import (
    CheckpointCallback,
    ClockCallback,
    CurriculumCallback,
    EpisodeLog,
    EpisodeStatsCallback,
    ProgressCallback,
    QualityGateCallback,
    SpeedBumpCallback,
)
from stairways.training.curriculum import phase_index, resolve_phases
from stairways.training.rundir import (
    CheckpointFiles,
    CheckpointRecord,
    DataProvenance,
    GateVerdict,
    Manifest,
    RunDirectory,
    atomic_write_text,
    git_state,
    package_versions,
    python_version,
    utc_now_iso,
)
from stairways.training.runs import read_monitor_rewards
from stairways.training.schedules import StepSchedule, TimestepClock, schedule_function
from stairways.training.settings import TrainingConfig

log = logging.getLogger(__name__)

__all__ = [
    "MONITOR_KEYS",
    "TimestepInfo",
    "TrainOptions",
    "TrainResult",
    "build_model",
    "companion_files",
    "config_for_resume",
    "train",
]

# Episode summary keys of the env's final-step info written as monitor.csv columns, plus the
# run's timestep count when the episode ended (lets analysis align episodes with checkpoints).
MONITOR_KEYS: tuple[str, ...] = (
    "episode_pnl",
    "episode_fees",
    "episode_trades",
    "max_drawdown",
    "hold_rate",
    "terminated_by_drawdown",
    "early_exit",
    "timesteps",
)
_ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
    "elu": torch.nn.ELU,
    "leaky_relu": torch.nn.LeakyReLU,
    "gelu": torch.nn.GELU,
}


@dataclass(frozen=True)
class TrainOptions:
    """How to run (as opposed to what to train, which is the config).

    :param run_dir: explicit run directory (new runs, or resuming from a checkpoint zip)
    :param resume: a run directory or a checkpoint zip to continue from
    :param init_from: a model zip whose weights start a new run
    :param allow_test_overlap: allow training on dates of a protected split (recorded)
    :param overrides: command-line overrides already applied to the config (recorded)
    :param command: the command line (recorded in command.txt)
    :param progress: show a progress bar on the terminal
    :param extra_callbacks: more SB3 callbacks, run after the built-in ones
    :param env_wrappers: vector-env wrappers applied inside the monitor (reward shaping studies)
    :param panel_transform: applied to the training panel before the env is built (the leakage
        audit's lagged / look-ahead / offset panels); the transformed fingerprint is recorded
    """

    run_dir: Path | None = None
    resume: Path | None = None
    init_from: Path | None = None
    allow_test_overlap: bool = False
    overrides: Mapping[str, Any] = field(default_factory=dict)
    command: Sequence[str] = ()
    progress: bool = False
    extra_callbacks: Sequence[BaseCallback] = ()
    env_wrappers: Sequence[Callable[[VecEnv], VecEnv]] = ()
    panel_transform: Callable[[SessionPanel], SessionPanel] | None = None


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`."""

    run_dir: Path
    status: str
    timesteps: int
    episodes: int
    rolling_reward: float | None
    first_rolling_reward: float | None
    stop_reason: str | None
    best_checkpoint: str | None
    final_model: Path | None
    steps_per_second: float


class TimestepInfo(VecEnvWrapper):
    """Stamp the run's timestep count into the final-step info of every finished episode.

    :param venv: env to wrap
    :param start: timesteps already done (a resumed run continues its count)
    """

    def __init__(self, venv: VecEnv, start: int = 0) -> None:
        super().__init__(venv)
        self.timesteps = start

    def reset(self) -> Any:
        """Reset the wrapped env."""
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        """Step and stamp; SB3 counts ``num_envs`` timesteps per vector step, and so do we."""
        obs, rewards, dones, infos = self.venv.step_wait()
        self.timesteps += self.num_envs
        for i in np.flatnonzero(dones):
            infos[int(i)]["timesteps"] = self.timesteps
        return obs, rewards, dones, infos


# ---------------------------------------------------------------- helpers
def _algo_class(algo: str) -> tuple[Any, str]:
    """The SB3 algorithm class (typed Any: PPO and RecurrentPPO share no typed base) and policy."""
    if algo == "ppo":
        return PPO, "MlpPolicy"
    from sb3_contrib import RecurrentPPO  # imported lazily: only recurrent runs need it

    return RecurrentPPO, "MlpLstmPolicy"


def _policy_kwargs(tc: TrainingConfig) -> dict[str, Any]:
    pk: dict[str, Any] = {
        "net_arch": {"pi": list(tc.policy.net_arch.pi), "vf": list(tc.policy.net_arch.vf)},
        "activation_fn": _ACTIVATIONS[tc.policy.activation],
        "ortho_init": tc.policy.ortho_init,
    }
    if tc.algo == "recurrent_ppo":
        pk["lstm_hidden_size"] = tc.policy.lstm_hidden_size
        pk["n_lstm_layers"] = tc.policy.n_lstm_layers
    return pk


def _hyperparameters(tc: TrainingConfig) -> dict[str, Any]:
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


def _schedules(cfg: StairwaysConfig, clock: TimestepClock) -> tuple[StepSchedule, StepSchedule]:
    """Learning-rate schedule (curriculum phases override it) and clip-range schedule."""
    tc = cfg.training
    phases = resolve_phases(tc.curriculum, tc.ent_coef)

    def phase_lr(step: int) -> float | None:
        idx = phase_index(phases, step)
        return None if idx is None else phases[idx].learning_rate

    lr = StepSchedule(schedule_function(tc.learning_rate, tc.total_timesteps), clock, phase_lr)
    clip = StepSchedule(schedule_function(tc.clip_range, tc.total_timesteps), clock)
    return lr, clip


def _find_stairways_env(venv: VecEnv, method: str) -> Any:
    """The outermost env in the wrapper chain whose class defines ``method``.

    SB3 wrappers forward unknown attributes and ``env_method`` to the innermost env; in shim
    mode the reward state lives in the shim, not in the batched env, so the chain is walked.
    """
    env = find_layer(venv, lambda e: callable(getattr(type(e), method, None)))
    if env is None:
        raise StairwaysError(f"no environment in {type(venv).__name__} provides {method}()")
    return env


def _vecnormalize(venv: VecEnv) -> VecNormalize:
    env = find_layer(venv, lambda e: isinstance(e, VecNormalize))
    if env is None:
        raise StairwaysError("the training env is not wrapped in VecNormalize")
    return cast(VecNormalize, env)


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


def _read_model_data(path: Path, algo_cls: type[BaseAlgorithm]) -> dict[str, Any]:
    """Saved attributes of a model zip (spaces, policy class and kwargs), checked for the algo."""
    if not path.is_file():
        raise MissingResourceError(f"model file {path} does not exist")
    try:
        data, _, _ = load_from_zip_file(
            path,
            load_data=True,
            custom_objects={"learning_rate": 0.0, "lr_schedule": 0.0, "clip_range": 0.0},
            device="cpu",
        )
    except (ValueError, OSError, KeyError) as err:
        raise InputError(f"{path} is not a readable SB3 model zip: {err}") from None
    if data is None:
        raise InputError(f"{path} holds no model data")
    policy_class = data.get("policy_class")
    expected = algo_cls.policy_aliases.values()
    if policy_class is not None and policy_class not in expected:
        raise InputError(
            f"{path} holds a {getattr(policy_class, '__name__', policy_class)} policy, which "
            f"{algo_cls.__name__} (training.algo) cannot load; set training.algo to match"
        )
    return data


def companion_files(model_zip: Path) -> CheckpointFiles:
    """VecNormalize statistics and reward state saved beside a checkpoint or final model."""
    m = model_zip.name
    if m == RunDirectory.FINAL_MODEL:
        return RunDirectory(model_zip.parent).final_files(-1)
    if m.startswith("checkpoint_") and m.endswith(".zip"):
        try:
            t = int(m[len("checkpoint_") : -len(".zip")])
        except ValueError:
            t = -1
        if t >= 0:
            return CheckpointFiles(
                timesteps=t,
                model=model_zip,
                vecnormalize=model_zip.with_name(f"vecnormalize_{t}.pkl"),
                reward_state=model_zip.with_name(f"reward_state_{t}.json"),
            )
    stem = model_zip.with_suffix("")
    return CheckpointFiles(
        timesteps=-1,
        model=model_zip,
        vecnormalize=stem.with_name(stem.name + "_vecnormalize.pkl"),
        reward_state=stem.with_name(stem.name + "_reward_state.json"),
    )


def _owning_run(model_zip: Path) -> RunDirectory | None:
    """The run directory a checkpoint or final model belongs to, if any."""
    for candidate in (model_zip.parent, model_zip.parent.parent):
        if (candidate / RunDirectory.MANIFEST).is_file():
            return RunDirectory(candidate)
    return None


def config_for_resume(
    resume: Path, config: Path | None, overrides: Mapping[str, Any]
) -> StairwaysConfig:
    """The config a resumed run uses: the run's own config.yaml, plus overrides.

    :param resume: run directory or checkpoint zip
    :param config: a config file; refused with a run directory (its config.yaml is the truth)
    :param overrides: dotted overrides from the command line
    """
    if resume.is_dir():
        run = RunDirectory.open(resume)
        if config is not None:
            raise InputError(
                f"--resume {resume} continues that run with its own {RunDirectory.CONFIG}; "
                "drop --config (flags such as --total-timesteps still apply)"
            )
        return load_config(run.config_path, overrides)
    if not resume.is_file():
        raise MissingResourceError(f"--resume {resume}: no such run directory or checkpoint")
    if config is not None:
        return load_config(config, overrides)
    owner = _owning_run(resume)
    if owner is None:
        raise InputError(
            f"--resume {resume} is not inside a run directory; pass --config for the run"
        )
    return load_config(owner.config_path, overrides)


def build_model(
    cfg: StairwaysConfig, venv: VecEnv, clock: TimestepClock, tensorboard_dir: Path | None
) -> BaseAlgorithm:
    """A fresh PPO or RecurrentPPO model with every hyperparameter from ``cfg.training``."""
    tc = cfg.training
    algo_cls, policy = _algo_class(tc.algo)
    lr, clip = _schedules(cfg, clock)
    if (tc.n_steps * venv.num_envs) % tc.batch_size:
        log.warning(
            "batch_size %d does not divide n_steps * n_envs = %d: the last mini-batch of every "
            "epoch is truncated",
            tc.batch_size,
            tc.n_steps * venv.num_envs,
        )
    return algo_cls(
        policy,
        venv,
        learning_rate=lr,
        clip_range=clip,
        policy_kwargs=_policy_kwargs(tc),
        tensorboard_log=str(tensorboard_dir) if tensorboard_dir is not None else None,
        seed=tc.seed,
        device=tc.device,
        verbose=0,
        **_hyperparameters(tc),
    )


# ---------------------------------------------------------------- the run
class _Run:
    """State of one :func:`train` call; methods are the steps, in order."""

    def __init__(self, cfg: StairwaysConfig, options: TrainOptions) -> None:
        if options.resume is not None and options.init_from is not None:
            raise InputError("--resume and --init-from exclude each other: pick one")
        self.cfg = cfg
        self.tc = cfg.training
        self.options = options
        self.clock = TimestepClock()
        self.run: RunDirectory
        self.manifest: Manifest
        self.resume_files: CheckpointFiles | None = None
        self.source_run: RunDirectory | None = None
        self.same_dir = False

    # -- 1. where the run lives and what it continues
    def locate(self) -> None:
        """Find the checkpoint to resume from and decide the run directory."""
        resume = self.options.resume
        if resume is None:
            return
        if resume.is_dir():
            if self.options.run_dir is not None:
                raise InputError(
                    "--resume RUN_DIR continues in that directory; drop --run-dir "
                    "(or resume from a checkpoint zip into a new --run-dir)"
                )
            self.source_run = RunDirectory.open(resume)
            self.resume_files = self.source_run.latest_checkpoint()
            self.same_dir = True
            return
        files = companion_files(resume)
        for p in (files.model, files.vecnormalize, files.reward_state):
            if not p.is_file():
                raise MissingResourceError(
                    f"cannot resume from {resume}: {p} is missing (a checkpoint needs its "
                    "VecNormalize statistics and reward state beside it)"
                )
        self.resume_files = files
        self.source_run = _owning_run(resume)

    # -- 2. data
    def data(self, store: BarStore) -> tuple[SessionPanel, Normaliser, list[str], bool]:
        """Check the split, load or fit the normaliser, build the training panel."""
        dc = self.cfg.data
        split = self.tc.split
        check = check_training_range(dc, split, allow_test_overlap=self.options.allow_test_overlap)
        normaliser: Normaliser | None = None
        if self.source_run is not None and self.source_run.normaliser_path.is_file():
            # A resumed run must see the features exactly as before.
            normaliser = Normaliser.load(self.source_run.normaliser_path)
        elif self.resume_files is not None:
            raise MissingResourceError(
                f"cannot resume from {self.resume_files.model}: no {RunDirectory.NORMALISER} "
                "found in its run directory, so the features could not be reproduced"
            )
        else:
            normaliser = fit_normaliser(
                dc, store, allow_test_overlap=self.options.allow_test_overlap
            )
        panel = build_panel(
            dc, split, store, normaliser, allow_test_overlap=self.options.allow_test_overlap
        )
        overlaps = [name for name, _ in check.overlaps]
        return panel, normaliser, overlaps, check.override

    # -- 3. the directory
    def open_directory(
        self, panel: SessionPanel, normaliser: Normaliser, overlaps: list[str], override: bool
    ) -> None:
        """Create (or reopen) the run directory and write config, command and manifest."""
        cfg, tc = self.cfg, self.tc
        if self.same_dir:
            assert self.source_run is not None
            self.run = self.source_run
            self.manifest = self.run.read_manifest()
            self._record_resume(self.manifest.status)
            if self.manifest.status == "running":
                log.warning(
                    "%s says the run is still running; resuming assumes no other process is "
                    "training it (it was killed)",
                    self.run.manifest_path,
                )
        else:
            if self.options.run_dir is not None:
                self.run = RunDirectory.at(self.options.run_dir)
            else:
                self.run = RunDirectory.create(tc.runs_dir, cfg.name, tc.seed)
            self.manifest = self._new_manifest(panel, overlaps, override)
            normaliser.save(self.run.normaliser_path)
            if self.resume_files is not None:
                self._record_resume(None)
        merged = {**self.manifest.overrides, **dict(self.options.overrides)}
        self.manifest.overrides = merged
        self.manifest.total_timesteps = tc.total_timesteps
        self.manifest.status = "running"
        self.manifest.stop_reason = None
        self.manifest.error = None
        self.manifest.end_time = None
        self.manifest.command = list(self.options.command)
        self.run.write_config(cfg, merged)
        self.run.write_command(self.options.command or ["<library call>"])
        self.run.write_manifest(self.manifest)
        log.info("run directory %s", self.run.path)

    def _record_resume(self, previous_status: str | None) -> None:
        assert self.resume_files is not None
        self.manifest.resumed_from.append(
            {
                "checkpoint": str(self.resume_files.model.resolve()),
                "timesteps": self.resume_files.timesteps,
                "previous_status": previous_status,
                "at": utc_now_iso(),
            }
        )

    def _new_manifest(self, panel: SessionPanel, overlaps: list[str], override: bool) -> Manifest:
        dc, tc = self.cfg.data, self.tc
        rng = resolve_split(dc, tc.split)
        commit, dirty = git_state()
        return Manifest(
            run_name=self.run.name,
            config_name=self.cfg.name,
            algo=tc.algo,
            seed=tc.seed,
            total_timesteps=tc.total_timesteps,
            start_time=utc_now_iso(),
            git_commit=commit,
            git_dirty=dirty,
            python=python_version(),
            platform=platform.platform(),
            versions=package_versions(),
            torch_threads=tc.torch_threads,
            data=DataProvenance(
                symbols=list(panel.symbols),
                split=tc.split,
                split_range={"start": str(rng.start), "end": str(rng.end)},
                splits={
                    k: {"start": str(v.start), "end": str(v.end)} for k, v in dc.splits.items()
                },
                panel_fingerprint=panel.fingerprint,
                n_sessions=panel.n_sessions,
                synthetic=panel.synthetic,
                store_path=str(dc.store_path),
                allow_test_overlap=override,
                overlapping_splits=overlaps,
            ),
            init_from=str(self.options.init_from) if self.options.init_from else None,
        )

    # -- 4. the env
    def base_env(self, panel: SessionPanel) -> VecEnv:
        """The batched env of the config, with any extra wrappers from the options."""
        from stairways.env.vector import make_vec_env

        tc = self.tc
        venv: VecEnv = make_vec_env(self.cfg, panel, tc.n_envs, mode="train", seed=tc.seed)
        for wrap in self.options.env_wrappers:
            venv = wrap(venv)
        return venv

    def check_models(self, venv: VecEnv) -> None:
        """Refuse a resume or init-from model that cannot run on this env, before writing."""
        algo_cls, _ = _algo_class(self.tc.algo)
        if self.resume_files is not None:
            src = self.resume_files.model
            data = _read_model_data(src, algo_cls)
            _check_spaces(src, data, venv)
            self._check_policy_kwargs(src, data)
        if self.options.init_from is not None:
            src = self.options.init_from
            data = _read_model_data(src, algo_cls)
            _check_spaces(src, data, venv)
            self._check_policy_kwargs(src, data)

    def wrap_env(self, venv: VecEnv, start_timesteps: int) -> VecEnv:
        """Timestep stamp -> VecMonitor (writing monitor.csv) -> VecNormalize."""
        venv = TimestepInfo(venv, start=start_timesteps)
        monitor = VecMonitor(venv, filename=None, info_keywords=MONITOR_KEYS)
        self._attach_monitor_file(monitor, start_timesteps)
        return self._normalize(monitor)

    def _attach_monitor_file(self, monitor: VecMonitor, start_timesteps: int) -> None:
        path = self.run.monitor_path
        if self.same_dir and path.is_file():
            header = _truncate_monitor(path, start_timesteps)
            monitor.t_start = float(header.get("t_start", monitor.t_start))
            monitor.results_writer = ResultsWriter(
                str(path), header=header, extra_keys=MONITOR_KEYS, override_existing=False
            )
        else:
            monitor.results_writer = ResultsWriter(
                str(path),
                header={"t_start": monitor.t_start, "env_id": f"stairways:{self.cfg.name}"},
                extra_keys=MONITOR_KEYS,
            )

    def _normalize(self, venv: VecEnv) -> VecNormalize:
        nc = self.tc.normalize
        stats: Path | None = None
        if self.resume_files is not None:
            stats = self.resume_files.vecnormalize
        elif self.options.init_from is not None:
            candidate = companion_files(self.options.init_from).vecnormalize
            if candidate.is_file():
                stats = candidate
            else:
                log.warning(
                    "no VecNormalize statistics beside %s (%s); the run starts fresh ones, so "
                    "the base weights see differently scaled observations at first",
                    self.options.init_from,
                    candidate.name,
                )
        if stats is None:
            return VecNormalize(
                venv,
                training=True,
                norm_obs=nc.observations,
                norm_reward=nc.rewards,
                clip_obs=nc.clip_obs,
                clip_reward=nc.clip_reward,
                gamma=self.tc.gamma,
                epsilon=nc.epsilon,
            )
        try:
            loaded = VecNormalize.load(str(stats), venv)
        except (OSError, ValueError, AssertionError, EOFError) as err:
            raise InputError(f"cannot load VecNormalize statistics {stats}: {err}") from None
        loaded.training = True
        log.info("loaded VecNormalize statistics from %s", stats)
        return loaded

    # -- 5. the model
    def model(self, venv: VecEnv) -> BaseAlgorithm:
        """New, resumed or warm-started model."""
        tc = self.tc
        algo_cls, _ = _algo_class(tc.algo)
        tb = self.run.tensorboard_dir if tc.tensorboard else None
        if self.resume_files is not None:
            src = self.resume_files.model
            lr, clip = _schedules(self.cfg, self.clock)
            model = algo_cls.load(
                src,
                env=venv,
                device=tc.device,
                custom_objects={"learning_rate": lr, "lr_schedule": lr, "clip_range": clip},
                learning_rate=lr,
                clip_range=clip,
                tensorboard_log=str(tb) if tb is not None else None,
                **_hyperparameters(tc),
            )
            # Continue the random streams where a fresh seed would not replay the run's start.
            model.set_random_seed((tc.seed + model.num_timesteps) % 2**31)
            state_path = self.resume_files.reward_state
            try:
                state = json.loads(state_path.read_text())
            except json.JSONDecodeError as err:
                raise InputError(f"reward state {state_path} is not valid JSON: {err}") from None
            _find_stairways_env(venv, "set_state").set_state(state)
            log.info("resumed from %s at %d timesteps", src, model.num_timesteps)
            return model
        model = build_model(self.cfg, venv, self.clock, tb)
        if self.options.init_from is not None:
            src = self.options.init_from
            base = algo_cls.load(
                src,
                device=tc.device,
                custom_objects={"learning_rate": 0.0, "lr_schedule": 0.0, "clip_range": 0.0},
            )
            try:
                model.policy.load_state_dict(base.policy.state_dict())
            except RuntimeError as err:
                raise InputError(
                    f"{src} has a different network shape than training.policy: {err}"
                ) from None
            log.info("initialised the policy from %s", src)
        return model

    def _check_policy_kwargs(self, src: Path, data: Mapping[str, Any]) -> None:
        saved = dict(data.get("policy_kwargs") or {})
        ours = _policy_kwargs(self.tc)
        if saved != ours:
            raise InputError(
                f"{src} was trained with policy {saved} but training.policy gives {ours}; "
                "its weights only fit the same network: make training.policy match it"
            )

    # -- 6. saving
    def save(self, model: BaseAlgorithm, files: CheckpointFiles) -> None:
        """Save model, VecNormalize statistics and reward state; the model file goes last."""
        venv = model.get_env()
        assert venv is not None
        files.model.parent.mkdir(parents=True, exist_ok=True)
        state = _find_stairways_env(venv, "get_state").get_state()
        atomic_write_text(files.reward_state, json.dumps(state, sort_keys=True))
        tmp_stats = files.vecnormalize.with_name(files.vecnormalize.name + ".tmp")
        _vecnormalize(venv).save(str(tmp_stats))
        tmp_stats.replace(files.vecnormalize)
        # SB3 adds ".zip" only to a path without a suffix; ".tmp" keeps it from doing so.
        tmp_model = files.model.with_name(files.model.name + ".tmp")
        model.save(tmp_model)
        tmp_model.replace(files.model)

    def checkpoint(
        self, model: BaseAlgorithm, episodes: EpisodeLog, timesteps: int, reason: str
    ) -> None:
        """Save a checkpoint and record it (and the best one so far) in the manifest."""
        files = self.run.checkpoint_files(timesteps)
        self.save(model, files)
        rolling = episodes.rolling(self.tc.rolling_window)
        rel = str(files.model.relative_to(self.run.path))
        m = self.manifest
        m.checkpoints = [c for c in m.checkpoints if c.timesteps != timesteps]
        m.checkpoints.append(
            CheckpointRecord(
                timesteps=timesteps,
                path=rel,
                rolling_reward=rolling,
                episodes=episodes.episodes,
                reason=reason,
            )
        )
        scored = [c for c in m.checkpoints if c.rolling_reward is not None]
        if scored:
            best = max(scored, key=lambda c: (c.rolling_reward, c.timesteps))
            m.best_checkpoint = best.path
        self.record_progress(timesteps, episodes)
        self.run.write_manifest(m)
        log.info("checkpoint %s (rolling episode reward %s)", rel, rolling)

    def record_progress(self, timesteps: int, episodes: EpisodeLog) -> None:
        """Timesteps, episodes and rolling reward into the manifest (written by the caller)."""
        self.manifest.timesteps = timesteps
        self.manifest.episodes = episodes.episodes
        self.manifest.rolling_reward = episodes.rolling(self.tc.rolling_window)

    def record_gate(
        self, name: str, timesteps: int, rolling: float | None, threshold: float, passed: bool
    ) -> None:
        """Write a quality gate verdict into the manifest."""
        self.manifest.quality_gates.append(
            GateVerdict(
                name=name,
                timesteps=timesteps,
                rolling_reward=rolling,
                threshold=threshold,
                passed=passed,
            )
        )
        self.run.write_manifest(self.manifest)

    def conclude(
        self, model: BaseAlgorithm, episodes: EpisodeLog, stop_reason: str | None
    ) -> Path | None:
        """After learn(): final gate, last checkpoint, final model; returns the final model."""
        tc = self.tc
        done = model.num_timesteps
        if stop_reason is not None:
            self.checkpoint(model, episodes, done, "speed-bump")
            self.finish("stopped", reason=stop_reason)
            return None
        rolling = episodes.rolling(tc.rolling_window)
        threshold = tc.gates.final_min_reward
        if threshold is not None:
            passed = rolling is not None and rolling >= threshold
            if not passed:
                log.warning(
                    "final quality gate missed: rolling episode reward %s < %s", rolling, threshold
                )
            self.record_gate("final", done, rolling, threshold, passed)
        self.checkpoint(model, episodes, done, "final")
        files = self.run.final_files(done)
        self.save(model, files)
        self.manifest.final_model = str(files.model.relative_to(self.run.path))
        self.finish("completed")
        return files.model

    def finish(self, status: str, reason: str | None = None, error: str | None = None) -> None:
        """Write the final status."""
        m = self.manifest
        m.status = status  # type: ignore[assignment]
        m.stop_reason = reason
        m.error = error
        m.end_time = utc_now_iso()
        self.run.write_manifest(m)


def _truncate_monitor(path: Path, timesteps: int) -> dict[str, Any]:
    """Drop monitor rows of episodes that ended after ``timesteps``; return the header.

    A run that failed or was killed after its last checkpoint logged episodes the resumed run
    will play again; keeping them would count them twice.
    """
    lines = path.read_text().splitlines(keepends=True)
    if len(lines) < 2 or not lines[0].startswith("#"):
        raise InputError(f"{path} is not in SB3 Monitor format (line 1 must be '#{{json}}')")
    header = json.loads(lines[0][1:])
    columns = lines[1].strip().split(",")
    if columns != ["r", "l", "t", *MONITOR_KEYS]:
        raise InputError(
            f"{path} has columns {columns}, expected {['r', 'l', 't', *MONITOR_KEYS]}; it was "
            "not written by this version of stairways train"
        )
    idx = columns.index("timesteps")
    kept = lines[:2]
    dropped = 0
    for line in lines[2:]:
        cells = line.strip().split(",")
        if len(cells) != len(columns):
            dropped += 1  # a line cut short by a kill
            continue
        try:
            ended = int(float(cells[idx]))
        except ValueError:
            raise InputError(f"{path}: timesteps {cells[idx]!r} is not a number") from None
        if ended <= timesteps:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        log.info("dropped %d monitor rows logged after the checkpoint at %d", dropped, timesteps)
        atomic_write_text(path, "".join(kept))
    return header


def train(cfg: StairwaysConfig, options: TrainOptions | None = None) -> TrainResult:
    """Run (or resume) one PPO training run and return its outcome.

    :param cfg: the fully resolved config (``cfg.training`` holds every hyperparameter)
    :param options: run directory, resume / init-from, overrides to record, progress bar
    :raises KeyboardInterrupt: after saving a checkpoint and marking the run interrupted
    """
    options = options or TrainOptions()
    tc = cfg.training
    state = _Run(cfg, options)
    state.locate()
    start_timesteps = state.resume_files.timesteps if state.resume_files is not None else 0
    if start_timesteps >= tc.total_timesteps:
        raise InputError(
            f"the checkpoint already has {start_timesteps} timesteps and "
            f"training.total_timesteps is {tc.total_timesteps}; pass a larger --total-timesteps"
        )

    # Seed before anything draws random numbers; one thread keeps float sums in a fixed order.
    torch.set_num_threads(tc.torch_threads)
    set_random_seed(tc.seed)

    with BarStore(cfg.data.store_path, read_only=True) as store:
        panel, normaliser, overlaps, override = state.data(store)
    if options.panel_transform is not None:
        panel = options.panel_transform(panel)
    base = state.base_env(panel)
    state.check_models(base)
    state.open_directory(panel, normaliser, overlaps, override)
    run = state.run
    venv = state.wrap_env(base, start_timesteps)
    model: BaseAlgorithm | None = None
    episodes = EpisodeLog(maxlen=max(tc.rolling_window, tc.speed_bump.window))
    if state.same_dir and run.monitor_path.is_file():
        for r in read_monitor_rewards(run.monitor_path):
            episodes.add(r)
    progress: ProgressCallback | None = None
    try:
        model = state.model(venv)
        if model.num_timesteps != start_timesteps:
            # A checkpoint's file name and its content disagree: refuse rather than guess.
            raise InputError(
                f"{state.resume_files.model if state.resume_files else 'model'} holds "
                f"{model.num_timesteps} timesteps, not {start_timesteps}"
            )
        state.clock.timesteps = model.num_timesteps
        phases = resolve_phases(tc.curriculum, tc.ent_coef)
        cap_env = _find_stairways_env(venv, "set_drawdown_cap")
        speed_bump = SpeedBumpCallback(tc.speed_bump, episodes)
        already = any(g.name == "mid_run" for g in state.manifest.quality_gates)
        callbacks: list[BaseCallback] = [
            ClockCallback(state.clock),
            CurriculumCallback(phases, cap_env.set_drawdown_cap),
            EpisodeStatsCallback(episodes),
            QualityGateCallback(
                tc.gates,
                tc.total_timesteps,
                episodes,
                tc.rolling_window,
                state.record_gate,
                already_checked=already,
            ),
            speed_bump,
            CheckpointCallback(
                tc.checkpoint_every,
                partial(state.checkpoint, model, episodes, reason="periodic"),
            ),
        ]
        if options.progress:
            # SB3 always finishes a rollout, so the run ends on the next multiple of it.
            rollout = tc.n_steps * venv.num_envs
            end = start_timesteps + -(-(tc.total_timesteps - start_timesteps) // rollout) * rollout
            progress = ProgressCallback(end, episodes, tc.rolling_window)
            callbacks.append(progress)
        callbacks.extend(options.extra_callbacks)
        started = time.perf_counter()
        model.learn(
            total_timesteps=tc.total_timesteps - start_timesteps,
            callback=CallbackList(callbacks),
            reset_num_timesteps=False,
            tb_log_name=tc.algo,
        )
        elapsed = time.perf_counter() - started
        if progress is not None:
            progress.close()
        final = state.conclude(model, episodes, speed_bump.reason)
    except KeyboardInterrupt:
        if model is not None:
            state.checkpoint(model, episodes, model.num_timesteps, "interrupted")
        state.finish("interrupted", reason="interrupted by the user (KeyboardInterrupt)")
        log.warning("run interrupted; resume it with: stairways train --resume %s", run.path)
        raise
    except Exception as err:
        # Recorded and re-raised: the directory must say why it ended, the caller must fail.
        if model is not None:
            state.record_progress(model.num_timesteps, episodes)
        state.finish("failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        if progress is not None:
            progress.close()
        venv.close()

    first_rolling = _first_rolling(run, tc.rolling_window)
    done = model.num_timesteps
    rate = (done - start_timesteps) / elapsed if elapsed > 0 else math.nan
    rolling = episodes.rolling(tc.rolling_window)
    log.info(
        "run %s %s at %d timesteps (%.0f steps/s), rolling episode reward %s",
        run.name,
        state.manifest.status,
        done,
        rate,
        rolling,
    )
    return TrainResult(
        run_dir=run.path,
        status=state.manifest.status,
        timesteps=done,
        episodes=episodes.episodes,
        rolling_reward=rolling,
        first_rolling_reward=first_rolling,
        stop_reason=state.manifest.stop_reason,
        best_checkpoint=state.manifest.best_checkpoint,
        final_model=final,
        steps_per_second=rate,
    )


def _first_rolling(run: RunDirectory, window: int) -> float | None:
    """Mean reward of the run's first ``window`` episodes (the start of the learning curve)."""
    if not run.monitor_path.is_file():
        return None
    rewards = read_monitor_rewards(run.monitor_path)
    return float(np.mean(rewards[:window])) if rewards else None
