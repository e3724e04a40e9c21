"""Speed of out-of-sample evaluation (``stairways bench eval``).

Two ways to replay the same checkpoint over the same sessions, measured in one run:

- batched: :func:`stairways.evaluation.runner.evaluate_run`, every session in parallel in the
  batched env with one policy forward pass per step for all sessions, the agent and the
  baselines stepped together; reported as the stepping time of the replay and as the whole
  evaluation (config, panel from the store, model load, replay, metrics and gates, Parquet and
  JSON writes). The first call in the process is the cold one (numba and torch warm up, the
  panel is built from the store, the baselines are replayed); the warm figure is the median of
  ``--repeats`` further calls of the same evaluation in the same process, with the in-process
  caches filled: the panel (:func:`stairways.data.panel_builder.build_panel`) and the
  baselines' traces, metrics and encoded files (:mod:`stairways.evaluation.baselines`). So a
  warm call still reads the run's files, checks the store's content digest, loads the model,
  replays the agent over every session, computes its metrics and gates, and writes every
  trace, metrics.json and gates.json. Every warm call must give the cold call's figures
  (every metric of the agent and the baselines, and the verdict), or the benchmark stops;
- sequential: the single env, session after session, one ``model.predict`` call per step
  (:func:`stairways.evaluation.replay.sequential_replay`), with the same frozen observation
  statistics.

Both replays must take the same actions (checked here on every step compared). Without
``--run``, the benchmark builds its own setting in a work directory: the synthetic market from
2023-11-01 to 2024-12-31 in a bar store, a short training run on Nov-Dec 2023 (its weights do
not change the speed) without the drawdown stop, so every session of 2024 (the benchmark's own
``validation`` split, a development split: a benchmark is no look at a test year) is replayed in
full (252 sessions, 97,740 steps: 249 full days and 3 half days).
Figures are wall-clock seconds on this machine and depend on its load; CPU seconds of this
process are printed next to them, and the goal is judged on CPU seconds (on a shared 2-core
machine the wall clock mostly measures the other processes).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stairways.errors import InputError, StairwaysError

if TYPE_CHECKING:
    from stairways.evaluation.runner import EvaluationReport

log = logging.getLogger(__name__)

# Issue 16: a full-year evaluation (about 98k steps, every stage) under 1 s warm.
GOAL_SECONDS = 1.0
GOAL_SPEEDUP = 10.0


@dataclass(frozen=True)
class EvalBenchResult:
    """Measured figures of one benchmark run."""

    run_dir: Path
    split: str
    sessions: int
    steps: int
    replay_seconds: float
    evaluate_seconds: float
    evaluate_cpu_seconds: float
    evaluate_cold_seconds: float
    evaluate_cold_cpu_seconds: float
    stage_seconds: dict[str, float]
    stage_cpu_seconds: dict[str, float]
    warm_cpu_seconds: tuple[float, ...]
    baselines_cached: bool
    sequential_sessions: int
    sequential_steps: int
    sequential_seconds: float
    sequential_cpu_seconds: float

    @property
    def sequential_seconds_full(self) -> float:
        """Sequential time scaled to all sessions by steps (equal to the measure when all ran)."""
        return self.sequential_seconds * self.steps / self.sequential_steps

    @property
    def speedup_replay(self) -> float:
        """Sequential seconds over batched replay seconds, on the same number of steps."""
        return self.sequential_seconds_full / self.replay_seconds

    @property
    def speedup_evaluate(self) -> float:
        """Sequential seconds over the whole batched evaluation (baselines and writes included)."""
        return self.sequential_seconds_full / self.evaluate_seconds

    @property
    def meets_goal(self) -> bool:
        """Whether the median warm evaluation took under :data:`GOAL_SECONDS` CPU seconds."""
        return self.evaluate_cpu_seconds < GOAL_SECONDS


def report_lines(r: EvalBenchResult) -> list[str]:
    """The benchmark's printed table: what was measured, the figures, and the verdicts."""
    lines = [
        f"run {r.run_dir}, split {r.split}: {r.sessions} sessions, {r.steps:,} steps",
        f"{'measure':52s} {'seconds':>9s} {'CPU s':>9s} {'steps/s':>12s}",
    ]

    def line(name: str, seconds: float, cpu: float | None, steps: int) -> None:
        cpu_text = f"{cpu:9.3f}" if cpu is not None else f"{'':9s}"
        lines.append(f"{name:52s} {seconds:9.3f} {cpu_text} {steps / seconds:12,.0f}")

    line(
        "evaluate_run, first call in process (cold)",
        r.evaluate_cold_seconds,
        r.evaluate_cold_cpu_seconds,
        r.steps,
    )
    line(
        f"evaluate_run, warm: median of {len(r.warm_cpu_seconds)} more calls",
        r.evaluate_seconds,
        r.evaluate_cpu_seconds,
        r.steps,
    )
    lines.append(
        "  (the same evaluation again in this process: panel and baselines from its caches)"
    )
    for key in ("panel", "load", "replay", "metrics", "write"):
        lines.append(f"  {key:50s} {r.stage_seconds[key]:9.3f} {r.stage_cpu_seconds[key]:9.3f}")
    stepped = "agent; baselines from the cache" if r.baselines_cached else "agent and baselines"
    line(f"  replay stepping ({stepped})", r.replay_seconds, None, r.steps)
    lines.append("  warm calls, CPU seconds: " + ", ".join(f"{c:.3f}" for c in r.warm_cpu_seconds))
    seq_name = f"sequential model.predict loop ({r.sequential_sessions} sessions)"
    line(seq_name, r.sequential_seconds, r.sequential_cpu_seconds, r.sequential_steps)
    if r.sequential_steps != r.steps:
        lines.append(f"  scaled to {r.steps:,} steps: {r.sequential_seconds_full:.3f} s")
    lines.append(
        f"speed-up: {r.speedup_replay:.1f}x (replay stepping), "
        f"{r.speedup_evaluate:.1f}x (whole warm evaluation incl. baselines and writes)"
    )
    fast = "meets" if r.meets_goal else "MISSES"
    ratio = "meets" if r.speedup_evaluate >= GOAL_SPEEDUP else "MISSES"
    lines.append(
        f"goal under {GOAL_SECONDS:.0f} CPU s per warm evaluation: {fast}; "
        f"goal {GOAL_SPEEDUP:.0f}x faster than the sequential loop: {ratio}"
    )
    return lines


