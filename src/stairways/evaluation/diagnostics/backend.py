"""The work of one diagnostic job: train a run, replay its checkpoints, measure outcomes.

Training is :func:`stairways.training.trainer.train` and replay is the evaluation package's
deterministic replay, so diagnostics judge exactly what ``stairways train`` and
``stairways evaluate`` produce. Diagnostic runs differ from a plain ``stairways train`` in
three recorded ways: the suite's seed, timesteps and checkpoint interval are set, the
speed-bump is off (a diagnostic must see the whole run, not a stopped one), and the progress
bar is off (several runs share the terminal).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stairways.config import StairwaysConfig
from stairways.configbase import set_by_path, validate_model
from stairways.data.normalise import Normaliser
from stairways.data.panel import SessionPanel
from stairways.errors import StairwaysError
from stairways.evaluation.baselines import run_baselines
from stairways.evaluation.diagnostics.freeze_early import (
    CheckpointOutcome,
    FreezeEarlyResult,
    GeneralisationCheck,
    judge_freeze_early,
    pick_checkpoint,
)
from stairways.evaluation.diagnostics.leakage import LeakageArm, random_offsets, transform_panel
from stairways.evaluation.diagnostics.outcomes import session_outcomes
from stairways.evaluation.diagnostics.reward_abc import ArmResult
from stairways.evaluation.diagnostics.settings import FreezeEarlyConfig, LeakageConfig
from stairways.evaluation.gates import GateVerdict, evaluated, judge_traces
from stairways.evaluation.replay import eval_env, replay
from stairways.evaluation.runner import (
    batch_policy,
    evaluate_policy_on_panel,
    frozen_normalizer,
    load_model,
    open_panel,
    resolve_checkpoint,
)
from stairways.evaluation.traces import Trace, TraceMeta, trace_path, write_trace
from stairways.training.checkpoints import list_checkpoints
from stairways.training.monitor import read_monitor, reward_at
from stairways.training.rundir import RunDirectory

log = logging.getLogger(__name__)

PanelTransform = Callable[[SessionPanel], SessionPanel]
RUN_FOLDER = "run"


def job_config(data: dict[str, Any], what: str) -> StairwaysConfig:
    """Rebuild a validated config from a job spec's JSON form."""
    return validate_model(StairwaysConfig, data, what)


def training_config(
    cfg: StairwaysConfig, *, total_timesteps: int, checkpoint_every: int, seed: int
) -> StairwaysConfig:
    """``cfg`` with the suite's training length, checkpoint interval and seed (re-validated)."""
    data = cfg.model_dump(mode="json")
    for key, value in (
        ("training.total_timesteps", total_timesteps),
        ("training.checkpoint_every", checkpoint_every),
        ("training.seed", seed),
        ("training.speed_bump.enabled", False),
    ):
        data = set_by_path(data, key, value)
    return job_config(data, "diagnostic training config")


def train_run(
    cfg: StairwaysConfig, folder: Path, panel_transform: PanelTransform | None = None
) -> Path:
    """Train one run into ``folder/run`` and return the run directory."""
    from stairways.training.trainer import TrainOptions, train

    run_dir = folder / RUN_FOLDER
    result = train(
        cfg,
        TrainOptions(run_dir=run_dir, progress=False, panel_transform=panel_transform),
    )
    if result.status != "completed":
        raise StairwaysError(
            f"diagnostic training run {run_dir} ended as {result.status}: "
            f"{result.stop_reason or 'no reason recorded'}"
        )
    return result.run_dir


