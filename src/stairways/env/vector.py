"""The batched trading env: N sessions stepped at once by one compiled kernel.

:class:`BatchCore` owns the arrays and session scheduling and is shared by the single env
(N = 1, reset by the caller) and :class:`BatchedTradingEnv`, which implements stable-baselines3's
``VecEnv`` (auto-reset with ``info["terminal_observation"]`` and ``info["TimeLimit.truncated"]``).
With the same seeds, env ``i`` of the batch follows exactly the trajectory of a single env reset
with ``seed + i``: both draw sessions from the same generator in the same order.

Modes:

``train``
    Each env draws sessions in a random order: a fresh permutation of all sessions from its own
    seeded generator, one after another, reshuffled when exhausted.
``evaluation``
    Every session is played exactly once, in order: env ``i`` plays sessions ``i, i + N, ...``
    and then idles (``info["active"]`` is False, reward 0, never done). :meth:`run_evaluation`
    steps all sessions in parallel with a policy and returns one summary per session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast, overload

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvStepReturn,
)

from stairways.data.panel import SessionPanel
from stairways.env import kernels as kn
from stairways.env.settings import EnvConfig
from stairways.errors import DataValidationError, InputError, InternalError
from stairways.market.actions import action_set_id, n_actions, quantity_scale
from stairways.market.costs import cost_params, parkinson_sigma
from stairways.market.portfolio import PF_EQUITY, PF_WIDTH
from stairways.market.settings import MarketConfig
from stairways.market.step_state import S_SESSION, info_from_step, step_width
from stairways.rewards.registry import RewardSystem

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("train", "evaluation")

_INT64 = np.dtype(np.int64)


def validate_panel(panel: SessionPanel, feature_bound: float) -> None:
    """Refuse a panel the env cannot step honestly (names the session, minute and rule)."""
    if panel.n_sessions == 0:
        raise DataValidationError(f"panel of split {panel.split!r} has no sessions")
    for s in range(panel.n_sessions):
        n = int(panel.lengths[s])
        day = str(panel.dates[s])
        for name in ("open", "high", "low", "close"):
            block = getattr(panel, name)[s, :n]
            bad = ~np.isfinite(block) | (block <= 0.0)
            if bad.any():
                m, j = np.argwhere(bad)[0]
                raise DataValidationError(
                    f"panel {panel.split!r} session {day} minute {m} {panel.symbols[j]}: "
                    f"{name} must be finite and positive, got {block[m, j]}"
                )
        if np.any(panel.high[s, :n] < panel.low[s, :n]):
            m, j = np.argwhere(panel.high[s, :n] < panel.low[s, :n])[0]
            raise DataValidationError(
                f"panel {panel.split!r} session {day} minute {m} {panel.symbols[j]}: high < low"
            )
        vol = panel.volume[s, :n]
        if np.any(~np.isfinite(vol) | (vol < 0.0)):
            raise DataValidationError(
                f"panel {panel.split!r} session {day}: volume must be finite and not negative"
            )
        feats = panel.features[s, :n]
        if not np.all(np.isfinite(feats)):
            raise DataValidationError(
                f"panel {panel.split!r} session {day}: features contain NaN or infinity"
            )
        peak = float(np.abs(feats).max())
        if peak > feature_bound:
            raise DataValidationError(
                f"panel {panel.split!r} session {day}: a feature reaches {peak:.3f}, beyond "
                f"env.feature_bound {feature_bound}; raise env.feature_bound or clip features"
            )


def market_array(panel: SessionPanel, market: MarketConfig) -> np.ndarray:
    """Pack open, close, per-bar sigma and volume into one (S, L, T, 4) float64 array."""
    mkt = np.empty((*panel.open.shape, kn.M_WIDTH), dtype=np.float64)
    mkt[..., kn.M_OPEN] = panel.open
    mkt[..., kn.M_CLOSE] = panel.close
    if market.costs.impact_sigma is None:
        # padding beyond a session's length is never stepped; keep it finite anyway
        high = np.where(panel.high > 0.0, panel.high, 1.0)
        low = np.where(panel.low > 0.0, panel.low, 1.0)
        mkt[..., kn.M_SIGMA] = parkinson_sigma(np.maximum(high, low), np.minimum(high, low))
    else:
        mkt[..., kn.M_SIGMA] = market.costs.impact_sigma
    mkt[..., kn.M_VOLUME] = panel.volume
    return mkt


class BatchCore:
    """Arrays, scheduling and kernel calls for ``n_envs`` envs over one panel.

    :param panel: sessions to trade
    :param market: action set, sizing, timing and costs
    :param env_cfg: drawdown cap and observation extras
    :param reward: the reward the kernel computes (``raw`` when a shim computes it)
    :param n_envs: number of envs stepped together
    :param mode: "train" (random session order) or "evaluation" (each session once, in order)
    :param early_exit_steps: episodes the drawdown cap ends before this many steps are flagged
        early_exit
    :param auto_reset: start the next session inside the step when an episode ends
    """

    def __init__(
        self,
        panel: SessionPanel,
        market: MarketConfig,
        env_cfg: EnvConfig,
        reward: RewardSystem,
        n_envs: int,
        mode: str,
        early_exit_steps: int,
        auto_reset: bool,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"env mode must be one of {MODES}, got {mode!r}")
        if n_envs < 1:
            raise InputError(f"n_envs must be at least 1, got {n_envs}")
        validate_panel(panel, env_cfg.feature_bound)
        self.panel = panel
        self.market = market
        self.env_cfg = env_cfg
        self.reward = reward
        self.n_envs = n_envs
        self.mode = mode
        self.early_exit_steps = int(early_exit_steps)
        self.n_tickers = panel.n_tickers
        self.n_sessions = panel.n_sessions
        self.dates = [str(d) for d in panel.dates.astype("datetime64[D]")]

        self.mkt = market_array(panel, market)
        self.feats = np.ascontiguousarray(panel.features, dtype=np.float32)
        self.lengths = np.ascontiguousarray(panel.lengths, dtype=np.int64)
        t, f = panel.n_tickers, panel.n_features
        extras = [
            (env_cfg.obs_cash_fraction, -kn.CASH_FRACTION_BOUND, kn.CASH_FRACTION_BOUND),
            (env_cfg.obs_unrealised_pnl, -1.0, 1.0),
            (env_cfg.obs_drawdown, 0.0, 1.0),
            (env_cfg.obs_time_to_close, 0.0, 1.0),
        ]
        low = [-env_cfg.feature_bound] * (t * f) + [-1.0] * t
        high = [env_cfg.feature_bound] * (t * f) + [1.0] * t
        for on, lo, hi in extras:
            if on:
                low.append(lo)
                high.append(hi)
        self.obs_dim = len(low)
        self.observation_space = spaces.Box(
            low=np.array(low, dtype=np.float32),
            high=np.array(high, dtype=np.float32),
            dtype=np.float32,
        )
        self.n_actions = n_actions(market.action_set, t)
        self.action_space = spaces.Discrete(self.n_actions)

        self.ep = np.zeros(kn.EP_WIDTH, dtype=np.float64)
        self.ep[kn.EP_CAPITAL] = market.starting_capital
        self.ep[kn.EP_MAX_NOTIONAL] = market.max_position_notional
        self.ep[kn.EP_LATENCY] = market.latency_bars
        self.ep[kn.EP_FLATTEN] = 1.0 if market.flatten_at_close else 0.0
        self.ep[kn.EP_DD_CAP] = env_cfg.drawdown_cap
        self.ep[kn.EP_ACTION_SET] = action_set_id(market.action_set)
        self.ep[kn.EP_REWARD_ID] = reward.rid
        self.ep[kn.EP_AUTO_RESET] = 1.0 if auto_reset else 0.0
        self.ep[kn.EP_OBS_CASH] = float(env_cfg.obs_cash_fraction)
        self.ep[kn.EP_OBS_UPNL] = float(env_cfg.obs_unrealised_pnl)
        self.ep[kn.EP_OBS_DD] = float(env_cfg.obs_drawdown)
        self.ep[kn.EP_OBS_TTC] = float(env_cfg.obs_time_to_close)
        self.ep[kn.EP_QTY_SCALE] = quantity_scale(market.quantity_decimals)
        self.cp = cost_params(market.costs)
        self.rp = np.ascontiguousarray(reward.params, dtype=np.float64)

        n = n_envs
        self.si = np.zeros((n, kn.I_WIDTH), dtype=np.int64)
        self.si[:, kn.I_DONE] = 1
        self.pf = np.zeros((n, PF_WIDTH), dtype=np.float64)
        self.shares = np.zeros((n, t), dtype=np.float64)
        self.avg = np.zeros((n, t), dtype=np.float64)
        self.targets = np.zeros((n, t), dtype=np.float64)
        self.pend = np.zeros((n, market.latency_bars, t), dtype=np.float64)
        self.rs = reward.initial_state(n)
        self.obs = np.zeros((n, self.obs_dim), dtype=np.float32)
        self.term_obs = np.zeros((n, self.obs_dim), dtype=np.float32)
        self.rew = np.zeros(n, dtype=np.float64)
        self.term = np.zeros(n, dtype=np.bool_)
        self.trunc = np.zeros(n, dtype=np.bool_)
        self.out = np.zeros((n, step_width(t)), dtype=np.float64)
        self.comps = np.zeros((n, len(reward.components)), dtype=np.float64)
        self.scratch = np.zeros((t, 3), dtype=np.float64)
        self.actions = np.zeros(n, dtype=np.int64)

        s = self.n_sessions
        if mode == "train":
            self.queue = np.full((n, s), -1, dtype=np.int64)
        else:
            per_env = -(-s // n)
            self.queue = np.full((n, per_env + 1), -1, dtype=np.int64)
        self.si[:, kn.I_QPOS] = self.queue.shape[1]  # empty until the first reset
        self.rngs: list[np.random.Generator | None] = [None] * n
        # the kernel's arguments, gathered once: every array is only ever changed in place
        self._step_args = (
            self.actions,
            self.mkt,
            self.feats,
            self.lengths,
            self.queue,
            self.si,
            self.pf,
            self.shares,
            self.avg,
            self.targets,
            self.pend,
            self.rs,
            self.ep,
            self.cp,
            self.rp,
            self.obs,
            self.rew,
            self.term,
            self.trunc,
            self.out,
            self.comps,
            self.term_obs,
            self.scratch,
            self.n_actions,
        )
        # :func:`kernels.step_vec`'s arguments between the actions and its fresh outputs
        self._vec_args = (
            self.mkt,
            self.feats,
            self.lengths,
            self.queue,
            self.si,
            self.pf,
            self.shares,
            self.avg,
            self.targets,
            self.pend,
            self.rs,
            self.ep,
            self.cp,
            self.rp,
            self.obs,
            self.rew,
            self.term,
            self.trunc,
            self.term_obs,
            self.scratch,
            self.n_actions,
        )
        self._flags_shape = (3, n)
        self._obs_shape = self.obs.shape
        self._out_shape = self.out.shape
        self._comps_shape = self.comps.shape

    # ----- scheduling -------------------------------------------------------------------------

    def seed_env(self, i: int, seed: int | None) -> None:
        """Give env ``i`` a generator seeded with ``seed`` and restart its session order."""
        self.rngs[i] = seeding.np_random(seed)[0]
        self.refill(i)

    def set_rng(self, i: int, rng: np.random.Generator) -> None:
        """Use ``rng`` (the single env's np_random) for env ``i`` and restart its order."""
        self.rngs[i] = rng
        self.refill(i)

    def refill(self, i: int) -> None:
        """Start a new pass over the sessions for env ``i`` (a new permutation in training)."""
        if self.mode == "train":
            rng = self.rngs[i]
            if rng is None:
                rng = seeding.np_random(None)[0]
                self.rngs[i] = rng
            self.queue[i, :] = rng.permutation(self.n_sessions)
        else:
            stripe = np.arange(i, self.n_sessions, self.n_envs, dtype=np.int64)
            self.queue[i, :] = -1
            self.queue[i, : stripe.size] = stripe
        self.si[i, kn.I_QPOS] = 0

    def next_session(self, i: int) -> int:
        """Take env ``i``'s next session from its queue (refilling it when exhausted)."""
        qpos = int(self.si[i, kn.I_QPOS])
        if qpos >= self.queue.shape[1] or (self.n_envs == 1 and self.queue[i, qpos] < 0):
            self.refill(i)
            qpos = 0
        self.si[i, kn.I_QPOS] = qpos + 1
        return int(self.queue[i, qpos])

    def start(self, envs: Sequence[int], sessions: Sequence[int]) -> None:
        """Start ``sessions[k]`` on env ``envs[k]`` (a negative session idles the env)."""
        for s in sessions:
            if s >= self.n_sessions:
                raise InputError(f"session {s} does not exist; the panel has {self.n_sessions}")
        kn.start_many(
            np.asarray(envs, dtype=np.int64),
            np.asarray(sessions, dtype=np.int64),
            self.mkt,
            self.feats,
            self.lengths,
            self.si,
            self.pf,
            self.shares,
            self.avg,
            self.targets,
            self.pend,
            self.rs,
            self.ep,
            self.rp,
            self.obs,
        )

    # ----- stepping ---------------------------------------------------------------------------

    def step(self) -> None:
        """Step every env with ``self.actions``; an out-of-range action raises InputError."""
        bad = kn.step_batch(*self._step_args)
        if bad >= 0:
            raise InputError(
                f"action {int(self.actions[bad])} of env {bad} is outside [0, "
                f"{self.n_actions - 1}] for action set {self.market.action_set!r}"
            )

    def step_collect(
        self, actions: np.ndarray | None = None
    ) -> tuple[
        np.ndarray,
        np.ndarray,
        np.ndarray,
        np.ndarray,
        np.ndarray,
        np.ndarray,
        np.ndarray,
        np.ndarray | None,
    ]:
        """Step every env and return fresh arrays the caller may keep.

        :param actions: the actions, as returned by :meth:`vec_actions` (default: ``self.actions``)

        Returns (active before the step, done, truncated, reward as float32, observations,
        step results, reward components, terminal observations or None when no env ended its
        episode). One compiled call does the step and this bookkeeping, writing the step
        results and reward components straight into the returned arrays: ``self.out`` and
        ``self.comps`` keep those of the last :meth:`step`. In training mode, envs that used
        up their session queue get a new permutation afterwards.
        """
        if actions is None:
            actions = self.actions
        flags = np.empty(self._flags_shape, np.bool_)
        rew = np.empty(self.n_envs, np.float32)
        obs = np.empty(self._obs_shape, np.float32)
        out = np.empty(self._out_shape)
        comps = np.empty(self._comps_shape)
        code = kn.step_vec(actions, *self._vec_args, flags, rew, obs, out, comps)
        if code >= 0:
            raise InputError(
                f"action {int(actions[code])} of env {code} is outside [0, "
                f"{self.n_actions - 1}] for action set {self.market.action_set!r}"
            )
        term_obs = None
        code = -1 - code
        if code & kn.VEC_ANY_DONE:
            term_obs = self.term_obs.copy()
            if code & kn.VEC_EXHAUSTED:
                self.refill_exhausted()
        return (
            flags[kn.F_ACTIVE],
            flags[kn.F_DONE],
            flags[kn.F_TRUNCATED],
            rew,
            obs,
            out,
            comps,
            term_obs,
        )

    def refill_exhausted(self) -> None:
        """Training mode: give a new permutation to envs that consumed their whole queue."""
        if self.mode != "train":
            return
        width = self.queue.shape[1]
        for i in np.flatnonzero(self.si[:, kn.I_QPOS] >= width):
            self.refill(int(i))

    def vec_actions(self, actions: np.ndarray) -> np.ndarray:
        """``actions`` as :meth:`step_collect` takes them: an int64 array of one per env.

        A C-contiguous int64 array of ``n_envs`` actions is used as it is (not copied: do not
        change it before the step, as with SB3's own vector envs); anything else goes through
        :meth:`check_actions` into ``self.actions``. The kernel checks the range.
        """
        if (
            type(actions) is np.ndarray
            and actions.dtype is _INT64
            and actions.shape == self.actions.shape
            and actions.strides == self.actions.strides
        ):
            return actions
        self.check_actions(actions)
        return self.actions

    def check_actions(self, actions: np.ndarray) -> None:
        """Copy integer ``actions`` (one per env) to the kernel buffer; the kernel checks range."""
        if (
            type(actions) is np.ndarray
            and actions.shape == self.actions.shape
            and actions.dtype.kind in "iu"
        ):
            self.actions[:] = actions
            return
        a = np.asarray(actions)
        if a.size == self.n_envs:
            a = a.reshape(self.n_envs)
        if a.shape != (self.n_envs,) or a.dtype.kind not in "iuf" or np.any(a != np.round(a)):
            raise InputError(
                f"actions must be {self.n_envs} integers, got {a.tolist()} (dtype {a.dtype})"
            )
        self.actions[:] = a.astype(np.int64)

    def set_drawdown_cap(self, cap: float) -> None:
        """Change the drawdown cap (curricula do this during training); applies from now on."""
        if not 0.0 < float(cap) <= 1.0:
            raise InputError(f"drawdown cap must lie in (0, 1], got {cap}")
        self.ep[kn.EP_DD_CAP] = float(cap)

    @property
    def drawdown_cap(self) -> float:
        """The drawdown cap in force."""
        return float(self.ep[kn.EP_DD_CAP])

    def info(self, i: int) -> dict[str, Any]:
        """The info dict of env ``i``'s last step (without the terminal extras)."""
        info = info_from_step(self.out[i], self.n_tickers)
        info["reward_components"] = dict(
            zip(self.reward.components, self.comps[i].tolist(), strict=True)
        )
        return info

    def reset_info(self, i: int) -> dict[str, Any]:
        """The info dict returned by a reset of env ``i``."""
        s = int(self.si[i, kn.I_SESSION])
        return {
            "session": s,
            "session_date": self.dates[s],
            "session_length": int(self.lengths[s]),
            "equity": float(self.pf[i, PF_EQUITY]),
            "active": bool(self.si[i, kn.I_ACTIVE]),
        }

    def get_state(self) -> dict[str, Any]:
        """Reward state that outlives episodes, JSON-serialisable (for checkpoints)."""
        return self.reward.state_to_json(self.rs)

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore reward state saved by :meth:`get_state`."""
        self.rs[:] = self.reward.state_from_json(state, self.n_envs)


class CoreControls:
    """The drawdown cap and reward state of an env's :class:`BatchCore` (single or batched)."""

    core: BatchCore

    def set_drawdown_cap(self, cap: float) -> None:
        """Change the drawdown cap of every env (curricula); applies from the next step."""
        self.core.set_drawdown_cap(cap)

    @property
    def drawdown_cap(self) -> float:
        """The drawdown cap in force."""
        return self.core.drawdown_cap

    def get_state(self) -> dict[str, Any]:
        """Reward state of every env that outlives episodes, JSON-serialisable (checkpoints)."""
        return self.core.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore reward state saved by :meth:`get_state`."""
        self.core.set_state(state)


def add_episode_summary(
    info: dict[str, Any], early_exit_steps: int, session_date: str
) -> dict[str, Any]:
    """Add the episode summary keys the training monitor reads to a terminal step's info.

    Both ends of an episode are ``terminated``; the drawdown cap is the one that comes before
    the session's closing step (step ``session_length``).
    """
    steps = info["step"]
    by_drawdown = info["terminated"] > 0.5 and steps < info["session_length"]
    info["episode_pnl"] = info["equity"] - info["starting_capital"]
    info["episode_fees"] = info["fees"]
    info["episode_costs"] = info["costs"]
    info["episode_trades"] = info["trade_count"]
    info["episode_length"] = steps
    info["max_drawdown"] = info["max_drawdown"]
    info["hold_rate"] = info["hold_count"] / steps
    info["terminated_by_drawdown"] = 1 if by_drawdown else 0
    info["early_exit"] = 1 if by_drawdown and steps < early_exit_steps else 0
    info["session_date"] = session_date
    return info


class StepInfos(Sequence[dict[str, Any]]):
    """The infos of one vector step, built into dicts only when an index is read.

    Holds copies of the step's arrays, so later steps do not change it. A dict, once built, is
    kept, so changes made to it by wrappers persist.
    """

    def __init__(
        self,
        core: BatchCore,
        active: np.ndarray,
        done: np.ndarray,
        timeout: np.ndarray,
        term_obs: np.ndarray | None,
        out: np.ndarray | None = None,
        comps: np.ndarray | None = None,
    ) -> None:
        self._core = core
        # ``out`` and ``comps``: copies of the step's results already taken (else taken here)
        self._out = core.out.copy() if out is None else out
        self._comps = core.comps.copy() if comps is None else comps
        self._active = active
        self._done = done
        self._timeout = timeout
        self._term_obs = term_obs
        self._cache: list[dict[str, Any] | None] = [None] * core.n_envs

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def results(self) -> np.ndarray:
        """The step's result vectors, one row per env (``step_state`` layout; zero rows for
        envs that were idle)."""
        return self._out

    @property
    def components(self) -> np.ndarray:
        """The step's reward components, one row per env."""
        return self._comps

    def _build(self, i: int) -> dict[str, Any]:
        core = self._core
        if not self._active[i]:
            return {"active": False}
        info = info_from_step(self._out[i], core.n_tickers)
        info["reward_components"] = dict(
            zip(core.reward.components, self._comps[i].tolist(), strict=True)
        )
        info["active"] = True
        if self._done[i]:
            assert self._term_obs is not None
            info["terminal_observation"] = self._term_obs[i]
            info["TimeLimit.truncated"] = bool(self._timeout[i])
            add_episode_summary(
                info, core.early_exit_steps, core.dates[int(self._out[i, S_SESSION])]
            )
        return info

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        cached = self._cache[i]
        if cached is None:
            cached = self._build(i)
            self._cache[i] = cached
        return cached

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]


