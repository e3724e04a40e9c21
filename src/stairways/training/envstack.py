"""The wrapper stack of a training env: timestep stamp -> VecMonitor -> VecNormalize.

:class:`TimestepInfo` stamps the run's timestep count into every finished episode's info, the
monitor writes each episode to ``monitor.csv`` (continuing the file of a resumed run), and
VecNormalize keeps running statistics of observations and returns (loaded from a checkpoint
when resuming or warm-starting).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import numpy as np
from stable_baselines3.common.monitor import ResultsWriter
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor, VecNormalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from stairways.env.vector import find_layer
from stairways.errors import InputError, StairwaysError
from stairways.training.monitor import MONITOR_KEYS, truncate_monitor
from stairways.training.settings import NormalizeConfig

log = logging.getLogger(__name__)

__all__ = ["TimestepInfo", "find_stairways_env", "monitored", "normalized", "vecnormalize"]


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


def find_stairways_env(venv: VecEnv, method: str) -> Any:
    """The outermost env in the wrapper chain whose class defines ``method``.

    SB3 wrappers forward unknown attributes and ``env_method`` to the innermost env; in shim
    mode the reward state lives in the shim, not in the batched env, so the chain is walked.
    """
    env = find_layer(venv, lambda e: callable(getattr(type(e), method, None)))
    if env is None:
        raise StairwaysError(f"no environment in {type(venv).__name__} provides {method}()")
    return env


def vecnormalize(venv: VecEnv) -> VecNormalize:
    """The VecNormalize layer of a training env."""
    env = find_layer(venv, lambda e: isinstance(e, VecNormalize))
    if env is None:
        raise StairwaysError("the training env is not wrapped in VecNormalize")
    return cast(VecNormalize, env)


def monitored(
    venv: VecEnv, path: Path, start_timesteps: int, continue_file: bool, env_id: str
) -> VecMonitor:
    """Stamp timesteps and monitor episodes into ``path``.

    :param venv: the env to wrap
    :param path: the run's monitor.csv
    :param start_timesteps: timesteps already done
    :param continue_file: append to an existing file, first dropping the episodes logged after
        ``start_timesteps`` (a resumed run in its own directory)
    :param env_id: recorded in the header of a new file
    """
    monitor = VecMonitor(
        TimestepInfo(venv, start=start_timesteps), filename=None, info_keywords=MONITOR_KEYS
    )
    if continue_file and path.is_file():
        header = truncate_monitor(path, start_timesteps)
        monitor.t_start = float(header.get("t_start", monitor.t_start))
        monitor.results_writer = ResultsWriter(
            str(path), header=header, extra_keys=MONITOR_KEYS, override_existing=False
        )
    else:
        monitor.results_writer = ResultsWriter(
            str(path),
            header={"t_start": monitor.t_start, "env_id": env_id},
            extra_keys=MONITOR_KEYS,
        )
    return monitor


def normalized(venv: VecEnv, nc: NormalizeConfig, gamma: float, stats: Path | None) -> VecNormalize:
    """VecNormalize over ``venv``: fresh statistics, or those saved in ``stats``.

    :param venv: the monitored env
    :param nc: normalisation settings
    :param gamma: discount of the return the reward is normalised by
    :param stats: saved statistics of a checkpoint (resume, warm start), or None
    """
    if stats is None:
        return VecNormalize(
            venv,
            training=True,
            norm_obs=nc.observations,
            norm_reward=nc.rewards,
            clip_obs=nc.clip_obs,
            clip_reward=nc.clip_reward,
            gamma=gamma,
            epsilon=nc.epsilon,
        )
    try:
        loaded = VecNormalize.load(str(stats), venv)
    except (OSError, ValueError, AssertionError, EOFError) as err:
        raise InputError(f"cannot load VecNormalize statistics {stats}: {err}") from None
    loaded.training = True
    log.info("loaded VecNormalize statistics from %s", stats)
    return loaded
