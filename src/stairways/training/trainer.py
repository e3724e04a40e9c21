"""Reproducible PPO runs on the batched trading env, recorded in a run directory.

:func:`train` reads top to bottom: find what the run continues (locking a resumed run's
directory), seed everything, build the training panel (refusing protected dates unless
allowed), build the env and check any model it will load, open (and lock) the run directory,
wrap the env (:mod:`~stairways.training.envstack`), build, resume or warm-start the model
(:mod:`~stairways.training.model`), attach the callbacks (clock, curriculum, episode statistics,
gates, speed-bump, checkpoints, progress), learn, and write the outcome. Whatever happens
(completion, speed-bump, Ctrl-C, an error) the manifest ends with a status, the lock is
released, and the directory can be resumed from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from stairways.config import StairwaysConfig, load_config
from stairways.data.normalise import Normaliser
from stairways.data.panel import SessionPanel
from stairways.data.panel_builder import build_panel, fit_normaliser
from stairways.data.splits import check_training_range, resolve_split
from stairways.data.store import BarStore
from stairways.errors import InputError, MissingResourceError
from stairways.training.callbacks import (
    CheckpointCallback,
    ClockCallback,
    CurriculumCallback,
    EpisodeLog,
    EpisodeStatsCallback,
    ProgressCallback,
    QualityGateCallback,
    SpeedBumpCallback,
)
from stairways.training.checkpoints import companion_files, owning_run
from stairways.training.curriculum import resolve_phases
from stairways.training.envstack import find_stairways_env, monitored, normalized, vecnormalize
from stairways.training.model import build_model, check_model_fits, load_resumed, warm_start
from stairways.training.monitor import read_monitor_file
from stairways.training.rundir import (
    CheckpointFiles,
    CheckpointRecord,
    DataProvenance,
    GateVerdict,
    Manifest,
    RunDirectory,
    atomic_write_text,
    git_state,
    package_versions,
    python_version,
    utc_now_iso,
)
from stairways.training.runlock import RunLock
from stairways.training.schedules import TimestepClock

log = logging.getLogger(__name__)

__all__ = [
    "TrainOptions",
    "TrainResult",
    "config_for_resume",
    "train",
]


@dataclass(frozen=True)
class TrainOptions:
    """How to run (as opposed to what to train, which is the config).

    :param run_dir: explicit run directory (new runs, or resuming from a checkpoint zip)
    :param resume: a run directory or a checkpoint zip to continue from
    :param init_from: a model zip whose weights start a new run
    :param allow_test_overlap: allow training on dates of a protected split (recorded)
    :param overrides: command-line overrides already applied to the config (recorded)
    :param command: the command line (recorded in command.txt)
    :param progress: show a progress bar on the terminal
    :param extra_callbacks: more SB3 callbacks, run after the built-in ones (sb3 backend only)
    :param on_checkpoint: called as ``fn(model, timesteps)`` after every periodic checkpoint is
        saved, with either backend (the tuner scores checkpoints this way)
    :param env_wrappers: vector-env wrappers applied inside the monitor (reward shaping studies)
    :param panel_transform: applied to the training panel before the env is built (the leakage
        audit's lagged / look-ahead / offset panels); the transformed fingerprint is recorded
    """

    run_dir: Path | None = None
    resume: Path | None = None
    init_from: Path | None = None
    allow_test_overlap: bool = False
    overrides: Mapping[str, Any] = field(default_factory=dict)
    command: Sequence[str] = ()
    progress: bool = False
    extra_callbacks: Sequence[BaseCallback] = ()
    on_checkpoint: Sequence[Callable[[BaseAlgorithm, int], None]] = ()
    env_wrappers: Sequence[Callable[[VecEnv], VecEnv]] = ()
    panel_transform: Callable[[SessionPanel], SessionPanel] | None = None


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`."""

    run_dir: Path
    status: str
    timesteps: int
    episodes: int
    rolling_reward: float | None
    first_rolling_reward: float | None
    stop_reason: str | None
    best_checkpoint: str | None
    final_model: Path | None
    steps_per_second: float


def config_for_resume(
    resume: Path, config: Path | None, overrides: Mapping[str, Any]
) -> StairwaysConfig:
    """The config a resumed run uses: the run's own config.yaml, plus overrides.

    :param resume: run directory or checkpoint zip
    :param config: a config file; refused with a run directory (its config.yaml is the truth)
    :param overrides: dotted overrides from the command line
    """
    if resume.is_dir():
        run = RunDirectory.open(resume)
        if config is not None:
            raise InputError(
                f"--resume {resume} continues that run with its own {RunDirectory.CONFIG}; "
                "drop --config (flags such as --total-timesteps still apply)"
            )
        return load_config(run.config_path, overrides)
    if not resume.is_file():
        raise MissingResourceError(f"--resume {resume}: no such run directory or checkpoint")
    if config is not None:
        return load_config(config, overrides)
    owner = owning_run(resume)
    if owner is None:
        raise InputError(
            f"--resume {resume} is not inside a run directory; pass --config for the run"
        )
    return load_config(owner.config_path, overrides)


# ---------------------------------------------------------------- the run directory
class _Run:
    """The run directory of one :func:`train` call: where it is, its lock and its manifest."""

    def __init__(self, cfg: StairwaysConfig, options: TrainOptions) -> None:
        if options.resume is not None and options.init_from is not None:
            raise InputError("--resume and --init-from exclude each other: pick one")
        self.cfg = cfg
        self.tc = cfg.training
        self.options = options
        self.started = utc_now_iso()
        self.run: RunDirectory
        self.manifest: Manifest
        self.lock: RunLock | None = None
        self.resume_files: CheckpointFiles | None = None
        self.source_run: RunDirectory | None = None
        self.same_dir = False

    @property
    def start_timesteps(self) -> int:
        """Timesteps already done (those of the checkpoint resumed from, else 0)."""
        return self.resume_files.timesteps if self.resume_files is not None else 0

    def locate(self) -> None:
        """Find the checkpoint to resume from; a resumed run's directory is locked first."""
        resume = self.options.resume
        if resume is None:
            return
        if resume.is_dir():
            if self.options.run_dir is not None:
                raise InputError(
                    "--resume RUN_DIR continues in that directory; drop --run-dir "
                    "(or resume from a checkpoint zip into a new --run-dir)"
                )
            self.source_run = RunDirectory.open(resume)
            self._lock(self.source_run)
            self.resume_files = self.source_run.latest_checkpoint()
            self.same_dir = True
            return
        files = companion_files(resume)
        for p in (files.model, files.vecnormalize, files.reward_state):
            if not p.is_file():
                raise MissingResourceError(
                    f"cannot resume from {resume}: {p} is missing (a checkpoint needs its "
                    "VecNormalize statistics and reward state beside it)"
                )
        self.resume_files = files
        self.source_run = owning_run(resume)

    def _lock(self, run: RunDirectory) -> None:
        command = shlex.join(self.options.command) if self.options.command else "<library call>"
        lock = RunLock(run.path, self.started, command)
        lock.acquire()
        self.lock = lock

    def unlock(self) -> None:
        """Release the run directory (nothing happens when it was never locked)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def data(self, store: BarStore) -> tuple[SessionPanel, Normaliser, list[str], bool]:
        """Check the split, load or fit the normaliser, build the training panel."""
        dc = self.cfg.data
        split = self.tc.split
        allow = self.options.allow_test_overlap
        check = check_training_range(dc, split, allow_test_overlap=allow)
        if self.source_run is not None and self.source_run.normaliser_path.is_file():
            # A resumed run must see the features exactly as before.
            normaliser = Normaliser.load(self.source_run.normaliser_path)
        elif self.resume_files is not None:
            raise MissingResourceError(
                f"cannot resume from {self.resume_files.model}: no {RunDirectory.NORMALISER} "
                "found in its run directory, so the features could not be reproduced"
            )
        else:
            normaliser = fit_normaliser(dc, store, allow_test_overlap=allow)
        panel = build_panel(dc, split, store, normaliser, allow_test_overlap=allow)
        overlaps = [name for name, _ in check.overlaps]
        return panel, normaliser, overlaps, check.override

    def check_models(self, venv: VecEnv) -> None:
        """Refuse a resume or init-from model that cannot run on this env, before writing."""
        if self.resume_files is not None:
            check_model_fits(self.resume_files.model, self.tc, venv)
        if self.options.init_from is not None:
            check_model_fits(self.options.init_from, self.tc, venv)

    def open_directory(
        self, panel: SessionPanel, normaliser: Normaliser, overlaps: list[str], override: bool
    ) -> None:
        """Create (and lock) or reopen the run directory; write config, command and manifest."""
        cfg, tc = self.cfg, self.tc
        if self.same_dir:
            assert self.source_run is not None
            self.run = self.source_run
            self.manifest = self.run.read_manifest()
            self._record_resume(self.manifest.status)
            if self.manifest.status == "running":
                log.info(
                    "%s says the run was still running: its process ended without recording "
                    "an outcome (it was killed)",
                    self.run.manifest_path,
                )
        else:
            if self.options.run_dir is not None:
                self.run = RunDirectory.at(self.options.run_dir)
            else:
                self.run = RunDirectory.create(tc.runs_dir, cfg.name, tc.seed)
            self._lock(self.run)
            self.manifest = self._new_manifest(panel, overlaps, override)
            normaliser.save(self.run.normaliser_path)
            if self.resume_files is not None:
                self._record_resume(None)
        merged = {**self.manifest.overrides, **dict(self.options.overrides)}
        self.manifest.overrides = merged
        self.manifest.total_timesteps = tc.total_timesteps
        self.manifest.status = "running"
        self.manifest.stop_reason = None
        self.manifest.error = None
        self.manifest.end_time = None
        self.manifest.command = list(self.options.command)
        self.run.write_config(cfg, merged)
        self.run.write_command(self.options.command or ["<library call>"])
        self.run.write_manifest(self.manifest)
        log.info("run directory %s", self.run.path)

    def _record_resume(self, previous_status: str | None) -> None:
        assert self.resume_files is not None
        self.manifest.resumed_from.append(
            {
                "checkpoint": str(self.resume_files.model.resolve()),
                "timesteps": self.resume_files.timesteps,
                "previous_status": previous_status,
                "at": utc_now_iso(),
            }
        )

    def _new_manifest(self, panel: SessionPanel, overlaps: list[str], override: bool) -> Manifest:
        dc, tc = self.cfg.data, self.tc
        rng = resolve_split(dc, tc.split)
        commit, dirty = git_state()
        return Manifest(
            run_name=self.run.name,
            config_name=self.cfg.name,
            algo=tc.algo,
            seed=tc.seed,
            total_timesteps=tc.total_timesteps,
            start_time=utc_now_iso(),
            git_commit=commit,
            git_dirty=dirty,
            python=python_version(),
            platform=platform.platform(),
            versions=package_versions(),
            torch_threads=tc.torch_threads,
            data=DataProvenance(
                symbols=list(panel.symbols),
                split=tc.split,
                split_range={"start": str(rng.start), "end": str(rng.end)},
                splits={
                    k: {"start": str(v.start), "end": str(v.end)} for k, v in dc.splits.items()
                },
                panel_fingerprint=panel.fingerprint,
                n_sessions=panel.n_sessions,
                synthetic=panel.synthetic,
                store_path=str(dc.store_path),
                allow_test_overlap=override,
                overlapping_splits=overlaps,
            ),
            init_from=str(self.options.init_from) if self.options.init_from else None,
        )

    def episode_log(self) -> EpisodeLog:
        """Episode rewards so far: those of monitor.csv when the run continues in place."""
        tc = self.tc
        episodes = EpisodeLog(maxlen=max(tc.rolling_window, tc.speed_bump.window))
        if self.same_dir and self.run.monitor_path.is_file():
            for r in read_monitor_file(self.run.monitor_path).rewards:
                episodes.add(r)
        return episodes

    def wrap_env(self, base: VecEnv) -> VecEnv:
        """Timestep stamp -> VecMonitor (writing monitor.csv) -> VecNormalize."""
        monitor = monitored(
            base,
            self.run.monitor_path,
            self.start_timesteps,
            continue_file=self.same_dir,
            env_id=f"stairways:{self.cfg.name}",
        )
        return normalized(monitor, self.tc.normalize, self.tc.gamma, self._saved_statistics())

    def _saved_statistics(self) -> Path | None:
        if self.resume_files is not None:
            return self.resume_files.vecnormalize
        if self.options.init_from is None:
            return None
        candidate = companion_files(self.options.init_from).vecnormalize
        if candidate.is_file():
            return candidate
        log.warning(
            "no VecNormalize statistics beside %s (%s); the run starts fresh ones, so the base "
            "weights see differently scaled observations at first",
            self.options.init_from,
            candidate.name,
        )
        return None

    def model(self, venv: VecEnv, clock: TimestepClock) -> BaseAlgorithm:
        """New, resumed or warm-started model."""
        tc = self.tc
        tb = self.run.tensorboard_dir if tc.tensorboard else None
        if self.resume_files is not None:
            set_state = find_stairways_env(venv, "set_state").set_state
            model = load_resumed(self.cfg, self.resume_files, venv, clock, tb, set_state)
        else:
            model = build_model(self.cfg, venv, clock, tb)
            if self.options.init_from is not None:
                warm_start(model, self.options.init_from, tc.algo, tc.device)
        if model.num_timesteps != self.start_timesteps:
            # A checkpoint's file name and its content disagree: refuse rather than guess.
            source = self.resume_files.model if self.resume_files else "model"
            raise InputError(
                f"{source} holds {model.num_timesteps} timesteps, not {self.start_timesteps}"
            )
        return model

    # -- saving and recording
    def save(self, model: BaseAlgorithm, files: CheckpointFiles) -> None:
        """Save model, VecNormalize statistics and reward state; the model file goes last."""
        venv = model.get_env()
        assert venv is not None
        files.model.parent.mkdir(parents=True, exist_ok=True)
        state = find_stairways_env(venv, "get_state").get_state()
        atomic_write_text(files.reward_state, json.dumps(state, sort_keys=True))
        tmp_stats = files.vecnormalize.with_name(files.vecnormalize.name + ".tmp")
        vecnormalize(venv).save(str(tmp_stats))
        tmp_stats.replace(files.vecnormalize)
        # SB3 adds ".zip" only to a path without a suffix; ".tmp" keeps it from doing so.
        tmp_model = files.model.with_name(files.model.name + ".tmp")
        model.save(tmp_model)
        tmp_model.replace(files.model)

    def checkpoint(
        self, model: BaseAlgorithm, episodes: EpisodeLog, timesteps: int, reason: str
    ) -> None:
        """Save a checkpoint and record it (and the best one so far) in the manifest."""
        files = self.run.checkpoint_files(timesteps)
        self.save(model, files)
        rolling = episodes.rolling(self.tc.rolling_window)
        rel = str(files.model.relative_to(self.run.path))
        m = self.manifest
        m.checkpoints = [c for c in m.checkpoints if c.timesteps != timesteps]
        m.checkpoints.append(
            CheckpointRecord(
                timesteps=timesteps,
                path=rel,
                rolling_reward=rolling,
                episodes=episodes.episodes,
                reason=reason,
            )
        )
        scored = [c for c in m.checkpoints if c.rolling_reward is not None]
        if scored:
            best = max(scored, key=lambda c: (c.rolling_reward, c.timesteps))
            m.best_checkpoint = best.path
        self.record_progress(timesteps, episodes)
        self.run.write_manifest(m)
        log.info("checkpoint %s (rolling episode reward %s)", rel, rolling)

    def record_progress(self, timesteps: int, episodes: EpisodeLog) -> None:
        """Timesteps, episodes and rolling reward into the manifest (written by the caller)."""
        self.manifest.timesteps = timesteps
        self.manifest.episodes = episodes.episodes
        self.manifest.rolling_reward = episodes.rolling(self.tc.rolling_window)

    def record_gate(
        self, name: str, timesteps: int, rolling: float | None, threshold: float, passed: bool
    ) -> None:
        """Write a quality gate verdict into the manifest."""
        self.manifest.quality_gates.append(
            GateVerdict(
                name=name,
                timesteps=timesteps,
                rolling_reward=rolling,
                threshold=threshold,
                passed=passed,
            )
        )
        self.run.write_manifest(self.manifest)

    def conclude(
        self, model: BaseAlgorithm, episodes: EpisodeLog, stop_reason: str | None
    ) -> Path | None:
        """After learn(): final gate, last checkpoint, final model; returns the final model."""
        tc = self.tc
        done = model.num_timesteps
        if stop_reason is not None:
            self.checkpoint(model, episodes, done, "speed-bump")
            self.finish("stopped", reason=stop_reason)
            return None
        rolling = episodes.rolling(tc.rolling_window)
        threshold = tc.gates.final_min_reward
        if threshold is not None:
            passed = rolling is not None and rolling >= threshold
            if not passed:
                log.warning(
                    "final quality gate missed: rolling episode reward %s < %s", rolling, threshold
                )
            self.record_gate("final", done, rolling, threshold, passed)
        self.checkpoint(model, episodes, done, "final")
        files = self.run.final_files(done)
        self.save(model, files)
        self.manifest.final_model = str(files.model.relative_to(self.run.path))
        self.finish("completed")
        return files.model

    def finish(self, status: str, reason: str | None = None, error: str | None = None) -> None:
        """Write the final status."""
        m = self.manifest
        m.status = status  # type: ignore[assignment]
        m.stop_reason = reason
        m.error = error
        m.end_time = utc_now_iso()
        self.run.write_manifest(m)


# ---------------------------------------------------------------- train
def train(cfg: StairwaysConfig, options: TrainOptions | None = None) -> TrainResult:
    """Run (or resume) one PPO training run and return its outcome.

    :param cfg: the fully resolved config (``cfg.training`` holds every hyperparameter)
    :param options: run directory, resume / init-from, overrides to record, progress bar
    :raises KeyboardInterrupt: after saving a checkpoint and marking the run interrupted
    :raises RunLockedError: when another process is writing the run directory
    """
    options = options or TrainOptions()
    tc = cfg.training
    if tc.backend == "fused":
        _check_fused(cfg, options)
    state = _Run(cfg, options)
    try:
        state.locate()
        start = state.start_timesteps
        if start >= tc.total_timesteps:
            raise InputError(
                f"the checkpoint already has {start} timesteps and training.total_timesteps is "
                f"{tc.total_timesteps}; pass a larger --total-timesteps"
            )

        # Seed before anything draws random numbers; one thread keeps float sums in a fixed order.
        torch.set_num_threads(tc.torch_threads)
        set_random_seed(tc.seed)

        with BarStore(cfg.data.store_path, read_only=True) as store:
            panel, normaliser, overlaps, override = state.data(store)
        if options.panel_transform is not None:
            panel = options.panel_transform(panel)
        base = _base_env(cfg, panel, options.env_wrappers)
        state.check_models(base)
        state.open_directory(panel, normaliser, overlaps, override)
        venv = state.wrap_env(base)
        return _learn(state, venv)
    finally:
        state.unlock()


def _check_fused(cfg: StairwaysConfig, options: TrainOptions) -> None:
    """Refuse what the fused backend cannot do, before anything is written."""
    if options.extra_callbacks or options.env_wrappers:
        raise InputError(
            "training.backend 'fused' runs no SB3 callbacks or env wrappers (TrainOptions."
            "extra_callbacks, env_wrappers); use training.backend: sb3 for this run, or "
            "TrainOptions.on_checkpoint, which both backends call"
        )


def _base_env(
    cfg: StairwaysConfig, panel: SessionPanel, wrappers: Sequence[Callable[[VecEnv], VecEnv]]
) -> VecEnv:
    """The batched env of the config, with any extra wrappers from the options."""
    from stairways.env.vector import make_vec_env

    tc = cfg.training
    venv: VecEnv = make_vec_env(cfg, panel, tc.n_envs, mode="train", seed=tc.seed)
    for wrap in wrappers:
        venv = wrap(venv)
    return venv


def _learn(state: _Run, venv: VecEnv) -> TrainResult:
    """Build the model and callbacks, learn, and record how the run ended."""
    tc, options, run = state.tc, state.options, state.run
    start = state.start_timesteps
    clock = TimestepClock(start)
    episodes = state.episode_log()
    model: BaseAlgorithm | None = None
    progress: ProgressCallback | None = None
    try:
        model = state.model(venv, clock)
        periodic = partial(_periodic_checkpoint, state, model, episodes)
        speed_bump = SpeedBumpCallback(tc.speed_bump, episodes)
        already = any(g.name == "mid_run" for g in state.manifest.quality_gates)
        callbacks: list[BaseCallback] = [
            ClockCallback(clock),
            CurriculumCallback(
                resolve_phases(tc.curriculum, tc.ent_coef),
                find_stairways_env(venv, "set_drawdown_cap").set_drawdown_cap,
            ),
            EpisodeStatsCallback(episodes),
            QualityGateCallback(
                tc.gates,
                tc.total_timesteps,
                episodes,
                tc.rolling_window,
                state.record_gate,
                already_checked=already,
            ),
            speed_bump,
            CheckpointCallback(tc.checkpoint_every, periodic),
        ]
        if options.progress and tc.backend == "sb3":
            # SB3 always finishes a rollout, so the run ends on the next multiple of it.
            rollout = tc.n_steps * venv.num_envs
            end = start + -(-(tc.total_timesteps - start) // rollout) * rollout
            progress = ProgressCallback(end, episodes, tc.rolling_window)
            callbacks.append(progress)
        callbacks.extend(options.extra_callbacks)
        started = time.perf_counter()
        if tc.backend == "fused":
            stop_reason = _learn_fused(state, model, venv, clock, episodes, already, periodic)
        else:
            model.learn(
                total_timesteps=tc.total_timesteps - start,
                callback=CallbackList(callbacks),
                reset_num_timesteps=False,
                tb_log_name=tc.algo,
            )
            stop_reason = speed_bump.reason
        elapsed = time.perf_counter() - started
        if progress is not None:
            progress.close()
        final = state.conclude(model, episodes, stop_reason)
    except KeyboardInterrupt:
        if model is not None:
            state.checkpoint(model, episodes, model.num_timesteps, "interrupted")
        state.finish("interrupted", reason="interrupted by the user (KeyboardInterrupt)")
        log.warning("run interrupted; resume it with: stairways train --resume %s", run.path)
        raise
    except Exception as err:
        # Recorded and re-raised: the directory must say why it ended, the caller must fail.
        if model is not None:
            state.record_progress(model.num_timesteps, episodes)
        state.finish("failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        if progress is not None:
            progress.close()
        venv.close()

    done = model.num_timesteps
    rate = (done - start) / elapsed if elapsed > 0 else math.nan
    rolling = episodes.rolling(tc.rolling_window)
    log.info(
        "run %s %s at %d timesteps (%.0f steps/s), rolling episode reward %s",
        run.name,
        state.manifest.status,
        done,
        rate,
        rolling,
    )
    return TrainResult(
        run_dir=run.path,
        status=state.manifest.status,
        timesteps=done,
        episodes=episodes.episodes,
        rolling_reward=rolling,
        first_rolling_reward=_first_rolling(run, tc.rolling_window),
        stop_reason=state.manifest.stop_reason,
        best_checkpoint=state.manifest.best_checkpoint,
        final_model=final,
        steps_per_second=rate,
    )


def _periodic_checkpoint(
    state: _Run, model: BaseAlgorithm, episodes: EpisodeLog, timesteps: int
) -> None:
    """A periodic checkpoint, then the options' checkpoint listeners (either backend)."""
    state.checkpoint(model, episodes, timesteps, reason="periodic")
    for listener in state.options.on_checkpoint:
        listener(model, timesteps)


def _learn_fused(
    state: _Run,
    model: BaseAlgorithm,
    venv: VecEnv,
    clock: TimestepClock,
    episodes: EpisodeLog,
    mid_run_checked: bool,
    periodic: Callable[[int], None],
) -> str | None:
    """The fused backend's learn loop; returns the speed-bump's reason when it stopped."""
    from stable_baselines3 import PPO

    from stairways.training.fused_ppo import FusedHooks, FusedPPO

    assert isinstance(model, PPO)
    bar: Any = None
    progress: Callable[[int], None] | None = None
    if state.options.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=state.tc.total_timesteps, initial=model.num_timesteps, unit="step")

        def progress(steps: int) -> None:
            bar.update(steps - bar.n)

    hooks = FusedHooks(
        episodes=episodes,
        clock=clock,
        checkpoint=periodic,
        record_gate=state.record_gate,
        mid_run_checked=mid_run_checked,
        progress=progress,
    )
    try:
        return FusedPPO(model, venv, state.tc, hooks).learn(state.tc.total_timesteps)
    finally:
        if bar is not None:
            bar.close()


def _first_rolling(run: RunDirectory, window: int) -> float | None:
    """Mean reward of the run's first ``window`` episodes (the start of the learning curve)."""
    if not run.monitor_path.is_file():
        return None
    rewards = read_monitor_file(run.monitor_path).rewards
    return float(np.mean(rewards[:window])) if rewards else None
