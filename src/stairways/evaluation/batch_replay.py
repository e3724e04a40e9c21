"""One batched replay for the agent and every baseline: all policies, all sessions, one env.

:func:`~stairways.evaluation.replay.replay` plays one policy over every session through an SB3
vector env (the reference path). Evaluating a checkpoint replays four policies over the same
sessions (the agent and three baselines), so :func:`replay_policies` builds one
:class:`~stairways.env.vector.BatchCore` with ``k * S`` envs for ``k`` policies and ``S``
sessions (env ``b * S + i`` plays session ``i`` for policy ``b``) and steps them together: one
kernel call per step for every policy, the agent's observations normalised with its frozen
VecNormalize statistics and given to its policy in one forward pass per step (the agent's own
``S`` rows, in the order the reference path gives them), the baselines' actions read from their
target tables. The envs are independent in the kernel, so every policy's trace is the one its
own replay gives; ``tests/unit/evaluation/test_batch_replay.py`` pins the equality with the
reference path, value for value.

Observations depend on the policy's own actions (positions, cash, drawdown), so nothing is
precomputed: each step's actions are decided on that step's observations. Only rewards computed
inside the env (``reward.mode: internal``) are stepped here; :func:`replay_policies` refuses the
shim mode, and the runner uses the reference path for it.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stairways.data.panel import SessionPanel
from stairways.env import kernels as kn
from stairways.env.vector import BatchCore
from stairways.errors import InternalError, StairwaysError
from stairways.evaluation.replay import BatchPolicy, ReplayResult, best_actions
from stairways.evaluation.traces import (
    FLOAT_COLUMNS,
    TICKER_FIELDS,
    Trace,
    TraceMeta,
    expected_columns,
    trace_frame_from_columns,
)
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


@dataclass(frozen=True)
class ObsNormaliser:
    """Frozen VecNormalize observation statistics, applied as VecNormalize applies them.

    ``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)`` as float32, the same
    operations in the same order as ``VecNormalize.normalize_obs`` (identical values); the
    denominator is computed once instead of at every call.
    """

    mean: np.ndarray
    scale: np.ndarray
    clip: float
    enabled: bool
    path: Path | None = None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return obs.copy()
        out: np.ndarray = np.clip((obs - self.mean) / self.scale, -self.clip, self.clip).astype(
            np.float32
        )
        return out

    @classmethod
    def load(cls, path: Path) -> ObsNormaliser:
        """Read a saved VecNormalize file (what ``frozen_normalizer`` loads)."""
        try:
            with path.open("rb") as fh:
                saved = pickle.load(fh)
            rms = saved.obs_rms
            mean = np.asarray(rms.mean)
            var = np.asarray(rms.var)
            epsilon, clip, enabled = saved.epsilon, saved.clip_obs, bool(saved.norm_obs)
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, OSError) as err:
            raise StairwaysError(f"cannot load VecNormalize statistics {path}: {err}") from err
        if isinstance(rms, dict) or mean.ndim != 1 or var.shape != mean.shape:
            raise StairwaysError(
                f"VecNormalize statistics {path} are not for flat observations (mean of shape "
                f"{getattr(mean, 'shape', '?')})"
            )
        return cls(
            mean=mean, scale=np.sqrt(var + epsilon), clip=float(clip), enabled=enabled, path=path
        )


@dataclass(frozen=True)
class AgentPlan:
    """The agent's part of a joint replay.

    :param policy: deterministic batch policy (one forward pass per call)
    :param normalise: its frozen observation statistics
    :param reward_state: the checkpoint's saved reward state (its first row is given to every
        session, as :func:`~stairways.evaluation.runner.load_reward_state` does)
    :param meta: the trace metadata
    """

    policy: BatchPolicy
    normalise: ObsNormaliser
    reward_state: Mapping[str, Any] | None
    meta: TraceMeta


@dataclass(frozen=True)
class _Block:
    name: str
    meta: TraceMeta
    table: np.ndarray | None  # baselines: best action per target state


def replay_policies(
    cfg: StairwaysConfig,
    panel: SessionPanel,
    *,
    agent: AgentPlan | None,
    baselines: Mapping[str, tuple[np.ndarray, TraceMeta]],
) -> dict[str, ReplayResult]:
    """Replay the agent (if given) and every baseline over every session of ``panel`` at once.

    :param cfg: the run's config (market, env and reward sections)
    :param panel: sessions to replay
    :param agent: the agent's policy, statistics, reward state and trace metadata
    :param baselines: per baseline name, its desired targets and trace metadata
    :returns: ``"agent"`` (when given) and every baseline name, each with its trace
    """
    from stairways.rewards.registry import build_reward

    if cfg.reward.mode != "internal":
        raise InternalError(
            "replay_policies steps rewards computed inside the env only; use the reference "
            "replay for reward.mode shim"
        )
    blocks: list[_Block] = []
    if agent is not None:
        blocks.append(_Block("agent", agent.meta, None))
    t = panel.n_tickers
    for name, (desired, meta) in baselines.items():
        want = np.asarray(desired, dtype=np.float64)
        if want.shape != (t,):
            raise StairwaysError(
                f"baseline {name}: desired targets {want} do not match {t} tickers"
            )
        blocks.append(_Block(name, meta, best_actions(want, cfg.market.action_set, t)))
    if not blocks:
        return {}
    reward = build_reward(cfg.reward)
    for b in blocks:
        if tuple(b.meta.symbols) != tuple(panel.symbols):
            raise StairwaysError(
                f"trace symbols {b.meta.symbols} differ from the panel's {panel.symbols}"
            )
        if tuple(b.meta.reward_components) != tuple(reward.components):
            raise StairwaysError(
                f"trace reward components {b.meta.reward_components} differ from the env's "
                f"{reward.components}"
            )
    s, k = panel.n_sessions, len(blocks)
    n = k * s
    core = BatchCore(
        panel,
        cfg.market,
        cfg.env,
        reward,
        n,
        "evaluation",
        cfg.reward.refined.min_episode_length,
        auto_reset=True,
    )
    sessions = np.tile(np.arange(s, dtype=np.int64), k)
    # Each env plays its one session and then idles (as env i of an S-env replay does).
    core.queue[:, :] = -1
    core.queue[:, 0] = sessions
    core.si[:, kn.I_QPOS] = 1
    if agent is not None and agent.reward_state is not None:
        rows = agent.reward_state.get("state")
        if not isinstance(rows, list) or not rows:
            raise StairwaysError("the checkpoint's reward state holds no state rows")
        core.rs[:s] = reward.state_from_json(
            {"reward": agent.reward_state.get("reward"), "state": [rows[0]] * s}, s
        )
    if agent is not None and agent.normalise.mean.shape != (core.obs_dim,):
        raise StairwaysError(
            f"VecNormalize statistics {agent.normalise.path} are for observations of shape "
            f"{agent.normalise.mean.shape}, the env gives ({core.obs_dim},); evaluate with the "
            "config the checkpoint was trained with"
        )
    core.start(range(n), sessions.tolist())
    return _run(core, panel, blocks, agent)


def _run(
    core: BatchCore, panel: SessionPanel, blocks: list[_Block], agent: AgentPlan | None
) -> dict[str, ReplayResult]:
    s, n = panel.n_sessions, core.n_envs
    length = panel.max_length
    width = core.out.shape[1]
    n_comp = core.comps.shape[1]
    # Step-major records: row v holds every env's result of vector step v (a plain copy).
    # Rows after an env's last step are never read (only its n_steps first rows are gathered).
    rec = np.empty((length, n, width), dtype=np.float64)
    rec_reward = np.empty((length, n), dtype=np.float64)
    rec_comps = np.empty((length, n, n_comp), dtype=np.float64)
    rec_action = np.empty((length, n), dtype=np.int64)
    rec_active = np.zeros((length, n), dtype=bool)
    rec_done = np.zeros((length, n), dtype=bool)
    powers = 3 ** np.arange(core.n_tickers - 1, -1, -1, dtype=np.int64)
    tables = [
        (b * s, (b + 1) * s, blk.table) for b, blk in enumerate(blocks) if blk.table is not None
    ]
    episode_start = np.ones(s, dtype=bool)
    actions = core.actions
    started = time.perf_counter()
    steps = 0
    for v in range(length + 1):
        active = core.si[:, kn.I_ACTIVE] == 1
        if not active.any():
            break
        if v == length:
            raise StairwaysError(f"replay did not finish within {length} vector steps")
        if agent is not None:
            obs = agent.normalise(core.obs[:s])
            actions[:s] = np.asarray(agent.policy(obs, episode_start)).reshape(-1)
        if tables:
            state = (core.targets.astype(np.int64) + 1) @ powers
            for lo, hi, table in tables:
                actions[lo:hi] = table[state[lo:hi]]
        core.step()
        steps += 1
        rec[v] = core.out
        rec_reward[v] = core.rew
        rec_comps[v] = core.comps
        rec_action[v] = actions
        rec_active[v] = active
        done = core.term | core.trunc
        rec_done[v] = done
        episode_start = done[:s].copy()
    seconds = time.perf_counter() - started

    n_steps = rec_active.sum(axis=0)
    _check_records(rec, rec_active, rec_done, n_steps, s, panel)
    out: dict[str, ReplayResult] = {}
    for b, blk in enumerate(blocks):
        lo, hi = b * s, (b + 1) * s
        # (session, step) pairs that happened, in session then step order
        mask = np.arange(length)[None, :] < n_steps[lo:hi, None]
        session, step = np.nonzero(mask)
        # one copy per record: every column of this block's real steps, column-major
        cols = rec[:, lo:hi, :].transpose(2, 1, 0)[:, mask]
        capital = cols[S_CAPITAL][step == 0]
        if not np.allclose(capital, blk.meta.starting_capital):
            raise StairwaysError(
                f"env starting capital {capital[0]} differs from the trace's "
                f"{blk.meta.starting_capital}"
            )
        frame = _frame(
            panel,
            blk.meta,
            cols,
            session,
            step,
            rec_action[:, lo:hi].T[mask],
            rec_reward[:, lo:hi].T[mask],
            rec_comps[:, lo:hi, :].transpose(2, 1, 0)[:, mask],
        )
        out[blk.name] = ReplayResult(
            trace=Trace(frame=frame, meta=blk.meta), seconds=seconds, vector_steps=steps
        )
    log.info(
        "replayed %d sessions of %s for %s together (%d envs, %d vector steps) in %.2f s",
        s,
        panel.split,
        ", ".join(b.name for b in blocks),
        n,
        steps,
        seconds,
    )
    return out


def _check_records(
    rec: np.ndarray,
    active: np.ndarray,
    done: np.ndarray,
    n_steps: np.ndarray,
    s: int,
    panel: SessionPanel,
) -> None:
    """Every env played its own session once, from step 1 on, without a gap, and ended it."""
    length, n = active.shape
    expected = np.arange(length)[:, None] < n_steps[None, :]
    if not np.array_equal(active, expected):
        raise StairwaysError("an env of the joint replay was idle before its session ended")
    step_no = rec[..., S_STEP]
    want = np.broadcast_to(np.arange(1, length + 1, dtype=np.float64)[:, None], (length, n))
    sess = rec[..., S_SESSION]
    own = np.broadcast_to(np.tile(np.arange(s, dtype=np.float64), n // s)[None, :], (length, n))
    if np.any((step_no != want) & expected) or np.any((sess != own) & expected):
        raise StairwaysError("the joint replay recorded a step out of its session's order")
    ended = (done & expected).sum(axis=0)
    if not np.all(ended == 1) or not np.all(done[n_steps - 1, np.arange(n)]):
        bad = [str(panel.dates[j % s]) for j in np.flatnonzero(ended != 1)[:5]]
        raise StairwaysError(f"replay did not finish every session exactly once (first: {bad})")


def _frame(
    panel: SessionPanel,
    meta: TraceMeta,
    cols: np.ndarray,
    session: np.ndarray,
    step: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    comps: np.ndarray,
) -> Any:
    """The trace table of one policy from its step-result columns (``cols[c]``: column ``c`` of
    every real step, in session then step order), written straight into the table's block.

    The values are those of the reference path's ``_frame_from_records`` (same operations on
    the same numbers, elementwise).
    """
    t = len(meta.symbols)
    floats = np.empty((len(expected_columns(meta)) - 6, len(session)), dtype=np.float64)
    row = {name: i for i, name in enumerate(FLOAT_COLUMNS)}
    pnl = floats[row["step_pnl"]]
    np.subtract(cols[S_EQUITY], cols[S_EQUITY_PREV], out=pnl)
    gross = floats[row["gross_pnl"]]
    np.add(pnl, cols[S_COMMISSION], out=gross)
    np.add(gross, cols[S_SPREAD], out=gross)
    np.add(gross, cols[S_IMPACT], out=gross)
    floats[row["fees"]] = cols[S_COMMISSION]
    floats[row["spread_cost"]] = cols[S_SPREAD]
    floats[row["impact_cost"]] = cols[S_IMPACT]
    floats[row["notional"]] = cols[S_NOTIONAL]
    floats[row["equity"]] = cols[S_EQUITY]
    floats[row["drawdown"]] = cols[S_DRAWDOWN]
    floats[row["reward"]] = reward
    base = len(FLOAT_COLUMNS)
    source = {
        "target": T_TARGET,
        "position": T_SHARES,
        "price": T_PRICE,
        "fill_qty": T_FILL_QTY,
        "fill_price": T_FILL_PRICE,
    }
    for f, name in enumerate(TICKER_FIELDS):
        for j in range(t):
            out = floats[base + f * t + j]
            values = cols[N_SCALAR + j * N_TICKER + source[name]]
            if name == "fill_price":
                qty = cols[N_SCALAR + j * N_TICKER + T_FILL_QTY]
                np.copyto(out, np.where(qty != 0.0, values, np.nan))
            else:
                out[:] = values
    base += len(TICKER_FIELDS) * t
    for j in range(len(meta.reward_components)):
        floats[base + j] = comps[j]
    return trace_frame_from_columns(
        meta=meta,
        dates=panel.dates,
        session=session,
        step=step,
        ts=panel.ts[session, step],
        action=action,
        action_changed=(cols[S_ACTION_CHANGED] > 0.5).astype(np.int64),
        floats=floats,
    )
