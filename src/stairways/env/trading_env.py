"""The gymnasium trading env: one episode is one session of NVDA and MSFT 1-minute bars.

The env is the N = 1 case of the batched kernel (:mod:`stairways.env.kernels`), so it cannot
disagree with :class:`~stairways.env.vector.BatchedTradingEnv`. See the kernel module for the
timing of a step (decide on bar t, fill at the open of t + latency, mark at the close) and
:mod:`stairways.market.actions` for the action sets.

Observation (float32): the per-ticker features of the bar just observed (ticker-major), then each
ticker's position as a fraction of its maximum (-1..1), then the extras switched on in
:class:`~stairways.env.settings.EnvConfig`. ``terminated`` means the episode is over: the
session closed (positions flattened) or, before that, the intraday drawdown exceeded the cap.
``truncated`` is never set, since no time limit outside the task cuts a session short
(``terminated_by_drawdown`` in the final info tells the two ends apart). ``info`` holds every
field of the step result (see :data:`~stairways.market.step_state.STEP_FIELDS`),
``reward_components``, and at the end of an episode the summary keys ``episode_pnl``,
``episode_fees`` (commissions), ``episode_costs`` (commissions, spread and impact),
``episode_trades``, ``episode_length``, ``max_drawdown``, ``hold_rate``,
``terminated_by_drawdown``, ``early_exit`` and ``session_date``.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium as gym
import numpy as np

from stairways.data.panel import SessionPanel
from stairways.env import kernels as kn
from stairways.env.settings import EnvConfig
from stairways.env.vector import BatchCore, CoreControls, add_episode_summary
from stairways.errors import InputError
from stairways.market.settings import MarketConfig
from stairways.rewards.registry import RewardSystem, build_reward
from stairways.rewards.settings import RewardConfig

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig


class TradingEnv(CoreControls, gym.Env[np.ndarray, np.int64]):
    """One session per episode, observed minute by minute.

    :param panel: sessions to trade
    :param market: action set, sizing, timing and costs
    :param env_cfg: drawdown cap and observation extras
    :param reward: reward computed by the env (default: ``v3`` with default weights)
    :param mode: "train" (random session order) or "evaluation" (every session in order,
        starting again after the last)
    :param early_exit_steps: episodes the drawdown cap ends before this many steps are flagged
        early_exit
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        panel: SessionPanel,
        market: MarketConfig | None = None,
        env_cfg: EnvConfig | None = None,
        reward: RewardSystem | None = None,
        mode: str = "train",
        early_exit_steps: int = 80,
    ) -> None:
        super().__init__()
        self.core = BatchCore(
            panel,
            market or MarketConfig(),
            env_cfg or EnvConfig(),
            reward or build_reward(RewardConfig()),
            1,
            mode,
            early_exit_steps,
            auto_reset=False,
        )
        self.observation_space = self.core.observation_space
        self.action_space = self.core.action_space
        self.n_tickers = self.core.n_tickers
        self.reward_system = self.core.reward
        self._needs_reset = True
        self._seeded = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start the next session (or ``options["session"]``); ``seed`` restarts the order."""
        super().reset(seed=seed)
        core = self.core
        if seed is not None or not self._seeded:
            core.set_rng(0, self.np_random)
            self._seeded = True
        if options and "session" in options:
            session = int(options["session"])
            if not 0 <= session < core.n_sessions:
                raise InputError(
                    f"options['session'] must lie in [0, {core.n_sessions - 1}], got {session}"
                )
        else:
            session = core.next_session(0)
        core.start([0], [session])
        self._needs_reset = False
        return core.obs[0].copy(), core.reset_info(0)

    def step(
        self, action: int | np.integer[Any] | np.ndarray
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply ``action`` at the current bar and move one minute on."""
        if self._needs_reset:
            raise InputError("the episode has ended (or never started): call reset() first")
        core = self.core
        if type(action) is int:  # the common case, without operator.index's overhead
            a = action
        else:
            try:
                a = operator.index(action)
            except TypeError:
                raise InputError(f"action must be an integer, got {action!r}") from None
        if not 0 <= a < core.n_actions:
            raise InputError(
                f"action must lie in [0, {core.n_actions - 1}] for action set "
                f"{core.market.action_set!r}, got {a}"
            )
        core.actions[0] = a
        core.step()
        terminated = bool(core.term[0])
        truncated = bool(core.trunc[0])
        info = core.info(0)
        if terminated or truncated:
            self._needs_reset = True
            add_episode_summary(
                info, core.early_exit_steps, core.dates[int(core.si[0, kn.I_SESSION])]
            )
        return core.obs[0].copy(), float(core.rew[0]), terminated, truncated, info


def make_env(cfg: StairwaysConfig, panel: SessionPanel, mode: str = "train") -> gym.Env[Any, Any]:
    """The single env described by ``cfg`` (wrapped by the reward shim in shim mode)."""
    from stairways.rewards.shim import RewardShim

    reward = build_reward(cfg.reward)
    early = cfg.reward.refined.min_episode_length
    if cfg.reward.mode == "internal":
        return TradingEnv(panel, cfg.market, cfg.env, reward, mode, early)
    base = TradingEnv(panel, cfg.market, cfg.env, build_reward(cfg.reward, "raw"), mode, early)
    return RewardShim(base, reward)
