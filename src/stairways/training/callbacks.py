"""SB3 callbacks of a training run and the pure arithmetic they rely on.

The callbacks share one :class:`EpisodeLog` (episode rewards seen so far) and one
:class:`~stairways.training.schedules.TimestepClock`. Order matters and is fixed by the
trainer: the clock and curriculum first (so schedules read the right timestep), then episode
statistics, then the checks that read them (gates, speed-bump), checkpoints, progress.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from stairways.training.curriculum import PhaseValues, phase_index
from stairways.training.schedules import TimestepClock
from stairways.training.settings import QualityGatesConfig, SpeedBumpConfig

log = logging.getLogger(__name__)

__all__ = [
    "CheckpointCallback",
    "ClockCallback",
    "CurriculumCallback",
    "EpisodeLog",
    "EpisodeStatsCallback",
    "ProgressCallback",
    "QualityGateCallback",
    "SpeedBumpCallback",
    "rolling_mean",
    "rolling_sharpe",
    "speed_bump_reason",
]


# ---------------------------------------------------------------- arithmetic
def rolling_mean(rewards: Sequence[float], window: int) -> float | None:
    """Mean of the last ``window`` rewards (None when there are none)."""
    if not rewards or window < 1:
        return None
    tail = np.asarray(rewards[-window:], dtype=np.float64)
    return float(tail.mean())


def rolling_sharpe(rewards: Sequence[float], window: int) -> float | None:
    """Mean over population standard deviation of the last ``window`` rewards.

    None with fewer than two rewards. Identical rewards have no spread: the ratio is then
    0 for a zero mean and +/- infinity otherwise, so a run losing the same amount on every
    episode still counts as failing.
    """
    if len(rewards) < 2 or window < 2:
        return None
    tail = np.asarray(rewards[-window:], dtype=np.float64)
    mean = float(tail.mean())
    std = float(tail.std())
    # Relative tolerance: float noise on identical rewards must not read as spread.
    if std <= 1e-12 * max(1.0, abs(mean)):
        if mean == 0.0:
            return 0.0
        return math.copysign(math.inf, mean)
    return mean / std


def speed_bump_reason(rewards: Sequence[float], timesteps: int, cfg: SpeedBumpConfig) -> str | None:
    """Why the run must stop now, or None to continue.

    :param rewards: episode rewards so far, oldest first
    :param timesteps: timesteps done
    :param cfg: thresholds
    """
    if not cfg.enabled or timesteps < cfg.min_timesteps:
        return None
    n = min(len(rewards), cfg.window)
    if n < cfg.min_episodes:
        return None
    sharpe = rolling_sharpe(rewards, cfg.window)
    if sharpe is None or sharpe >= cfg.threshold:
        return None
    return (
        f"speed-bump: rolling Sharpe {sharpe:.3f} of the last {n} episode rewards fell below "
        f"{cfg.threshold} after {timesteps} timesteps"
    )


# ---------------------------------------------------------------- shared state
@dataclass
class EpisodeLog:
    """Episode rewards of the run (bounded) and the total number of episodes."""

    maxlen: int
    rewards: deque[float] = field(init=False)
    episodes: int = 0

    def __post_init__(self) -> None:
        self.rewards = deque(maxlen=self.maxlen)

    def add(self, reward: float) -> None:
        """Record one finished episode."""
        self.rewards.append(float(reward))
        self.episodes += 1

    def rolling(self, window: int) -> float | None:
        """Mean of the last ``window`` episode rewards."""
        return rolling_mean(list(self.rewards), window)


# ---------------------------------------------------------------- callbacks
class ClockCallback(BaseCallback):
    """Advance the timestep clock the schedules read, before every update."""

    def __init__(self, clock: TimestepClock) -> None:
        super().__init__()
        self.clock = clock

    def _on_training_start(self) -> None:
        self.clock.timesteps = self.model.num_timesteps

    def _on_step(self) -> bool:
        self.clock.timesteps = self.model.num_timesteps
        return True

    def _on_rollout_end(self) -> None:
        self.clock.timesteps = self.model.num_timesteps


class CurriculumCallback(BaseCallback):
    """Apply curriculum phases: entropy coefficient on the model, drawdown cap on the env.

    The learning rate of a phase reaches the optimizer through the lr schedule (see
    :class:`~stairways.training.schedules.StepSchedule`), which SB3 applies in ``train()``.

    :param phases: resolved phases
    :param set_drawdown_cap: applies a cap (fraction) to every environment
    """

    def __init__(
        self, phases: list[PhaseValues], set_drawdown_cap: Callable[[float], None]
    ) -> None:
        super().__init__()
        self.phases = phases
        self.set_drawdown_cap = set_drawdown_cap
        self.current: int | None = None

    def _apply(self) -> None:
        idx = phase_index(self.phases, self.model.num_timesteps)
        if idx is None or idx == self.current:
            return
        phase = self.phases[idx]
        # SB3's PPO.train() reads self.ent_coef on every update, so setting it here takes
        # effect at the next update.
        model: Any = self.model
        model.ent_coef = phase.ent_coef
        if phase.drawdown_cap is not None:
            self.set_drawdown_cap(phase.drawdown_cap)
        self.current = idx
        log.info(
            "curriculum %s from timestep %d (now %d): drawdown_cap=%s ent_coef=%s lr=%s",
            phase.name,
            phase.start,
            self.model.num_timesteps,
            phase.drawdown_cap,
            phase.ent_coef,
            phase.learning_rate,
        )
        self.logger.record("curriculum/phase", idx)

    def _on_training_start(self) -> None:
        self._apply()

    def _on_step(self) -> bool:
        self._apply()
        return True


class EpisodeStatsCallback(BaseCallback):
    """Collect finished episodes and log episode sums of the reward components.

    :param episodes: where finished episode rewards are recorded
    :param components_key: info key holding the per-step reward components (a mapping)
    :param summary_keys: episode summary keys of the final-step info logged as means
    """

    def __init__(
        self,
        episodes: EpisodeLog,
        components_key: str = "reward_components",
        summary_keys: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.episodes = episodes
        self.components_key = components_key
        self.summary_keys = tuple(summary_keys)
        self._sums: list[dict[str, float]] = []
        self._finished_components: list[dict[str, float]] = []
        self._finished_summaries: list[dict[str, float]] = []

    def _on_training_start(self) -> None:
        self._sums = [{} for _ in range(self.training_env.num_envs)]

    def _on_step(self) -> bool:
        infos: list[dict[str, Any]] = self.locals["infos"]
        dones = self.locals["dones"]
        for i, info in enumerate(infos):
            comps = info.get(self.components_key)
            if comps:
                acc = self._sums[i]
                for name, value in comps.items():
                    acc[name] = acc.get(name, 0.0) + float(value)
            if not dones[i]:
                continue
            ep = info.get("episode")
            if ep is not None:
                self.episodes.add(float(ep["r"]))
                self._finished_summaries.append(
                    {k: float(ep[k]) for k in self.summary_keys if k in ep}
                )
            self._finished_components.append(self._sums[i])
            self._sums[i] = {}
        return True

    def _on_rollout_end(self) -> None:
        # Means over the episodes finished during this rollout; one TensorBoard point per update.
        for prefix, rows in (
            ("reward_components", self._finished_components),
            ("episode", self._finished_summaries),
        ):
            names = sorted({k for row in rows for k in row})
            for name in names:
                values = [row[name] for row in rows if name in row]
                self.logger.record(f"{prefix}/{name}", float(np.mean(values)))
        rolling = self.episodes.rolling(len(self.episodes.rewards))
        if rolling is not None:
            self.logger.record("rollout/rolling_episode_reward", rolling)
        self._finished_components = []
        self._finished_summaries = []


class QualityGateCallback(BaseCallback):
    """Check the mid-run threshold once the run passes its fraction of total timesteps.

    :param cfg: thresholds
    :param total_timesteps: the run's target length
    :param episodes: episode rewards so far
    :param window: rolling window (episodes)
    :param record: receives (name, timesteps, rolling reward, threshold, passed)
    """

    def __init__(
        self,
        cfg: QualityGatesConfig,
        total_timesteps: int,
        episodes: EpisodeLog,
        window: int,
        record: Callable[[str, int, float | None, float, bool], None],
        already_checked: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.at = int(cfg.mid_run_fraction * total_timesteps)
        self.episodes = episodes
        self.window = window
        self.record = record
        self.done = already_checked or cfg.mid_run_min_reward is None

    def _on_step(self) -> bool:
        if self.done or self.model.num_timesteps < self.at:
            return True
        self.done = True
        threshold = self.cfg.mid_run_min_reward
        assert threshold is not None  # done is True otherwise
        rolling = self.episodes.rolling(self.window)
        passed = rolling is not None and rolling >= threshold
        if not passed:
            log.warning(
                "mid-run quality gate missed at %d timesteps: rolling episode reward %s < %s",
                self.model.num_timesteps,
                rolling,
                threshold,
            )
        self.record("mid_run", self.model.num_timesteps, rolling, threshold, passed)
        return True


class SpeedBumpCallback(BaseCallback):
    """Stop the run (returning False to SB3) when :func:`speed_bump_reason` says so."""

    def __init__(self, cfg: SpeedBumpConfig, episodes: EpisodeLog) -> None:
        super().__init__()
        self.cfg = cfg
        self.episodes = episodes
        self.reason: str | None = None
        self._seen = 0

    def _on_step(self) -> bool:
        # Only re-evaluate when an episode finished: the statistic cannot change otherwise.
        if self.episodes.episodes == self._seen:
            return True
        self._seen = self.episodes.episodes
        reason = speed_bump_reason(list(self.episodes.rewards), self.model.num_timesteps, self.cfg)
        if reason is None:
            return True
        self.reason = reason
        log.warning("%s; stopping the run", reason)
        return False


class CheckpointCallback(BaseCallback):
    """Save a checkpoint every ``every`` timesteps through ``save(timesteps)``."""

    def __init__(self, every: int, save: Callable[[int], None]) -> None:
        super().__init__()
        self.every = every
        self.save = save
        self._next = every

    def _on_training_start(self) -> None:
        done = self.model.num_timesteps
        self._next = (done // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.model.num_timesteps >= self._next:
            self.save(self.model.num_timesteps)
            done = self.model.num_timesteps
            self._next = (done // self.every + 1) * self.every
        return True


class ProgressCallback(BaseCallback):
    """A tqdm progress bar with timesteps per second and the rolling episode reward."""

    def __init__(self, total_timesteps: int, episodes: EpisodeLog, window: int) -> None:
        super().__init__()
        self.total = total_timesteps
        self.episodes = episodes
        self.window = window
        self._bar: Any = None
        self._last = 0.0

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm  # imported here: only the CLI shows a bar

        self._bar = tqdm(
            total=self.total, initial=self.model.num_timesteps, unit="step", dynamic_ncols=True
        )

    def _on_step(self) -> bool:
        assert self._bar is not None
        self._bar.update(self.model.num_timesteps - self._bar.n)
        now = time.monotonic()
        if now - self._last >= 0.5:
            self._last = now
            rolling = self.episodes.rolling(self.window)
            shown = "n/a" if rolling is None else f"{rolling:.4f}"
            self._bar.set_postfix_str(f"reward {shown} ({self.episodes.episodes} episodes)")
        return True

    def _on_training_end(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the bar (also called when training ends with an exception)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
