"""The ``fused`` training backend: PPO over whole rollouts of the batched env, as arrays.

SB3's ``learn()`` spends most of its time in per-step Python around a cheap env: the policy
forward pass on small batches through distribution objects, the VecMonitor and VecNormalize
wrappers (VecMonitor builds every env's info dict on every step), buffer conversions and
callbacks. This loop does the same PPO with the same model object and the same wrappers'
state, but steps the compiled kernel of :class:`~stairways.env.vector.BatchedTradingEnv`
directly:

- observations and rewards are normalised with the run's ``VecNormalize`` layer's own running
  statistics and methods (``obs_rms``, ``ret_rms``, ``normalize_obs``, ``update_from_moments``), so
  the statistics saved beside a checkpoint mean exactly what they mean for an SB3 run;
- episode rows go to ``monitor.csv`` through the run's ``VecMonitor`` results writer (same
  columns, same float32 episode returns), and info dicts are built only for envs whose
  episode ended;
- actions are sampled from the logits of the SB3 ``ActorCriticPolicy`` of the run's PPO model
  (so saving, loading, evaluation, traces, the registry and the live loop see an ordinary SB3
  PPO zip), GAE is computed over the whole rollout in numpy, and the PPO update reproduces
  SB3's ``PPO.train`` (per-minibatch advantage normalisation, clipped surrogate, optional value
  clipping, entropy bonus, target-KL early stop, gradient clipping) on large minibatches;
- the training features are the trainer's own: schedules on the absolute timestep, curriculum
  phases, episode statistics and reward components to TensorBoard, quality gates, the
  speed-bump, periodic checkpoints, each checked after every vector step as SB3's callbacks are.

In ``reward.mode: shim`` each step goes through the reward shim (every env's info is built),
so the reward is recomputed outside the kernel as with SB3. Not supported: ``recurrent_ppo`` and
a device other than the CPU (refused when the config loads), extra SB3 callbacks and env
wrappers from library callers (refused when the run starts).

This is the default backend. Its rollout size, minibatch, epochs and learning rate default to
:data:`~stairways.training.settings.THROUGHPUT_SETTINGS` (SB3's to
:data:`~stairways.training.settings.SB3_SETTINGS`), resolved when the config loads.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.utils import safe_mean
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from stairways.env.vector import BatchedTradingEnv, StepInfos, find_layer
from stairways.errors import InputError, StairwaysError
from stairways.rewards.shim import VecRewardShim
from stairways.training.callbacks import EpisodeLog, speed_bump_reason
from stairways.training.curriculum import phase_index, resolve_phases
from stairways.training.envstack import TimestepInfo, vecnormalize
from stairways.training.monitor import MONITOR_KEYS
from stairways.training.schedules import TimestepClock
from stairways.training.settings import TrainingConfig

log = logging.getLogger(__name__)

__all__ = ["FusedHooks", "FusedPPO", "compute_gae"]


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0))).astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out: np.ndarray = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
        return out


# numpy versions of the activations of training.policy.activation (torch module names)
_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Identity": lambda x: x,
    "Tanh": np.tanh,
    "ReLU": lambda x: np.maximum(x, 0),
    "LeakyReLU": lambda x: np.where(x > 0, x, np.float32(0.01) * x),
    "ELU": _elu,
    "GELU": _gelu,
}


def _update_rms(rms: RunningMeanStd, batch: np.ndarray) -> None:
    """``RunningMeanStd.update`` in half the numpy calls (moments accumulated in float64).

    The batch's mean and variance feed SB3's own ``update_from_moments``, so the statistics
    are VecNormalize's; ``np.var`` alone cost more than the rest of a vector step's
    normalisation.
    """
    n = batch.shape[0]
    mean = batch.mean(axis=0, dtype=np.float64)
    centred = batch - mean
    var = np.einsum("i...,i...->...", centred, centred) / n
    rms.update_from_moments(mean, var, n)


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    episode_starts: np.ndarray,
    last_values: np.ndarray,
    last_dones: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns of a rollout, exactly as SB3's ``RolloutBuffer`` computes them.

    :param rewards: (T, N) rewards (normalised, with truncation bootstraps added)
    :param values: (T, N) value estimates of the observations
    :param episode_starts: (T, N) 1 where the observation starts an episode
    :param last_values: (N,) value of the observation after the last step
    :param last_dones: (N,) 1 where the last step ended an episode
    :returns: advantages and returns, both (T, N)
    """
    steps = rewards.shape[0]
    advantages = np.zeros_like(rewards, dtype=np.float32)
    last_gae = np.zeros(rewards.shape[1], dtype=np.float32)
    for t in reversed(range(steps)):
        if t == steps - 1:
            non_terminal = 1.0 - last_dones.astype(np.float32)
            next_values = last_values
        else:
            non_terminal = 1.0 - episode_starts[t + 1]
            next_values = values[t + 1]
        delta = rewards[t] + gamma * next_values * non_terminal - values[t]
        last_gae = delta + gamma * gae_lambda * non_terminal * last_gae
        advantages[t] = last_gae
    return advantages, advantages + values