def replay_checkpoint(
    run_dir: Path,
    checkpoint: Path,
    split: str,
    *,
    eval_cfg: StairwaysConfig | None = None,
    panel_transform: PanelTransform | None = None,
    last_sessions: int | None = None,
    label: str | None = None,
) -> Trace:
    """Replay one checkpoint of a run on ``split`` deterministically and store the trace.

    :param eval_cfg: evaluate with this config's reward instead of the run's (A/B/C); the
        checkpoint's reward state belongs to its own reward, so this reward starts fresh
    :param panel_transform: modified panel for the leakage audit
    :param last_sessions: replay only the last sessions of the split (in-sample checks)
    :param label: stored under ``eval/<label>`` instead of ``eval/<split>`` (modified panels)
    """
    from stairways.config import load_config

    run = RunDirectory.open(run_dir)
    cfg = load_config(run.config_path)
    ref = resolve_checkpoint(run, str(checkpoint))
    panel = open_panel(cfg, split, Normaliser.load(run.normaliser_path))
    if last_sessions is not None and panel.n_sessions > last_sessions:
        panel = panel.subset(np.arange(panel.n_sessions - last_sessions, panel.n_sessions))
    if panel_transform is not None:
        panel = panel_transform(panel)
    if eval_cfg is None or eval_cfg.reward == cfg.reward:
        trace = evaluate_policy_on_panel(cfg, panel, ref, run=str(run.path)).trace
    else:
        ev_cfg = cfg.model_copy(update={"reward": eval_cfg.reward})
        from stairways.rewards.registry import build_reward

        meta = TraceMeta(
            symbols=panel.symbols,
            reward_components=build_reward(ev_cfg.reward).components,
            starting_capital=ev_cfg.market.starting_capital,
            split=panel.split,
            policy="agent",
            checkpoint=ref.name,
            run=str(run.path),
            extra={
                "checkpoint_file": str(ref.files.model),
                "panel_fingerprint": panel.fingerprint,
                "evaluation_reward": f"{ev_cfg.reward.name} ({ev_cfg.reward.mode})",
            },
        )
        venv = frozen_normalizer(eval_env(ev_cfg, panel), ref.files.vecnormalize)
        try:
            trace = replay(venv, meta, policy=batch_policy(load_model(cfg, ref.files.model))).trace
        finally:
            venv.close()
    write_trace(trace, trace_path(run.path, label or split, ref.name))
    return trace


def judge_on_panel(
    run_dir: Path, trace: Trace, split: str, last_sessions: int | None
) -> GateVerdict:
    """The gate verdict of a replayed checkpoint, with the baselines replayed on its sessions."""
    from stairways.config import load_config

    run = RunDirectory.open(run_dir)
    cfg = load_config(run.config_path)
    panel = open_panel(cfg, split, Normaliser.load(run.normaliser_path))
    if last_sessions is not None and panel.n_sessions > last_sessions:
        panel = panel.subset(np.arange(panel.n_sessions - last_sessions, panel.n_sessions))
    baselines = run_baselines(cfg, panel, run=str(run.path))
    return judge_traces(trace, {n: r.trace for n, r in baselines.items()}, cfg.evaluation)[2]


def _checkpoint_file(run_dir: Path, steps: int) -> Path:
    return list_checkpoints(run_dir)[steps]


def run_freeze_job(spec: dict[str, Any], folder: Path) -> FreezeEarlyResult:
    """Freeze-early: train with checkpoints at the freeze points and judge each on the split."""
    import math

    cfg = job_config(spec["config"], "freeze-early job")
    fcfg = validate_model(FreezeEarlyConfig, spec["freeze"], "freeze-early job")
    points = [int(p) for p in spec["checkpoints"]]
    every = math.gcd(*points)
    run_dir = train_run(
        training_config(cfg, total_timesteps=points[-1], checkpoint_every=every, seed=spec["seed"]),
        folder,
    )
    saved = list_checkpoints(run_dir)
    monitor = read_monitor(run_dir)
    split = spec["eval_split"]
    outcomes: list[CheckpointOutcome] = []
    traces: list[Trace] = []
    for target in points:
        steps = pick_checkpoint(list(saved), target)
        trace = replay_checkpoint(run_dir, saved[steps], split)
        training_reward, n = reward_at(monitor, steps, int(spec["ranking_window"]))
        outcomes.append(
            CheckpointOutcome(
                target_steps=target,
                steps=steps,
                checkpoint=str(saved[steps]),
                training_reward=None if n == 0 else training_reward,
                training_episodes=n,
                outcomes=session_outcomes(trace),
            )
        )
        traces.append(trace)
    last = saved[outcomes[-1].steps]
    in_sample = replay_checkpoint(
        run_dir, last, cfg.training.split, last_sessions=fcfg.in_sample_max_sessions
    )
    gates_in = judge_on_panel(run_dir, in_sample, cfg.training.split, fcfg.in_sample_max_sessions)
    gates_out = judge_on_panel(run_dir, traces[-1], split, None)
    return FreezeEarlyResult(
        run_dir=str(run_dir),
        eval_split=split,
        min_episode_reward_mean=fcfg.min_episode_reward_mean,
        min_episode_length=fcfg.min_episode_length,
        checkpoints=tuple(outcomes),
        generalisation=GeneralisationCheck(
            in_sample_split=cfg.training.split,
            out_of_sample_split=split,
            in_sample_passed=gates_in.passed,
            out_of_sample_passed=gates_out.passed,
            in_sample_gates=gates_in.to_dict(),
            out_of_sample_gates=gates_out.to_dict(),
        ),
        judgement=judge_freeze_early(outcomes, fcfg),
    )


