"""Speed of out-of-sample evaluation (``stairways bench eval``).

Two ways to replay the same checkpoint over the same sessions, measured in one run:

- batched: :func:`stairways.evaluation.runner.evaluate_run`, every session in parallel in the
  batched env with one policy forward pass per step for all sessions; reported as the stepping
  time of the agent's replay and as the whole evaluation (panel build from the store, model
  load, agent replay, three baselines, metrics, Parquet and JSON writes);
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
process are printed next to the two headline figures, since they are less affected by other
processes.
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

import numpy as np

from stairways.errors import StairwaysError

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
    stage_seconds: dict[str, float]
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
    report: Callable[[str], None] = print,
) -> EvalBenchResult:
    """Measure batched against sequential evaluation of one checkpoint.

    :param run_dir: run to evaluate (default: build the synthetic setting described above)
    :param split: split to replay
    :param checkpoint: checkpoint to load (final, best or a file)
    :param sequential_sessions: sessions replayed by the sequential loop (default: all; fewer
        are scaled up by steps, and the report says so)
    :param workdir: where the synthetic setting is built (default: a temporary directory)
    :param report: receives progress lines
    """
    if run_dir is None:
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="stairways-bench-eval-") as tmp:
                return _measure(
                    prepare_run(Path(tmp)), split, checkpoint, sequential_sessions, report
                )
        workdir.mkdir(parents=True, exist_ok=True)
        report(f"building the synthetic store and a short training run in {workdir}")
        run_dir = prepare_run(workdir)
    return _measure(run_dir, split, checkpoint, sequential_sessions, report)


def _measure(
    run_dir: Path,
    split: str,
    checkpoint: str,
    sequential_sessions: int | None,
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

    t0 = time.perf_counter()
    evaluate_run(run_dir, checkpoint=checkpoint, split=split)
    cold = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), time.process_time()
    ev = evaluate_run(run_dir, checkpoint=checkpoint, split=split)
    warm, warm_cpu = time.perf_counter() - t1, time.process_time() - c1
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
        replay_seconds=ev.timings["replay_stepping_seconds"],
        evaluate_seconds=warm,
        evaluate_cpu_seconds=warm_cpu,
        evaluate_cold_seconds=cold,
        stage_seconds=dict(ev.timings),
        sequential_sessions=n_seq,
        sequential_steps=seq_steps,
        sequential_seconds=seq_seconds,
        sequential_cpu_seconds=seq_cpu,
    )


def load_line() -> str:
    """Load average and CPU count, printed with the figures."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"load average {load} on {os.cpu_count()} CPUs"
