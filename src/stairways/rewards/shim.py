"""The reward as a wrapper ("shim"): recompute the configured reward from each step's info.

The wrapped env runs the ``raw`` reward; the shim rebuilds the step-result vector from ``info``
(:func:`~stairways.market.step_state.step_from_info`), takes terminated / truncated from the step's
return values, and calls the same registered reward function the env would call internally, with
its own explicit state. With the same config, data and seed, shim and internal rewards are
identical. :class:`RewardShim` wraps the single env, :class:`VecRewardShim` the batched env.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn, VecEnvWrapper

from stairways.market.step_state import S_TERMINATED, S_TRUNCATED, step_from_info
from stairways.rewards.registry import (
    RewardSystem,
    reward_end_episode,
    reward_start_episode,
    reward_step,
)


class RewardShim(gym.Wrapper[np.ndarray, np.int64, np.ndarray, np.int64]):
    """Replace the wrapped env's reward by ``reward`` computed from info.

    :param env: a Stairways trading env (its info carries the step result)
    :param reward: the reward system to compute
    """

    def __init__(self, env: gym.Env[np.ndarray, np.int64], reward: RewardSystem) -> None:
        super().__init__(env)
        self.reward_system = reward
        self.n_tickers = int(env.get_wrapper_attr("n_tickers"))
        self.state = reward.initial_state(1)
        self._comps = np.zeros(len(reward.components), dtype=np.float64)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the env and the per-episode part of the reward state."""
        obs, info = self.env.reset(seed=seed, options=options)
        reward_start_episode(self.reward_system.rid, self.state[0], self.reward_system.params)
        return obs, info

    def step(
        self, action: np.int64
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env and recompute the reward from its info."""
        obs, _, terminated, truncated, info = self.env.step(action)
        x = step_from_info(info, self.n_tickers)
        x[S_TERMINATED] = 1.0 if terminated else 0.0
        x[S_TRUNCATED] = 1.0 if truncated else 0.0
        rs = self.reward_system
        total = reward_step(rs.rid, x, self.state[0], rs.params, self._comps)
        info["reward_components"] = dict(zip(rs.components, self._comps.tolist(), strict=True))
        if terminated or truncated:
            reward_end_episode(rs.rid, self.state[0], rs.params)
        return obs, float(total), terminated, truncated, info

    def set_drawdown_cap(self, cap: float) -> None:
        """Forward to the wrapped env."""
        self.env.get_wrapper_attr("set_drawdown_cap")(cap)

    def get_state(self) -> dict[str, Any]:
        """The shim's reward state, JSON-serialisable."""
        return self.reward_system.state_to_json(self.state)

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore reward state saved by :meth:`get_state`."""
        self.state[:] = self.reward_system.state_from_json(state, 1)


class VecRewardShim(VecEnvWrapper):
    """The vector form of :class:`RewardShim` for SB3 vector envs of Stairways envs.

    :param venv: the batched trading env (running the ``raw`` reward)
    :param reward: the reward system to compute
    """

    def __init__(self, venv: VecEnv, reward: RewardSystem) -> None:
        super().__init__(venv)
        self.reward_system = reward
        self.n_tickers = int(venv.get_attr("n_tickers")[0])
        self.state = reward.initial_state(self.num_envs)
        self._comps = np.zeros(len(reward.components), dtype=np.float64)

    def reset(self) -> np.ndarray:
        """Reset the envs and the per-episode part of every reward state row."""
        obs = self.venv.reset()
        rs = self.reward_system
        for i in range(self.num_envs):
            reward_start_episode(rs.rid, self.state[i], rs.params)
        return obs  # type: ignore[return-value]

    def step_wait(self) -> VecEnvStepReturn:
        """Step the envs and recompute every reward from its info."""
        obs, _, dones, infos = self.venv.step_wait()
        rs = self.reward_system
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        for i in range(self.num_envs):
            info = infos[i]
            if not info.get("active", True):
                continue
            done = bool(dones[i])
            timeout = done and bool(info.get("TimeLimit.truncated", False))
            x = step_from_info(info, self.n_tickers)
            x[S_TERMINATED] = 1.0 if done and not timeout else 0.0
            x[S_TRUNCATED] = 1.0 if timeout else 0.0
            rewards[i] = reward_step(rs.rid, x, self.state[i], rs.params, self._comps)
            info["reward_components"] = dict(zip(rs.components, self._comps.tolist(), strict=True))
            if done:
                reward_end_episode(rs.rid, self.state[i], rs.params)
                reward_start_episode(rs.rid, self.state[i], rs.params)
        return obs, rewards.astype(np.float32), dones, infos

    def set_drawdown_cap(self, cap: float) -> None:
        """Forward to the wrapped vector env."""
        self.venv.env_method("set_drawdown_cap", cap)

    def get_state(self) -> dict[str, Any]:
        """The shim's reward state, JSON-serialisable."""
        return self.reward_system.state_to_json(self.state)

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore reward state saved by :meth:`get_state`."""
        self.state[:] = self.reward_system.state_from_json(state, self.num_envs)