@dataclass
class FusedHooks:
    """What the trainer lends the loop: episode log, clock, saving and gate recording.

    :param episodes: finished episode rewards (shared with the manifest and checkpoint ranking)
    :param clock: the timestep the schedules read
    :param checkpoint: saves a periodic checkpoint at the given timestep
    :param record_gate: writes a quality-gate verdict (name, timesteps, rolling, threshold, passed)
    :param mid_run_checked: the mid-run gate was already recorded (a resumed run)
    :param progress: called with the timestep count after every rollout (a progress bar)
    """

    episodes: EpisodeLog
    clock: TimestepClock
    checkpoint: Callable[[int], None]
    record_gate: Callable[[str, int, float | None, float, bool], None]
    mid_run_checked: bool = False
    progress: Callable[[int], None] | None = None
    timings: dict[str, float] = field(default_factory=lambda: {"rollout": 0.0, "update": 0.0})


class FusedPPO:
    """Fused rollout-and-update PPO driving an SB3 PPO model on the run's wrapped env.

    :param model: the run's PPO model (fresh, resumed or warm-started); its policy, optimizer,
        schedules, logger and ``num_timesteps`` are used and updated in place
    :param venv: the wrapped training env (VecNormalize -> VecMonitor -> TimestepInfo -> batch)
    :param tc: the training config
    :param hooks: episode log, clock, checkpointing and gate recording of the run
    """

    def __init__(self, model: PPO, venv: VecEnv, tc: TrainingConfig, hooks: FusedHooks) -> None:
        if tc.algo != "ppo":
            raise InputError("training.backend 'fused' trains training.algo 'ppo' only")
        base = find_layer(venv, lambda e: isinstance(e, BatchedTradingEnv))
        monitor = find_layer(venv, lambda e: isinstance(e, VecMonitor))
        stamp = find_layer(venv, lambda e: isinstance(e, TimestepInfo))
        if base is None or monitor is None or stamp is None:
            raise StairwaysError(
                "the fused backend needs VecNormalize -> VecMonitor -> TimestepInfo -> "
                f"BatchedTradingEnv, got {type(venv).__name__}"
            )
        self.model = model
        self.venv = venv
        self.tc = tc
        self.hooks = hooks
        self.base = cast(BatchedTradingEnv, base)
        self.core = self.base.core
        self.monitor = cast(VecMonitor, monitor)
        self.stamp = cast(TimestepInfo, stamp)
        self.vn = vecnormalize(venv)
        # reward.mode shim: the env runs the raw reward and the shim recomputes it from infos
        shim = find_layer(venv, lambda e: isinstance(e, VecRewardShim))
        self.shim = cast(VecRewardShim, shim) if shim is not None else None
        self.components: tuple[str, ...] = tuple(
            self.shim.reward_system.components
            if self.shim is not None
            else self.core.reward.components
        )
        self.policy = model.policy
        self.phases = resolve_phases(tc.curriculum, tc.ent_coef)
        self.phase: int | None = None
        self.gate_at = int(tc.gates.mid_run_fraction * tc.total_timesteps)
        self.gate_done = hooks.mid_run_checked or tc.gates.mid_run_min_reward is None
        self.next_checkpoint = 0
        self.stop_reason: str | None = None
        self._seen_episodes = hooks.episodes.episodes
        self.rng = np.random.default_rng(tc.seed)
        n = self.core.n_envs
        self.ep_returns = np.zeros(n, dtype=np.float32)
        self.ep_lengths = np.zeros(n, dtype=np.int64)
        self.comp_sums = np.zeros((n, len(self.components)), dtype=np.float64)
        self.finished_comps: list[np.ndarray] = []
        self.finished_summaries: list[dict[str, float]] = []

    # ------------------------------------------------------------------ policy pieces
    def _heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and values of the SB3 policy (its feature extractor is a flatten)."""
        features = self.policy.extract_features(obs, self.policy.pi_features_extractor)
        latent_pi, latent_vf = self.policy.mlp_extractor(features)
        logits = self.policy.action_net(latent_pi)
        values = self.policy.value_net(latent_vf).flatten()
        return logits, values

    def _numpy_net(self) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """The policy's forward pass in numpy with the current weights (rollouts only).

        A rollout runs the network on one small batch per step, where torch's per-operator
        overhead costs more than the arithmetic; the update runs in torch on large batches.
        """
        ext = self.policy.mlp_extractor

        def layers(seq: torch.nn.Module) -> list[tuple[np.ndarray, np.ndarray, str]]:
            out: list[tuple[np.ndarray, np.ndarray, str]] = []
            mods = list(seq.children())
            for k, mod in enumerate(mods):
                if isinstance(mod, torch.nn.Linear):
                    act = type(mods[k + 1]).__name__ if k + 1 < len(mods) else "Identity"
                    w = mod.weight.detach().numpy().T.copy()
                    b = mod.bias.detach().numpy().copy()
                    out.append((w, b, act))
            return out

        pi = layers(ext.policy_net)
        vf = layers(ext.value_net)
        head_pi = layers(torch.nn.Sequential(self.policy.action_net))
        head_vf = layers(torch.nn.Sequential(self.policy.value_net))

        def run(x: np.ndarray, stack: list[tuple[np.ndarray, np.ndarray, str]]) -> np.ndarray:
            for w, b, act in stack:
                x = x @ w + b
                x = _ACTIVATIONS[act](x)
            return x

        def forward(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            logits = run(run(obs, pi), head_pi)
            values = run(run(obs, vf), head_vf)[:, 0]
            return logits, values

        return forward

    def _values(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            _, values = self._heads(torch.as_tensor(obs))
        out: np.ndarray = values.numpy()
        return out

    # ------------------------------------------------------------------ per-step features
    def _apply_curriculum(self, steps: int) -> None:
        idx = phase_index(self.phases, steps)
        if idx is None or idx == self.phase:
            return
        phase = self.phases[idx]
        self.model.ent_coef = phase.ent_coef
        if phase.drawdown_cap is not None:
            self.base.set_drawdown_cap(phase.drawdown_cap)
        self.phase = idx
        log.info(
            "curriculum %s from timestep %d (now %d): drawdown_cap=%s ent_coef=%s lr=%s",
            phase.name,
            phase.start,
            steps,
            phase.drawdown_cap,
            phase.ent_coef,
            phase.learning_rate,
        )
        self.model.logger.record("curriculum/phase", idx)

    def _after_step(self) -> bool:
        """Clock, curriculum, gate, speed-bump and checkpoint after one vector step."""
        steps = self.model.num_timesteps
        self.hooks.clock.timesteps = steps
        self._apply_curriculum(steps)
        episodes = self.hooks.episodes
        if not self.gate_done and steps >= self.gate_at:
            self.gate_done = True
            threshold = self.tc.gates.mid_run_min_reward
            assert threshold is not None
            rolling = episodes.rolling(self.tc.rolling_window)
            passed = rolling is not None and rolling >= threshold
            if not passed:
                log.warning(
                    "mid-run quality gate missed at %d timesteps: rolling episode reward %s < %s",
                    steps,
                    rolling,
                    threshold,
                )
            self.hooks.record_gate("mid_run", steps, rolling, threshold, passed)
        go_on = True
        if episodes.episodes != self._seen_episodes:
            self._seen_episodes = episodes.episodes
            reason = speed_bump_reason(list(episodes.rewards), steps, self.tc.speed_bump)
            if reason is not None:
                self.stop_reason = reason
                log.warning("%s; stopping the run", reason)
                go_on = False
        if steps >= self.next_checkpoint:
            self.hooks.checkpoint(steps)
            every = self.tc.checkpoint_every
            self.next_checkpoint = (steps // every + 1) * every
        return go_on

    def _episodes_ended(self, done: np.ndarray, infos: StepInfos) -> None:
        """Monitor rows, episode log and reward-component sums of the envs that finished."""
        monitor = self.monitor
        writer = monitor.results_writer
        for i in np.flatnonzero(done):
            k = int(i)
            info = infos[k]
            info["timesteps"] = self.stamp.timesteps
            row: dict[str, Any] = {
                "r": self.ep_returns[k],
                "l": self.ep_lengths[k],
                "t": round(time.time() - monitor.t_start, 6),
            }
            for key in MONITOR_KEYS:
                row[key] = info[key]
            monitor.episode_count += 1
            if writer is not None:
                writer.write_row(row)
            self.hooks.episodes.add(float(row["r"]))
            # what VecMonitor's "episode" info gives SB3's rollout/ep_rew_mean and ep_len_mean
            buffer = self.model.ep_info_buffer
            if buffer is not None:
                buffer.append({"r": row["r"], "l": row["l"], "t": row["t"]})
            self.finished_comps.append(self.comp_sums[k].copy())
            self.ep_returns[k] = 0.0
            self.ep_lengths[k] = 0
            self.comp_sums[k] = 0.0

    def _log_rollout(self) -> None:
        logger = self.model.logger
        if self.finished_comps:
            means = np.mean(np.stack(self.finished_comps), axis=0)
            for name, value in zip(self.components, means.tolist(), strict=True):
                logger.record(f"reward_components/{name}", float(value))
        rolling = self.hooks.episodes.rolling(len(self.hooks.episodes.rewards))
        if rolling is not None:
            logger.record("rollout/rolling_episode_reward", rolling)
        self.finished_comps = []

    def _shim_step(
        self, act: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, StepInfos, np.ndarray]:
        """One vector step through the reward shim (reward.mode shim).

        The shim recomputes every env's reward from its info, so every info dict is built:
        slower than the kernel's own reward, and identical to it (the shim's contract).
        """
        shim = self.shim
        assert shim is not None
        shim.step_async(act)
        obs, rewards, dones, infos = shim.step_wait()
        comps = np.array(
            [[info["reward_components"][c] for c in self.components] for info in infos],
            dtype=np.float64,
        )
        return (
            cast(np.ndarray, obs),
            np.asarray(rewards, dtype=np.float32),
            np.asarray(dones, dtype=bool),
            cast(StepInfos, infos),
            comps,
        )

    # ------------------------------------------------------------------ rollout
    def collect(
        self, buf: dict[str, np.ndarray]
    ) -> tuple[bool, int, np.ndarray | None, np.ndarray | None]:
        """Fill ``buf`` with one rollout; returns (continue, steps filled, last values, dones)."""
        core, vn, model = self.core, self.vn, self.model
        n = core.n_envs
        gamma = self.tc.gamma
        obs = cast(np.ndarray, model._last_obs)
        starts = cast(np.ndarray, model._last_episode_starts).astype(np.float32)
        self.policy.set_training_mode(False)
        net = self._numpy_net()
        rng = self.rng
        rows = np.arange(n)
        done = np.zeros(n, dtype=bool)
        for t in range(self.tc.n_steps):
            logits, values = net(obs)
            shifted = logits - logits.max(axis=1, keepdims=True)
            logp_all = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            cdf = np.cumsum(np.exp(logp_all), axis=1)
            u = rng.random(n, dtype=np.float32)[:, None] * cdf[:, -1:]
            act = np.minimum((cdf < u).sum(axis=1), logits.shape[1] - 1)
            logp = logp_all[rows, act]
            infos: StepInfos | None = None
            if self.shim is None:
                # one compiled call; every returned array is new (kept below as VecNormalize's
                # old_obs and old_reward and the next rollout's episode starts)
                active, done, trunc, rewards32, raw_obs, out, comps, term_obs = core.step_collect(
                    core.vec_actions(act)
                )
                if term_obs is not None:
                    infos = StepInfos(core, active, done, trunc, term_obs, out, comps)
            else:
                raw_obs, rewards32, done, infos, comps = self._shim_step(act)
            # VecMonitor and the timestep stamp
            self.stamp.timesteps += n
            self.ep_returns += rewards32
            self.ep_lengths += 1
            self.comp_sums += comps
            if infos is not None:
                self._episodes_ended(done, infos)
            # VecNormalize, with its own statistics and methods
            vn.old_obs = raw_obs
            vn.old_reward = rewards32
            if vn.norm_obs:
                _update_rms(cast(RunningMeanStd, vn.obs_rms), raw_obs)
            new_obs = cast(np.ndarray, vn.normalize_obs(raw_obs))
            vn.returns = vn.returns * vn.gamma + rewards32  # VecNormalize._update_reward
            _update_rms(vn.ret_rms, vn.returns)
            norm_rewards = vn.normalize_reward(rewards32).astype(np.float32)
            vn.returns[done] = 0
            model.num_timesteps += n
            if not self._after_step():
                return False, t, None, None
            if infos is not None and core.trunc.any():
                # SB3 bootstraps a truncated episode with the value of its terminal observation.
                for i in np.flatnonzero(core.trunc & done):
                    k = int(i)
                    term = cast(np.ndarray, vn.normalize_obs(infos[k]["terminal_observation"]))
                    norm_rewards[k] += gamma * float(self._values(term[None, :])[0])
            buf["obs"][t] = obs
            buf["actions"][t] = act
            buf["logp"][t] = logp
            buf["values"][t] = values
            buf["rewards"][t] = norm_rewards
            buf["starts"][t] = starts
            obs = new_obs
            starts = done.astype(np.float32)
        model._last_obs = obs
        model._last_episode_starts = done
        return True, self.tc.n_steps, self._values(obs), done

    # ------------------------------------------------------------------ update
    def update(self, buf: dict[str, np.ndarray], adv: np.ndarray, returns: np.ndarray) -> None:
        """SB3's PPO.train on the flattened rollout, minibatch by minibatch."""
        model, policy, tc = self.model, self.policy, self.tc
        policy.set_training_mode(True)
        schedule: Any = model.lr_schedule
        lr = float(schedule(model._current_progress_remaining))
        for group in policy.optimizer.param_groups:
            group["lr"] = lr
        clip_schedule: Any = model.clip_range
        clip = float(clip_schedule(model._current_progress_remaining))
        clip_vf = tc.clip_range_vf
        obs = torch.as_tensor(buf["obs"].reshape(-1, buf["obs"].shape[-1]))
        actions = torch.as_tensor(buf["actions"].reshape(-1))
        old_logp = torch.as_tensor(buf["logp"].reshape(-1))
        old_values = torch.as_tensor(buf["values"].reshape(-1))
        advantages = torch.as_tensor(adv.reshape(-1))
        rets = torch.as_tensor(returns.reshape(-1))
        size = obs.shape[0]
        params = list(policy.parameters())
        optimizer = policy.optimizer
        # The same Adam update through torch's fused kernel, and the gradient norm through its
        # foreach kernels: one call each instead of a few per parameter tensor (about a fifth of
        # a minibatch step at 1024 samples). The groups' own flags come back after the update,
        # so the saved optimizer state is the one SB3 builds.
        saved_flags = [(g.get("fused"), g.get("foreach")) for g in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["fused"], group["foreach"] = True, None
        rng = np.random.default_rng([tc.seed, model.num_timesteps])
        ent_coef = float(model.ent_coef)
        pg_losses: list[torch.Tensor] = []
        v_losses: list[torch.Tensor] = []
        ent_losses: list[torch.Tensor] = []
        clip_fracs: list[torch.Tensor] = []
        approx_kl = torch.zeros(())
        last_loss: torch.Tensor | None = None
        epochs_done = 0
        stop = False
        try:
            for _ in range(tc.n_epochs):
                order = torch.as_tensor(rng.permutation(size))
                for lo in range(0, size, tc.batch_size):
                    # a minibatch of the whole rollout is the rollout itself, in any order
                    idx = order[lo : lo + tc.batch_size] if tc.batch_size < size else slice(None)
                    logits, values = self._heads(obs[idx])
                    logp_all = torch.log_softmax(logits, dim=-1)
                    act = actions[idx]
                    logp = logp_all.gather(1, act.unsqueeze(1)).squeeze(1)
                    entropy = -(logp_all.exp() * logp_all).sum(-1)
                    a = advantages[idx]
                    if a.numel() > 1:
                        a = (a - a.mean()) / (a.std() + 1e-8)
                    log_ratio = logp - old_logp[idx]
                    ratio = torch.exp(log_ratio)
                    pg_loss = -torch.min(
                        a * ratio, a * torch.clamp(ratio, 1 - clip, 1 + clip)
                    ).mean()
                    if clip_vf is None:
                        pred = values
                    else:
                        ov = old_values[idx]
                        pred = ov + torch.clamp(values - ov, -clip_vf, clip_vf)
                    v_loss = torch.nn.functional.mse_loss(rets[idx], pred)
                    ent_loss = -entropy.mean()
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - log_ratio).mean()
                        clip_fracs.append(((ratio - 1).abs() > clip).float().mean())
                    pg_losses.append(pg_loss.detach())
                    v_losses.append(v_loss.detach())
                    ent_losses.append(ent_loss.detach())
                    if tc.target_kl is not None and float(approx_kl) > 1.5 * tc.target_kl:
                        stop = True
                        log.debug("early stop at epoch %d: approx_kl %.4f", epochs_done, approx_kl)
                        break
                    loss = pg_loss + ent_coef * ent_loss + tc.vf_coef * v_loss
                    last_loss = loss.detach()
                    optimizer.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, tc.max_grad_norm, foreach=True)
                    optimizer.step()
                epochs_done += 1
                if stop:
                    break
        finally:
            for group, (fused, foreach) in zip(optimizer.param_groups, saved_flags, strict=True):
                group["fused"], group["foreach"] = fused, foreach
        model._n_updates += epochs_done
        logger = model.logger
        if pg_losses:
            logger.record("train/policy_gradient_loss", float(torch.stack(pg_losses).mean()))
            logger.record("train/value_loss", float(torch.stack(v_losses).mean()))
            logger.record("train/entropy_loss", float(torch.stack(ent_losses).mean()))
            logger.record("train/clip_fraction", float(torch.stack(clip_fracs).mean()))
        if last_loss is not None:
            logger.record("train/loss", float(last_loss))
        # as SB3: how much of the returns' variance the value estimates explain
        flat_values, flat_returns = buf["values"].reshape(-1), returns.reshape(-1)
        var_returns = float(np.var(flat_returns))
        explained = (
            math.nan
            if var_returns == 0
            else 1.0 - float(np.var(flat_returns - flat_values)) / var_returns
        )
        logger.record("train/explained_variance", explained)
        logger.record("train/approx_kl", float(approx_kl))
        logger.record("train/learning_rate", lr)
        logger.record("train/clip_range", clip)
        logger.record("train/n_updates", model._n_updates)
        logger.record("train/ent_coef", ent_coef)

    # ------------------------------------------------------------------ learn
    def learn(self, end_timesteps: int) -> str | None:
        """Train until ``end_timesteps`` (rounded up to a whole rollout) or a speed-bump stop.

        :returns: the speed-bump's reason when it stopped the run, else None
        """
        model, tc = self.model, self.tc
        start = model.num_timesteps
        model._setup_learn(
            end_timesteps - start, None, reset_num_timesteps=False, tb_log_name=tc.algo
        )
        n, d = self.core.n_envs, self.core.obs_dim
        steps = tc.n_steps
        buf: dict[str, np.ndarray] = {
            "obs": np.zeros((steps, n, d), dtype=np.float32),
            "actions": np.zeros((steps, n), dtype=np.int64),
            "logp": np.zeros((steps, n), dtype=np.float32),
            "values": np.zeros((steps, n), dtype=np.float32),
            "rewards": np.zeros((steps, n), dtype=np.float32),
            "starts": np.zeros((steps, n), dtype=np.float32),
        }
        every = tc.checkpoint_every
        self.next_checkpoint = (start // every + 1) * every
        # Action sampling: its own stream, seeded by the run's seed and where it starts.
        self.rng = np.random.default_rng([tc.seed, start])
        self.hooks.clock.timesteps = start
        self._apply_curriculum(start)
        began = time.perf_counter()
        while model.num_timesteps < end_timesteps:
            t0 = time.perf_counter()
            ok, _, last_values, last_dones = self.collect(buf)
            t1 = time.perf_counter()
            self.hooks.timings["rollout"] += t1 - t0
            if not ok:
                break
            assert last_values is not None and last_dones is not None
            self.hooks.clock.timesteps = model.num_timesteps
            model._update_current_progress_remaining(model.num_timesteps, end_timesteps)
            self._log_rollout()
            adv, returns = compute_gae(
                buf["rewards"],
                buf["values"],
                buf["starts"],
                last_values,
                last_dones,
                tc.gamma,
                tc.gae_lambda,
            )
            self.update(buf, adv, returns)
            self.hooks.timings["update"] += time.perf_counter() - t1
            elapsed = max(time.perf_counter() - began, 1e-9)
            logger = model.logger
            logger.record("time/fps", int((model.num_timesteps - start) / elapsed))
            logger.record("time/total_timesteps", model.num_timesteps)
            buffer = model.ep_info_buffer
            if buffer:  # as SB3: means over the last 100 episodes
                logger.record("rollout/ep_rew_mean", safe_mean([e["r"] for e in buffer]))
                logger.record("rollout/ep_len_mean", safe_mean([e["l"] for e in buffer]))
            logger.dump(step=model.num_timesteps)
            if self.hooks.progress is not None:
                self.hooks.progress(model.num_timesteps)
        self.policy.set_training_mode(False)
        return self.stop_reason
