"""Rewards registered by name, and the compiled dispatcher the env kernel calls.

A reward is a pure function of (previous reward state, step result, parameters): it returns the
total and writes its components. State that must outlive an episode (for example the refined
reward's decaying exploration bonus) lives in an explicit float64 row per env, so checkpoints
can save it as JSON (:meth:`RewardSystem.state_to_json`).

Registered names: ``v3`` and ``refined`` (chosen in YAML as ``reward.name``), and ``raw``: the
equity change over starting capital, which the env reports when the configured reward is
computed by the shim instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stairways.errors import ConfigError, InputError
from stairways.market.jit import core_jit
from stairways.market.step_state import S_CAPITAL, S_EQUITY, S_EQUITY_PREV
from stairways.rewards import refined, v3
from stairways.rewards.settings import RewardConfig

RAW = 0
V3 = 1
REFINED = 2
REWARD_IDS: dict[str, int] = {"raw": RAW, "v3": V3, "refined": REFINED}


@core_jit(inline=True)
def _raw_step(x: np.ndarray, state: np.ndarray, p: np.ndarray, comps: np.ndarray) -> float:
    comps[0] = (x[S_EQUITY] - x[S_EQUITY_PREV]) / x[S_CAPITAL]
    return comps[0]


@core_jit(inline=True)
def reward_step(
    rid: int, x: np.ndarray, state: np.ndarray, p: np.ndarray, comps: np.ndarray
) -> float:
    """Compute reward ``rid`` for step result ``x``; updates ``state`` and ``comps`` in place."""
    if rid == V3:
        return v3.step(x, state, p, comps)
    if rid == REFINED:
        return refined.step(x, state, p, comps)
    return _raw_step(x, state, p, comps)


@core_jit
def reward_start_episode(rid: int, state: np.ndarray, p: np.ndarray) -> None:
    """Reset the per-episode part of the state."""
    if rid == REFINED:
        refined.start_episode(state, p)


@core_jit
def reward_end_episode(rid: int, state: np.ndarray, p: np.ndarray) -> None:
    """Apply end-of-episode updates (decays, counters)."""
    if rid == REFINED:
        refined.end_episode(state, p)


@core_jit
def reward_reset_state(rid: int, state: np.ndarray, p: np.ndarray) -> None:
    """Initial state of a fresh learner."""
    if rid == REFINED:
        refined.reset_state(state, p)
    else:
        state[:] = 0.0


@dataclass(frozen=True)
class RewardSystem:
    """A registered reward with its packed parameters.

    :param name: registered name ("v3", "refined" or "raw")
    :param rid: numeric id used by the compiled code
    :param params: packed parameters
    :param components: component names, in the order they are written
    :param state_size: length of the per-env state row
    """

    name: str
    rid: int
    params: np.ndarray
    components: tuple[str, ...]
    state_size: int

    def initial_state(self, n: int) -> np.ndarray:
        """State rows (n, state_size) of a fresh learner, episodes started."""
        state = np.zeros((n, self.state_size), dtype=np.float64)
        for i in range(n):
            reward_reset_state(self.rid, state[i], self.params)
            reward_start_episode(self.rid, state[i], self.params)
        return state

    def evaluate(
        self, prev_state: np.ndarray, step_result: np.ndarray
    ) -> tuple[float, dict[str, float], np.ndarray]:
        """Pure form: (total, components by name, new state) for one step; inputs untouched."""
        state = np.array(prev_state, dtype=np.float64, copy=True)
        comps = np.zeros(len(self.components), dtype=np.float64)
        total = reward_step(
            self.rid, np.ascontiguousarray(step_result, dtype=np.float64), state, self.params, comps
        )
        return float(total), dict(zip(self.components, comps.tolist(), strict=True)), state

    def state_to_json(self, state: np.ndarray) -> dict[str, Any]:
        """A JSON-serialisable copy of the state rows."""
        return {"reward": self.name, "state": np.asarray(state, dtype=np.float64).tolist()}

    def state_from_json(self, data: dict[str, Any], n: int) -> np.ndarray:
        """State rows from :meth:`state_to_json` output; refuses another reward or shape."""
        if data.get("reward") != self.name:
            raise InputError(
                f"reward state was saved for {data.get('reward')!r}, this env uses {self.name!r}"
            )
        state = np.asarray(data.get("state"), dtype=np.float64)
        if state.shape != (n, self.state_size):
            raise InputError(
                f"reward state has shape {state.shape}, expected {(n, self.state_size)}"
            )
        return np.ascontiguousarray(state)


def build_reward(cfg: RewardConfig, name: str | None = None) -> RewardSystem:
    """The reward system registered as ``name`` (default ``cfg.name``) with its config."""
    name = cfg.name if name is None else name
    if name == "v3":
        return RewardSystem("v3", V3, v3.params(cfg.v3), v3.COMPONENTS, v3.STATE_SIZE)
    if name == "refined":
        return RewardSystem(
            "refined",
            REFINED,
            refined.params(cfg.refined),
            refined.COMPONENTS,
            refined.state_size(cfg.refined),
        )
    if name == "raw":
        return RewardSystem("raw", RAW, np.zeros(1), ("pnl",), 1)
    raise ConfigError(f"reward.name: unknown reward {name!r}; allowed: {sorted(REWARD_IDS)}")