def _final_checkpoint(run_dir: Path) -> Path:
    saved = list_checkpoints(run_dir)
    return saved[max(saved)]


def run_abc_job(arm: str, spec: dict[str, Any], folder: Path) -> ArmResult:
    """One reward A/B/C arm: train with the arm's reward, evaluate with the suite's reward."""
    suite_cfg = job_config(spec["config"], f"reward A/B/C job {arm}")
    arm_cfg = job_config(spec["train_config"], f"reward A/B/C job {arm}")
    timesteps = int(spec["total_timesteps"])
    run_dir = train_run(
        training_config(
            arm_cfg,
            total_timesteps=timesteps,
            checkpoint_every=timesteps,
            seed=spec["seed"],
        ),
        folder,
    )
    trace = replay_checkpoint(
        run_dir, _final_checkpoint(run_dir), spec["eval_split"], eval_cfg=suite_cfg
    )
    monitor = read_monitor(run_dir).episodes
    metrics = evaluated(trace, suite_cfg.evaluation).metrics
    return ArmResult(
        name=arm,
        config=spec["arm_config_file"],
        run_dir=str(run_dir),
        training_rewards=tuple(float(x) for x in monitor["r"]),
        training_lengths=tuple(int(x) for x in monitor["l"]),
        outcomes=session_outcomes(trace),
        metrics=metrics.to_dict(),
    )


def _arm_transform(arm: str, cfg: LeakageConfig, seed: int) -> PanelTransform:
    """The panel an audit arm sees, with seeded start offsets shared by every arm."""

    def transform(panel: SessionPanel) -> SessionPanel:
        offsets = (
            random_offsets(panel.lengths, cfg.max_start_offset, seed)
            if cfg.shuffle_offsets
            else None
        )
        return transform_panel(panel, arm, cfg, offsets)

    return transform


_DESCRIPTIONS = {
    "baseline": "production features",
    "lagged": "every feature {lag} bar(s) older",
    "lookahead": "features from {lead} bar(s) in the future (positive control)",
}


def run_leakage_job(arm: str, spec: dict[str, Any], folder: Path) -> LeakageArm:
    """One leakage-audit run: train the arm with one seed and evaluate on its panels.

    Start offsets come from the suite seed (the same for every arm and training seed); the
    training seed (``train_seed``) only changes the agent.
    """
    cfg = job_config(spec["config"], f"leakage job {arm}")
    lcfg = validate_model(LeakageConfig, spec["leakage"], f"leakage job {arm}")
    offsets_seed = int(spec["seed"])
    train_seed = int(spec["train_seed"])
    timesteps = int(spec["total_timesteps"])
    run_dir = train_run(
        training_config(
            cfg, total_timesteps=timesteps, checkpoint_every=timesteps, seed=train_seed
        ),
        folder,
        panel_transform=_arm_transform(arm, lcfg, offsets_seed),
    )
    split = spec["eval_split"]
    # Evaluation offsets are drawn from another stream than training's (seed + 1).
    trace = replay_checkpoint(
        run_dir,
        _final_checkpoint(run_dir),
        split,
        panel_transform=_arm_transform(arm, lcfg, offsets_seed + 1),
        label=f"{split}+leakage-{arm}",
    )
    return LeakageArm(
        name=arm,
        seed=train_seed,
        description=_DESCRIPTIONS[arm].format(lag=lcfg.lag_bars, lead=lcfg.lookahead_bars),
        run_dir=str(run_dir),
        outcomes=session_outcomes(trace),
    )