def _bench_config(workdir: Path) -> Path:
    """Write the self-contained benchmark config into ``workdir``."""
    path = workdir / "bench_eval.yaml"
    path.write_text(
        "\n".join(
            [
                "name: bench_eval",
                "data:",
                f"  store_path: {workdir / 'bars.duckdb'}",
                "  splits:",
                "    train: {start: 2023-11-02, end: 2023-12-29}",
                "    validation: {start: 2024-01-02, end: 2024-12-31}",
                "  protected_splits: []",
                "  synthetic: {start: 2023-11-01, end: 2024-12-31}",
                "# No drawdown stop: every session is replayed in full (97,740 steps in 2024).",
                "env: {drawdown_cap: 1.0}",
                "training:",
                "  total_timesteps: 1024",
                "  n_envs: 8",
                "  n_steps: 128",
                "  batch_size: 256",
                "  checkpoint_every: 1024",
                "  tensorboard: false",
                f"  runs_dir: {workdir / 'runs'}",
                "",
            ]
        )
    )
    return path


def prepare_run(workdir: Path) -> Path:
    """Generate the synthetic store and train the short run the benchmark evaluates."""
    from stairways.config import load_config
    from stairways.data.store import BarStore
    from stairways.data.synthetic import generate, generator_details
    from stairways.training.trainer import TrainOptions, train

    cfg = load_config(_bench_config(workdir))
    bars = generate(cfg.data.synthetic, cfg.data.symbols)
    with BarStore(cfg.data.store_path) as store:
        store.write_bars(
            bars,
            source="synthetic",
            synthetic=True,
            details=generator_details(cfg.data.synthetic),
            replace=True,
        )
    result = train(cfg, TrainOptions(command=("stairways", "bench", "eval")))
    return result.run_dir


def run_eval_bench(
    run_dir: Path | None = None,
    *,
    split: str = "validation",
    checkpoint: str = "final",
    sequential_sessions: int | None = None,
    workdir: Path | None = None,
    repeats: int = 3,
    report: Callable[[str], None] = print,
) -> EvalBenchResult:
    """Measure batched against sequential evaluation of one checkpoint.

    :param run_dir: run to evaluate (default: build the synthetic setting described above)
    :param split: split to replay
    :param checkpoint: checkpoint to load (final, best or a file)
    :param sequential_sessions: sessions replayed by the sequential loop (default: all; fewer
        are scaled up by steps, and the report says so)
    :param workdir: where the synthetic setting is built (default: a temporary directory)
    :param repeats: warm evaluations after the cold one (the median is reported)
    :param report: receives progress lines
    """
    if repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats}")
    if run_dir is None:
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="stairways-bench-eval-") as tmp:
                return _measure(
                    prepare_run(Path(tmp)), split, checkpoint, sequential_sessions, repeats, report
                )
        workdir.mkdir(parents=True, exist_ok=True)
        report(f"building the synthetic store and a short training run in {workdir}")
        run_dir = prepare_run(workdir)
    return _measure(run_dir, split, checkpoint, sequential_sessions, repeats, report)


