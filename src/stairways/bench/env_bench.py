"""Throughput of the trading envs and of SB3 PPO on them (``stairways bench env``).

The envs step a random-walk panel built here: throughput does not depend on the prices, and the
benchmark must run on a fresh machine without a bar store. Figures are wall-clock rates on this
machine, measured after a warm-up step (so numba compilation is excluded). On a shared machine
other processes slow wall-clock rates down, so the env rates are also given per CPU second of
this process (``..._per_cpu_s``):

- ``single_env_steps_per_s``: :class:`TradingEnv` with uniformly random actions, including
  resets;
- ``vector_env_steps_per_s_n{N}``: env-steps per second of :class:`BatchedTradingEnv` through
  SB3's ``VecEnv`` interface (``step_async``/``step_wait``), best of three passes;
- ``vector_collect_steps_per_s_n{N}``: the same through ``BatchCore.step_collect``, the call the
  fused trainer collects its rollouts with;
- ``ppo_steps_per_s_ours_n{N}`` and ``ppo_steps_per_s_cartpole_n4``: SB3 PPO (MlpPolicy,
  n_steps=2048, other defaults) timesteps per second over whole rollouts and updates, on the
  batched env and on gymnasium's CartPole-v1 in a DummyVecEnv, measured in the same run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stairways.data.panel import SessionPanel
from stairways.env.settings import EnvConfig
from stairways.env.trading_env import TradingEnv
from stairways.env.vector import BatchedTradingEnv
from stairways.errors import InputError
from stairways.market.settings import MarketConfig
from stairways.rewards.registry import build_reward
from stairways.rewards.settings import RewardConfig

log = logging.getLogger(__name__)

PPO_N_STEPS = 2048


def random_walk_panel(n_sessions: int = 20, seed: int = 0, n_features: int = 12) -> SessionPanel:
    """Random-walk NVDA/MSFT sessions (every fifth one a 210-minute half day) for benchmarks."""
    if n_sessions < 1:
        raise InputError(f"n_sessions must be at least 1, got {n_sessions}")
    rng = np.random.default_rng(seed)
    lengths = np.array([210 if k % 5 == 4 else 390 for k in range(n_sessions)], dtype=np.int64)
    width, t = 390, 2
    start = np.array([450.0, 330.0])
    close = start * np.exp(np.cumsum(rng.normal(0.0, 8e-4, (n_sessions, width, t)), axis=1))
    open_ = np.concatenate([np.broadcast_to(start, (n_sessions, 1, t)), close[:, :-1]], axis=1)
    high = np.maximum(open_, close) * 1.0002
    low = np.minimum(open_, close) * 0.9998
    volume = rng.uniform(1e4, 1e5, (n_sessions, width, t))
    features = np.clip(rng.normal(0.0, 1.0, (n_sessions, width, t, n_features)), -5.0, 5.0)
    dates = np.datetime64("2022-01-03") + np.arange(n_sessions).astype("timedelta64[D]")
    ts = np.tile(np.arange(width, dtype=np.int64) * 60_000_000_000, (n_sessions, 1))
    return SessionPanel(
        symbols=("NVDA", "MSFT"),
        feature_names=tuple(f"f{k}" for k in range(n_features)),
        dates=dates.astype("datetime64[D]"),
        lengths=lengths,
        ts=ts,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        features=features.astype(np.float32),
        split="bench",
        synthetic=True,
        fingerprint=f"bench-random-walk-{seed}",
    )


def bench_single(
    panel: SessionPanel, steps: int, seed: int = 0, repeats: int = 3
) -> tuple[float, float]:
    """Steps per wall-clock second and per CPU second of the single env (resets included).

    The best of ``repeats`` timed passes is reported, as timeit does: the slower passes measure
    other processes on a shared machine, not the env.
    """
    env = TradingEnv(panel, reward=build_reward(RewardConfig()))
    env.reset(seed=seed)
    env.step(0)  # warm-up: compile outside the timed loop
    actions = np.random.default_rng(seed).integers(0, env.core.n_actions, steps).tolist()
    best_wall, best_cpu = 0.0, 0.0
    for _ in range(repeats):
        env.reset(seed=seed)
        start, cpu = time.perf_counter(), time.process_time()
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        best_wall = max(best_wall, steps / (time.perf_counter() - start))
        best_cpu = max(best_cpu, steps / (time.process_time() - cpu))
    return best_wall, best_cpu


def bench_vector(
    panel: SessionPanel, n_envs: int, steps: int, seed: int = 0, repeats: int = 3
) -> tuple[float, float, float, float]:
    """Env-steps per second of the batched env, through its two public stepping APIs.

    Returns (wall, CPU) rates of SB3's ``VecEnv`` interface (``step_async`` and ``step_wait``:
    new arrays and lazy infos on every step), then (wall, CPU) rates of
    :meth:`BatchCore.step_collect`, the call the fused trainer collects its rollouts with. Each
    is the best of ``repeats`` timed passes of ``steps`` vector steps with uniformly random
    actions (episode ends and session changes included), the passes of the two interleaved.
    """
    venv = BatchedTradingEnv(
        panel, MarketConfig(), EnvConfig(), build_reward(RewardConfig()), n_envs, seed=seed
    )
    venv.reset()
    core = venv.core
    actions = np.random.default_rng(seed).integers(0, core.n_actions, (steps, n_envs))
    venv.step(actions[0])  # warm-up
    core.step_collect(core.vec_actions(actions[0]))

    def vec_env() -> None:
        for k in range(steps):
            venv.step_async(actions[k])
            venv.step_wait()

    def collect() -> None:
        for k in range(steps):
            core.step_collect(core.vec_actions(actions[k]))

    best = [0.0, 0.0, 0.0, 0.0]
    total = steps * n_envs
    for _ in range(repeats):
        for slot, run in ((0, vec_env), (2, collect)):
            start, cpu = time.perf_counter(), time.process_time()
            run()
            wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
            best[slot] = max(best[slot], total / wall_s)
            best[slot + 1] = max(best[slot + 1], total / max(cpu_s, 1e-9))
    return best[0], best[1], best[2], best[3]


def _time_ppo(make_venv: Callable[[], Any], rollouts: int, seed: int) -> float:
    from stable_baselines3 import PPO

    venv = make_venv()
    model = PPO("MlpPolicy", venv, n_steps=PPO_N_STEPS, seed=seed, device="cpu", verbose=0)
    total = PPO_N_STEPS * venv.num_envs * rollouts
    start = time.perf_counter()
    model.learn(total_timesteps=total)
    elapsed = time.perf_counter() - start
    venv.close()
    return total / elapsed


def bench_ppo_ours(panel: SessionPanel, n_envs: int, rollouts: int, seed: int = 0) -> float:
    """PPO timesteps per second on the batched env (VecMonitor on top, as training uses)."""
    from stable_baselines3.common.vec_env import VecMonitor

    def make() -> Any:
        venv = BatchedTradingEnv(
            panel, MarketConfig(), EnvConfig(), build_reward(RewardConfig()), n_envs, seed=seed
        )
        venv.reset()
        venv.step(np.zeros(n_envs, dtype=np.int64))  # warm-up
        return VecMonitor(venv)

    return _time_ppo(make, rollouts, seed)


def bench_ppo_cartpole(n_envs: int, rollouts: int, seed: int = 0) -> float:
    """PPO timesteps per second on gymnasium CartPole-v1 in a DummyVecEnv."""
    from stable_baselines3.common.env_util import make_vec_env

    return _time_ppo(lambda: make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed), rollouts, seed)


def bench_vecenv_only(make_venv: Callable[[], Any], steps: int, seed: int = 0) -> float:
    """Env-steps per second of a vector env stepped with random actions and no policy."""
    venv = make_venv()
    venv.reset()
    n = venv.num_envs
    actions = np.random.default_rng(seed).integers(0, venv.action_space.n, (steps, n))
    start = time.perf_counter()
    for k in range(steps):
        venv.step(actions[k])
    elapsed = time.perf_counter() - start
    venv.close()
    return steps * n / elapsed


def run_env_bench(
    sessions: int = 20,
    single_steps: int = 200_000,
    vector_steps: int = 2_000,
    vector_envs: Sequence[int] = (1, 16, 64, 256),
    vector_repeats: int = 3,
    ppo: bool = True,
    ppo_envs: Sequence[int] = (4, 16),
    ppo_rollouts: int = 1,
    ppo_repeats: int = 2,
    torch_threads: int = 1,
    seed: int = 0,
    report: Callable[[str, float], None] | None = None,
) -> dict[str, float]:
    """Run every env benchmark; return figures by name (also passed to ``report`` as measured).

    :param sessions: sessions in the random-walk panel
    :param single_steps: steps timed on the single env
    :param vector_steps: batched steps timed per vector size
    :param vector_envs: vector sizes to time
    :param vector_repeats: timed passes per vector size and API; the best is reported
    :param ppo: also time SB3 PPO on the batched env and on CartPole-v1
    :param ppo_envs: n_envs of the PPO runs on the batched env
    :param ppo_rollouts: rollouts (each followed by its update) per PPO measurement
    :param ppo_repeats: PPO measurements per setting, interleaved across settings; the best
        is reported (other processes on a shared machine only ever slow a run down)
    :param torch_threads: torch CPU threads during PPO (1 is fastest for this small MLP on a
        shared 2-core machine and keeps the comparison stable)
    :param seed: seed of data, actions and PPO
    :param report: called with (name, value) as each figure is measured
    """
    if (
        min(single_steps, vector_steps, vector_repeats, ppo_rollouts, ppo_repeats, torch_threads)
        < 1
    ):
        raise InputError("step, rollout, repeat and thread counts must be at least 1")
    panel = random_walk_panel(sessions, seed)
    figures: dict[str, float] = {}

    def record(name: str, value: float) -> None:
        figures[name] = value
        log.debug("%s = %.0f", name, value)
        if report is not None:
            report(name, value)

    wall, cpu = bench_single(panel, single_steps, seed)
    record("single_env_steps_per_s", wall)
    record("single_env_steps_per_cpu_s", cpu)
    for n in vector_envs:
        wall, cpu, collect_wall, collect_cpu = bench_vector(
            panel, n, vector_steps, seed, vector_repeats
        )
        record(f"vector_env_steps_per_s_n{n}", wall)
        record(f"vector_env_steps_per_cpu_s_n{n}", cpu)
        record(f"vector_collect_steps_per_s_n{n}", collect_wall)
        record(f"vector_collect_steps_per_cpu_s_n{n}", collect_cpu)
    # The env's share of a PPO step: both vector envs as PPO sees them (monitor on top), no policy.
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecMonitor

    def ours4() -> Any:
        return VecMonitor(
            BatchedTradingEnv(
                panel, MarketConfig(), EnvConfig(), build_reward(RewardConfig()), 4, seed=seed
            )
        )

    record("vecenv_only_steps_per_s_ours_n4", bench_vecenv_only(ours4, vector_steps, seed))
    record(
        "vecenv_only_steps_per_s_cartpole_n4",
        bench_vecenv_only(lambda: make_vec_env("CartPole-v1", n_envs=4, seed=seed), vector_steps),
    )
    if ppo:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(torch_threads)
        try:
            best: dict[str, float] = {}
            for _ in range(ppo_repeats):
                runs = {"ppo_steps_per_s_cartpole_n4": bench_ppo_cartpole(4, ppo_rollouts, seed)}
                for n in ppo_envs:
                    runs[f"ppo_steps_per_s_ours_n{n}"] = bench_ppo_ours(
                        panel, n, ppo_rollouts, seed
                    )
                for name, value in runs.items():
                    best[name] = max(best.get(name, 0.0), value)
        finally:
            torch.set_num_threads(threads)
        for name, value in best.items():
            record(name, value)
    return figures