class BatchedTradingEnv(CoreControls, VecEnv):
    """SB3 ``VecEnv`` stepping ``n_envs`` sessions at once with one compiled kernel.

    :param panel: sessions to trade
    :param market: action set, sizing, timing and costs
    :param env_cfg: drawdown cap and observation extras
    :param reward: the reward computed inside the kernel
    :param n_envs: number of envs
    :param mode: "train" or "evaluation" (see the module docstring)
    :param early_exit_steps: threshold of the early_exit flag in episode summaries
    :param seed: seed of env 0 (env i uses seed + i), applied at the first reset
    """

    def __init__(
        self,
        panel: SessionPanel,
        market: MarketConfig,
        env_cfg: EnvConfig,
        reward: RewardSystem,
        n_envs: int,
        mode: str = "train",
        early_exit_steps: int = 80,
        seed: int | None = None,
    ) -> None:
        self.render_mode = None
        self.core = BatchCore(
            panel, market, env_cfg, reward, n_envs, mode, early_exit_steps, auto_reset=True
        )
        self.n_tickers = self.core.n_tickers
        self.reward_system = reward
        self._actions = self.core.actions
        super().__init__(n_envs, self.core.observation_space, self.core.action_space)
        if seed is not None:
            self.seed(seed)

    # ----- VecEnv interface -------------------------------------------------------------------

    def reset(self) -> np.ndarray:
        """Start a session on every env (applying seeds given to :meth:`seed`)."""
        core = self.core
        sessions = []
        for i in range(self.num_envs):
            seed = self._seeds[i]
            if seed is not None:
                core.seed_env(i, seed)
            elif core.mode == "evaluation" or core.rngs[i] is None:
                core.seed_env(i, None)
            sessions.append(core.next_session(i))
        core.start(range(self.num_envs), sessions)
        self.reset_infos = [core.reset_info(i) for i in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return core.obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        """Record the actions of the next step (an int64 array is kept, not copied)."""
        self._actions = self.core.vec_actions(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env; done envs start their next session at once.

        The returned arrays and infos are new on every step: the caller may keep them.
        """
        core = self.core
        active, done, trunc, rew, obs, out, comps, term_obs = core.step_collect(self._actions)
        infos = StepInfos(core, active, done, trunc, term_obs, out, comps)
        return obs, rew, done, infos  # type: ignore[return-value]

    def close(self) -> None:
        """Nothing to release: all state is in memory."""

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the batch, once per requested env (all envs share it)."""
        value = getattr(self, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the batch; every env shares it, so indices must cover all."""
        if sorted(self._indices(indices)) != list(range(self.num_envs)):
            raise InternalError("the batched env shares its attributes: set them on every env")
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the batch once; the result is repeated for every requested env."""
        idx = self._indices(indices)
        if method_name in ("set_drawdown_cap",) and sorted(idx) != list(range(self.num_envs)):
            raise InternalError(f"{method_name} applies to the whole batch: call it on every env")
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """No gymnasium wrappers sit inside the batch."""
        return [False for _ in self._indices(indices)]

    # ----- Stairways extras -------------------------------------------------------------------

    @property
    def active(self) -> np.ndarray:
        """Which envs are playing a session (evaluation mode idles envs that are finished)."""
        return self.core.si[:, kn.I_ACTIVE] == 1

    def run_evaluation(self, policy: Callable[[np.ndarray], np.ndarray]) -> list[dict[str, Any]]:
        """Play every session once in parallel; return one terminal info per session, in order.

        :param policy: maps observations (N, obs_dim) to actions (N,)
        """
        if self.core.mode != "evaluation":
            raise InternalError("run_evaluation needs an env built with mode='evaluation'")
        obs = self.reset()
        results: dict[int, dict[str, Any]] = {}
        # each env plays at most ceil(S / N) sessions of at most L steps
        bound = int(self.core.queue.shape[1]) * int(self.core.lengths.max()) + 1
        for _ in range(bound):
            if not self.active.any():
                break
            self.step_async(policy(obs))
            step_obs, _, dones, infos = self.step_wait()
            obs = cast(np.ndarray, step_obs)
            for i in np.flatnonzero(dones):
                info = infos[int(i)]
                results[int(info["session"])] = info
        else:
            raise InternalError(f"evaluation did not finish within {bound} steps")
        missing = sorted(set(range(self.core.n_sessions)) - set(results))
        if missing:
            raise InternalError(f"evaluation finished without sessions {missing}")
        log.info("evaluated %d sessions on %d envs", len(results), self.num_envs)
        return [results[s] for s in range(self.core.n_sessions)]


def find_layer(venv: Any, match: Callable[[Any], bool]) -> Any | None:
    """The outermost layer of a vector-env wrapper stack for which ``match`` holds, or None.

    SB3 wrappers (VecNormalize, VecMonitor, the reward shim) each hold the next layer in
    ``venv``; stacks are short, and the bound only guards against a cycle.
    """
    env: Any = venv
    for _ in range(32):
        if match(env):
            return env
        env = getattr(env, "venv", None)
        if env is None:
            return None
    return None


def make_vec_env(
    cfg: StairwaysConfig,
    panel: SessionPanel,
    n_envs: int,
    mode: str = "train",
    seed: int | None = None,
) -> VecEnv:
    """The batched env described by ``cfg`` (wrapped by the vector reward shim in shim mode)."""
    from stairways.rewards.registry import build_reward
    from stairways.rewards.shim import VecRewardShim

    reward = build_reward(cfg.reward)
    early = cfg.reward.refined.min_episode_length
    if cfg.reward.mode == "internal":
        return BatchedTradingEnv(panel, cfg.market, cfg.env, reward, n_envs, mode, early, seed)
    raw = build_reward(cfg.reward, "raw")
    base = BatchedTradingEnv(panel, cfg.market, cfg.env, raw, n_envs, mode, early, seed)
    return VecRewardShim(base, reward)