def _figures(ev: EvaluationReport) -> dict[str, Any]:
    """The evaluation's figures (every metric of the agent and the baselines, and the gates)."""
    return {
        "agent": ev.agent.to_dict(),
        "baselines": {k: v.to_dict() for k, v in ev.baselines.items()},
        "gates": ev.verdict.passed,
    }


def _measure(
    run_dir: Path,
    split: str,
    checkpoint: str,
    sequential_sessions: int | None,
    repeats: int,
    report: Callable[[str], None],
) -> EvalBenchResult:
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from stairways.data.normalise import Normaliser
    from stairways.env.trading_env import make_env
    from stairways.evaluation.replay import sequential_replay
    from stairways.evaluation.runner import (
        evaluate_run,
        load_model,
        open_panel,
        resolve_checkpoint,
        run_config,
        torch_threads,
    )
    from stairways.evaluation.traces import read_run_trace
    from stairways.training.rundir import RunDirectory

    t0, c0 = time.perf_counter(), time.process_time()
    first = evaluate_run(run_dir, checkpoint=checkpoint, split=split)
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    warm: list[tuple[float, float, EvaluationReport]] = []
    for _ in range(repeats):
        t1, c1 = time.perf_counter(), time.process_time()
        ev = evaluate_run(run_dir, checkpoint=checkpoint, split=split)
        warm.append((time.perf_counter() - t1, time.process_time() - c1, ev))
        if _figures(ev) != _figures(first):
            raise StairwaysError(
                "a warm evaluation's figures differ from the first one's; the benchmark "
                "refuses to report speed for differing results"
            )
    walls = [w for w, _, _ in warm]
    cpus = [c for _, c, _ in warm]
    middle = sorted(range(repeats), key=lambda k: cpus[k])[(repeats - 1) // 2]
    ev = warm[middle][2]
    stages = ("panel", "load", "replay", "metrics", "write")
    stage_wall = {
        k: float(np.median([e.timings[f"{k}_seconds"] for *_, e in warm])) for k in stages
    }
    stage_cpu = {
        k: float(np.median([e.timings[f"{k}_cpu_seconds"] for *_, e in warm])) for k in stages
    }
    report(f"batched evaluation: {ev.agent.sessions} sessions, {ev.agent.steps} steps")

    run = RunDirectory.open(run_dir)
    cfg = run_config(run)
    ref = resolve_checkpoint(run, checkpoint)
    panel = open_panel(cfg, split, Normaliser.load(run.normaliser_path))
    model = load_model(cfg, ref.files.model)
    norm = VecNormalize.load(
        str(ref.files.vecnormalize), DummyVecEnv([lambda: make_env(cfg, panel, "evaluation")])
    )
    norm.training = False
    state = json.loads(ref.files.reward_state.read_text())
    n_seq = (
        panel.n_sessions
        if sequential_sessions is None
        else min(sequential_sessions, panel.n_sessions)
    )
    chosen = list(range(n_seq))
    report(f"sequential loop: {n_seq} sessions, one model.predict per step")
    with torch_threads(1):
        t2, c2 = time.perf_counter(), time.process_time()
        seq = sequential_replay(
            cfg,
            panel,
            lambda o, s, e: model.predict(o, state=s, episode_start=e, deterministic=True),
            normalize_obs=lambda o: np.asarray(norm.normalize_obs(o)),
            reward_state={"reward": state["reward"], "state": state["state"][:1]},
            sessions=chosen,
        )
        seq_seconds, seq_cpu = time.perf_counter() - t2, time.process_time() - c2
    trace = read_run_trace(run.path, split, ref.name).frame
    for one in seq:
        batched = trace.loc[trace["session"] == one.session, "action"].to_numpy()
        if not np.array_equal(batched, one.actions):
            raise StairwaysError(
                f"batched and sequential replays disagree on session {one.session}; "
                "the benchmark refuses to report speed for differing results"
            )
    seq_steps = int(sum(len(one.actions) for one in seq))
    return EvalBenchResult(
        run_dir=run.path,
        split=split,
        sessions=ev.agent.sessions,
        steps=ev.agent.steps,
        replay_seconds=float(np.median([e.timings["replay_stepping_seconds"] for *_, e in warm])),
        evaluate_seconds=float(np.median(walls)),
        evaluate_cpu_seconds=float(np.median(cpus)),
        evaluate_cold_seconds=cold,
        evaluate_cold_cpu_seconds=cold_cpu,
        stage_seconds=stage_wall,
        stage_cpu_seconds=stage_cpu,
        warm_cpu_seconds=tuple(cpus),
        baselines_cached=all(bool(e.timings.get("baselines_cached")) for *_, e in warm),
        sequential_sessions=n_seq,
        sequential_steps=seq_steps,
        sequential_seconds=seq_seconds,
        sequential_cpu_seconds=seq_cpu,
    )


def load_line() -> str:
    """Load average and CPU count, printed with the figures."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"load average {load} on {os.cpu_count()} CPUs"
