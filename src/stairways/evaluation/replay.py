"""Deterministic replay: play every session of a panel once, all sessions in parallel.

The replay runs the batched training env (:class:`~stairways.env.vector.BatchedTradingEnv`) in
evaluation mode with one env per session, so the fills, costs, portfolio and reward are computed
by exactly the code that trained the agent. Each vector step makes one policy call for all
sessions (``model.policy.predict`` on the observation batch, deterministic actions, no learning).
Observations go through the run's VecNormalize statistics with ``training=False`` (frozen).

The kernel's per-step result vectors are recorded as arrays and turned into the trace table of
:mod:`stairways.evaluation.traces`. A step ``j`` of a session decides on bar ``j``; its timestamp
in the trace is that bar's start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from stairways.data.panel import SessionPanel
from stairways.env import kernels as kn
from stairways.env.vector import (
    BatchCore,
    BatchedTradingEnv,
    StepInfos,
    find_layer,
    make_vec_env,
)
from stairways.errors import StairwaysError
from stairways.evaluation.traces import Trace, TraceMeta, build_trace_frame
from stairways.market.actions import n_actions, targets_after
from stairways.market.step_state import (
    N_SCALAR,
    N_TICKER,
    S_ACTION_CHANGED,
    S_CAPITAL,
    S_COMMISSION,
    S_DRAWDOWN,
    S_EQUITY,
    S_EQUITY_PREV,
    S_IMPACT,
    S_NOTIONAL,
    S_SESSION,
    S_SPREAD,
    S_STEP,
    T_FILL_PRICE,
    T_FILL_QTY,
    T_PRICE,
    T_SHARES,
    T_TARGET,
)

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig

log = logging.getLogger(__name__)

# A batch policy: (observations (N, obs_dim), episode starts (N,)) -> actions (N,).
BatchPolicy = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Builds the batch policy once the env exists (baselines read the env's current targets).
PolicyFactory = Callable[[BatchCore], BatchPolicy]


@dataclass(frozen=True)
class ReplayResult:
    """A finished replay: its trace and how long the stepping took."""

    trace: Trace
    seconds: float
    vector_steps: int
    extra: Mapping[str, Any] = field(default_factory=dict)


def base_core(venv: VecEnv) -> BatchCore:
    """The :class:`BatchCore` under any stack of SB3 vector-env wrappers."""
    env = find_layer(venv, lambda e: isinstance(e, BatchedTradingEnv))
    if env is None:
        raise StairwaysError(f"{type(venv).__name__} does not wrap a Stairways BatchedTradingEnv")
    return cast(BatchCore, env.core)


def _shim_in(venv: VecEnv) -> bool:
    """Whether the stack computes the reward in the shim (then rewards come from step returns)."""
    from stairways.rewards.shim import VecRewardShim

    return find_layer(venv, lambda e: isinstance(e, VecRewardShim)) is not None


def replay(
    venv: VecEnv,
    meta: TraceMeta,
    *,
    policy: BatchPolicy | None = None,
    policy_factory: PolicyFactory | None = None,
) -> ReplayResult:
    """Play every session of ``venv`` (built in evaluation mode) once and record the trace.

    :param venv: the batched env, possibly wrapped (VecNormalize with training off, reward shim)
    :param meta: trace metadata (symbols and reward components must match the env)
    :param policy: a batch policy
    :param policy_factory: builds the batch policy from the env core (scripted baselines);
        give exactly one of ``policy`` and ``policy_factory``
    """
    core = base_core(venv)
    if core.mode != "evaluation":
        raise StairwaysError("replay needs an env built with mode='evaluation'")
    panel = core.panel
    if tuple(meta.symbols) != tuple(panel.symbols):
        raise StairwaysError(f"trace symbols {meta.symbols} differ from the env's {panel.symbols}")
    if tuple(meta.reward_components) != tuple(core.reward.components) and not _shim_in(venv):
        raise StairwaysError(
            f"trace reward components {meta.reward_components} differ from the env's "
            f"{core.reward.components}"
        )
    act = policy_factory(core) if policy_factory is not None else policy
    if act is None or (policy is not None and policy_factory is not None):
        raise StairwaysError("replay needs exactly one of policy and policy_factory")
    shim = _shim_in(venv)
    s, length, t = panel.n_sessions, panel.max_length, panel.n_tickers
    n = core.n_envs
    width = core.out.shape[1]
    n_comp = len(meta.reward_components)
    rec = np.zeros((s, length, width), dtype=np.float64)
    rec_action = np.zeros((s, length), dtype=np.int64)
    rec_reward = np.zeros((s, length), dtype=np.float64)
    rec_comps = np.zeros((s, length, n_comp), dtype=np.float64)
    done_count = np.zeros(s, dtype=np.int64)

    started = time.perf_counter()
    obs = venv.reset()
    episode_start = np.ones(n, dtype=bool)
    # Each env plays at most ceil(S / N) sessions of at most L steps each.
    bound = (-(-s // n)) * length + 1
    steps = 0
    for _ in range(bound):
        active = core.si[:, kn.I_ACTIVE] == 1
        if not active.any():
            break
        actions = np.asarray(act(np.asarray(obs), episode_start)).reshape(-1).astype(np.int64)
        obs, rewards, dones, infos = venv.step(actions)
        steps += 1
        idx = np.flatnonzero(active)
        out, comps_now = _step_arrays(infos, core)
        rows = out[idx]
        sess = rows[:, S_SESSION].astype(np.int64)
        stp = rows[:, S_STEP].astype(np.int64) - 1
        rec[sess, stp] = rows
        rec_action[sess, stp] = actions[idx]
        if shim:
            rec_reward[sess, stp] = np.asarray(rewards, dtype=np.float64)[idx]
            for k, i in enumerate(idx):
                comps = infos[int(i)]["reward_components"]
                rec_comps[sess[k], stp[k]] = [comps[c] for c in meta.reward_components]
        else:
            rec_reward[sess, stp] = core.rew[idx]
            rec_comps[sess, stp] = comps_now[idx]
        finished = idx[np.asarray(dones)[idx]]
        np.add.at(done_count, out[finished, S_SESSION].astype(np.int64), 1)
        episode_start = np.asarray(dones, dtype=bool)
    else:
        raise StairwaysError(f"replay did not finish within {bound} vector steps")
    seconds = time.perf_counter() - started
    if not np.all(done_count == 1):
        bad = [str(panel.dates[i]) for i in np.flatnonzero(done_count != 1)[:5]]
        raise StairwaysError(f"replay did not finish every session exactly once (first: {bad})")

    n_steps = rec[:, :, S_STEP].max(axis=1).astype(np.int64)
    capital = rec[:, 0, S_CAPITAL]
    if not np.allclose(capital, meta.starting_capital):
        raise StairwaysError(
            f"env starting capital {capital[0]} differs from the trace's {meta.starting_capital}"
        )
    frame = _frame_from_records(panel, meta, rec, rec_action, rec_reward, rec_comps, n_steps, t)
    log.info(
        "replayed %d sessions (%d steps) of %s with policy %s in %.2f s",
        s,
        int(n_steps.sum()),
        panel.split,
        meta.policy,
        seconds,
    )
    return ReplayResult(trace=Trace(frame=frame, meta=meta), seconds=seconds, vector_steps=steps)


def _step_arrays(infos: Any, core: BatchCore) -> tuple[np.ndarray, np.ndarray]:
    """Step results and reward components of the vector step that returned ``infos``.

    The batched env's infos (:class:`~stairways.env.vector.StepInfos`) hold the step's own
    arrays; the core's ``out`` and ``comps`` are those of its last in-place step, which the
    vector step need not update.
    """
    if not isinstance(infos, StepInfos):
        raise StairwaysError(
            f"the vector env returned infos of type {type(infos).__name__} without the step's "
            "result arrays; replay needs the Stairways batched env's StepInfos"
        )
    out, comps = infos.results, infos.components
    if out.shape != core.out.shape or comps.shape != core.comps.shape:
        raise StairwaysError("the step's result arrays do not match the batched env")
    return out, comps


def _frame_from_records(
    panel: SessionPanel,
    meta: TraceMeta,
    rec: np.ndarray,
    rec_action: np.ndarray,
    rec_reward: np.ndarray,
    rec_comps: np.ndarray,
    n_steps: np.ndarray,
    t: int,
) -> Any:
    """Turn recorded step-result vectors into the trace table."""
    pnl = rec[..., S_EQUITY] - rec[..., S_EQUITY_PREV]
    fees = rec[..., S_COMMISSION]
    spread = rec[..., S_SPREAD]
    impact = rec[..., S_IMPACT]
    block = rec[..., N_SCALAR : N_SCALAR + N_TICKER * t].reshape(*rec.shape[:2], t, N_TICKER)
    fill_qty = block[..., T_FILL_QTY]
    fill_price = np.where(fill_qty != 0.0, block[..., T_FILL_PRICE], np.nan)
    return build_trace_frame(
        meta=meta,
        dates=panel.dates,
        n_steps=n_steps,
        ts=panel.ts[:, : rec.shape[1]],
        action=rec_action,
        action_changed=(rec[..., S_ACTION_CHANGED] > 0.5).astype(np.int64),
        per_step={
            "step_pnl": pnl,
            "gross_pnl": pnl + fees + spread + impact,
            "fees": fees,
            "spread_cost": spread,
            "impact_cost": impact,
            "notional": rec[..., S_NOTIONAL],
            "equity": rec[..., S_EQUITY],
            "drawdown": rec[..., S_DRAWDOWN],
            "reward": rec_reward,
        },
        per_ticker={
            "target": block[..., T_TARGET],
            "position": block[..., T_SHARES],
            "price": block[..., T_PRICE],
            "fill_qty": fill_qty,
            "fill_price": fill_price,
        },
        components={c: rec_comps[..., k] for k, c in enumerate(meta.reward_components)},
    )


def eval_env(cfg: StairwaysConfig, panel: SessionPanel) -> VecEnv:
    """The batched env of ``cfg`` in evaluation mode with one env per session."""
    return make_vec_env(cfg, panel, n_envs=panel.n_sessions, mode="evaluation", seed=0)


def target_policy(desired: np.ndarray, action_set: str) -> PolicyFactory:
    """A scripted policy that steers every ticker's target to ``desired`` and keeps it there.

    For every possible state of the targets (each in {-1, 0, +1}) it precomputes the action
    whose resulting targets are closest to ``desired``; among equally close actions one that
    changes nothing (a hold) wins, then the lowest index. So it works for any action set: with
    ``grid9`` it names the targets at once, with ``step5`` it walks there one step at a time.

    :param desired: targets in {-1, 0, +1}, one per ticker
    :param action_set: the env's action set name
    """
    want = np.asarray(desired, dtype=np.float64)

    def make(core: BatchCore) -> BatchPolicy:
        t = core.n_tickers
        if want.shape != (t,):
            raise StairwaysError(f"desired targets {want} do not match {t} tickers")
        table = best_actions(want, action_set, t)
        powers = 3 ** np.arange(t - 1, -1, -1, dtype=np.int64)

        def act(obs: np.ndarray, episode_start: np.ndarray) -> np.ndarray:
            # Targets are exactly -1, 0 or +1; as base-3 digits they index the table.
            state = (core.targets.astype(np.int64) + 1) @ powers
            return table[state]

        return act

    return make


def best_actions(want: np.ndarray, action_set: str, t: int) -> np.ndarray:
    """Best action for every target state, indexed by the base-3 code of targets + 1."""
    states = np.array(
        [[(code // 3 ** (t - 1 - j)) % 3 - 1 for j in range(t)] for code in range(3**t)],
        dtype=np.float64,
    )
    best = np.zeros(len(states), dtype=np.int64)
    best_score = np.full(len(states), np.inf)
    for a in range(n_actions(action_set, t)):
        after = targets_after(action_set, np.full(len(states), a), states)
        moved = np.any(after != states, axis=1)
        score = np.abs(after - want).sum(axis=1) * 2.0 + moved
        better = score < best_score
        best[better] = a
        best_score[better] = score[better]
    return best


@dataclass(frozen=True)
class SequentialSession:
    """One session replayed step by step through the single env (the reference loop)."""

    session: int
    actions: np.ndarray
    rewards: np.ndarray
    equity: np.ndarray
    fill_qty: np.ndarray


def sequential_replay(
    cfg: StairwaysConfig,
    panel: SessionPanel,
    predict: Callable[[np.ndarray, Any, np.ndarray], tuple[np.ndarray, Any]],
    *,
    normalize_obs: Callable[[np.ndarray], np.ndarray] | None = None,
    reward_state: Mapping[str, Any] | None = None,
    sessions: list[int] | None = None,
) -> list[SequentialSession]:
    """Replay sessions one at a time, one ``predict`` call per step (the slow reference).

    This is the loop the batched replay replaces; tests use it to prove both give the same
    actions and fills, and ``stairways bench eval`` times it.

    :param predict: ``model.predict``-like: (obs (1, d), state, episode_start) -> (action, state)
    :param normalize_obs: frozen observation normalisation (VecNormalize.normalize_obs)
    :param reward_state: reward state with one row, applied before every session
    :param sessions: indices to replay (default: all)
    """
    from stairways.env.trading_env import make_env

    env = make_env(cfg, panel, mode="evaluation")
    setter = getattr(env, "set_state", None)
    out: list[SequentialSession] = []
    for s in range(panel.n_sessions) if sessions is None else sessions:
        if reward_state is not None and setter is not None:
            setter(dict(reward_state))
        obs, _ = env.reset(options={"session": s})
        state: Any = None
        start = np.ones(1, dtype=bool)
        actions: list[int] = []
        rewards: list[float] = []
        equity: list[float] = []
        fills: list[np.ndarray] = []
        # A session of L bars is at most L steps; one more iteration proves termination.
        for _ in range(int(panel.lengths[s]) + 1):
            o = obs[None, :]
            if normalize_obs is not None:
                o = normalize_obs(o)
            action, state = predict(o, state, start)
            start = np.zeros(1, dtype=bool)
            a = int(np.asarray(action).reshape(-1)[0])
            obs, reward, terminated, truncated, info = env.step(a)
            actions.append(a)
            rewards.append(float(reward))
            equity.append(float(info["equity"]))
            fills.append(np.asarray(info["fill_shares"], dtype=np.float64))
            if terminated or truncated:
                break
        else:
            raise StairwaysError(f"session {s} did not end within its {panel.lengths[s]} bars")
        out.append(
            SequentialSession(
                session=s,
                actions=np.asarray(actions),
                rewards=np.asarray(rewards),
                equity=np.asarray(equity),
                fill_qty=np.asarray(fills),
            )
        )
    env.close()
    return out
