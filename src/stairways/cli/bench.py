"""``stairways bench ...``: benchmarks that print throughput figures."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

app = typer.Typer(help="Benchmarks that print throughput figures.", no_args_is_help=True)


@app.command("env")
def bench_env(
    sessions: int = typer.Option(20, help="Sessions in the random-walk benchmark panel."),
    single_steps: int = typer.Option(200_000, help="Steps timed on the single env."),
    vector_steps: int = typer.Option(2_000, help="Batched steps timed per vector size."),
    ppo: bool = typer.Option(True, "--ppo/--no-ppo", help="Also time SB3 PPO (slow)."),
    ppo_rollouts: int = typer.Option(1, help="PPO rollouts (with updates) per measurement."),
    ppo_repeats: int = typer.Option(2, help="PPO measurements per setting; the best is shown."),
    torch_threads: int = typer.Option(1, help="Torch CPU threads during the PPO runs."),
    seed: int = typer.Option(0, help="Seed of data, actions and PPO."),
) -> None:
    """Steps per second of the single env, the batched env and PPO on both (vs CartPole)."""
    import os

    from stairways.bench.env_bench import run_env_bench

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    typer.echo(
        f"env throughput on a random-walk panel; load average {load} on {os.cpu_count()} CPUs"
    )
    run_env_bench(
        sessions=sessions,
        single_steps=single_steps,
        vector_steps=vector_steps,
        ppo=ppo,
        ppo_rollouts=ppo_rollouts,
        ppo_repeats=ppo_repeats,
        torch_threads=torch_threads,
        seed=seed,
        report=lambda name, value: typer.echo(f"{name:36s} {value:14,.0f}"),
    )


_BENCH_START = typer.Option(
    "2022-01-03", "--start", formats=["%Y-%m-%d"], help="First session of the CSV set."
)
_BENCH_END = typer.Option(
    "2024-12-31", "--end", formats=["%Y-%m-%d"], help="Last session of the CSV set."
)
_BENCH_WORKDIR = typer.Option(
    None, "--workdir", help="Keep the CSVs and store here (default: a removed temp dir)."
)


@app.command("data")
def bench_data(
    start: datetime = _BENCH_START,
    end: datetime = _BENCH_END,
    seed: int = typer.Option(20220103, "--seed", help="Synthetic market seed."),
    workdir: Path | None = _BENCH_WORKDIR,
) -> None:
    """Bars per second importing a CSV set (validation included) and computing its features."""
    from stairways.bench.data_bench import GOAL_SECONDS, run_data_bench

    result = run_data_bench(workdir, start=start.date(), end=end.date(), seed=seed)
    typer.echo(
        f"data path: {result.bars:,} bars of {', '.join(result.symbols)} "
        f"{result.start}..{result.end}, {result.files} CSV files, "
        f"{result.csv_bytes / 1e6:.1f} MB (wall clock on this machine)"
    )
    typer.echo(f"{'stage':40s} {'seconds':>9s} {'bars/s':>14s}")
    for s in result.stages:
        typer.echo(f"{s.name:40s} {s.seconds:9.3f} {s.bars_per_second:14,.0f}")
    verdict = "meets" if result.meets_goal else "MISSES"
    typer.echo(
        f"{'import + read + features':40s} {result.counted_seconds:9.3f} "
        f"{result.bars / result.counted_seconds:14,.0f}   ({verdict} the {GOAL_SECONDS:.0f} s goal)"
    )


_TRAIN_TIMESTEPS = typer.Option(
    50_000, "--timesteps", min=1, help="Timesteps per run (50,000: a default training run)."
)
_TRAIN_STORE = typer.Option(
    None, "--store", help="Bar store to train on (default: a temporary synthetic one)."
)
_TRAIN_CONFIG = typer.Option(
    None, "--config", "-c", help="Config to benchmark (default: the built-in defaults)."
)


_TRAIN_PASSES = typer.Option(
    2, "--passes", min=1, help="Interleaved passes of each backend; the best of each is shown."
)
_BENCH_README = typer.Option(
    None, "--readme", help="Also write the comparison between this file's markers."
)
_TRAIN_SAME = typer.Option(
    False,
    "--same-hyperparameters",
    help="Run the fused backend with the SB3 run's n_envs, n_steps, batch_size, n_epochs and "
    "learning_rate instead of its own defaults for those the config leaves unset.",
)


@app.command("train")
def bench_train(
    timesteps: int = _TRAIN_TIMESTEPS,
    store: Path | None = _TRAIN_STORE,
    config: Path | None = _TRAIN_CONFIG,
    passes: int = _TRAIN_PASSES,
    same_hyperparameters: bool = _TRAIN_SAME,
    readme: Path | None = _BENCH_README,
) -> None:
    """Training steps per second of the SB3 and the fused backend, side by side, and the ratio.

    Both backends train the same data for the same timesteps, interleaved (sb3, fused, sb3,
    ...) so that both see the same machine load; the best pass of each is shown. Each runs the
    config with its own defaults for the settings the config leaves unset.
    """
    import os

    from stairways.bench.train_bench import backend_configs, compare_backends

    if readme is not None:
        from stairways.bench.learning_bench import write_readme_block
        from stairways.bench.train_bench import README_BLOCK

        write_readme_block(readme, "", README_BLOCK, dry_run=True)  # fail before the runs
    sb3_cfg, fused_cfg = backend_configs(config, same_hyperparameters=same_hyperparameters)
    c = compare_backends(sb3_cfg, fused_cfg, timesteps, store, passes)
    source = "temporary synthetic store (3 months)" if c.baseline.synthetic_store else str(store)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    typer.echo(
        f"training throughput: {timesteps:,} timesteps per run, best of {passes} interleaved "
        f"passes, data: {source}; load average {load} on {os.cpu_count()} CPUs"
    )
    typer.echo(f"sb3: {c.sb3_settings}; fused: {c.fused_settings}")
    typer.echo(f"{'':34s} {'sb3':>12s} {'fused':>12s} {'ratio':>8s}")
    for label, a, b in (
        (
            "end to end (setup + learn + saves)",
            c.baseline.steps_per_second,
            c.fused.steps_per_second,
        ),
        ("learn loop", c.baseline.learn_steps_per_second, c.fused.learn_steps_per_second),
    ):
        typer.echo(f"{label:34s} {a:12,.0f} {b:12,.0f} {b / a:7.1f}x")
    typer.echo(f"{'timesteps trained':34s} {c.baseline.timesteps:12,d} {c.fused.timesteps:12,d}")
    typer.echo(
        f"sb3 rollouts only (after the first) {c.baseline.rollout_steps_per_second:10,.0f} "
        f"steps/s; sb3 PPO update, mean per rollout {c.baseline.update_seconds_mean:.3f} s"
    )
    if readme is not None:
        from stairways.bench.train_bench import comparison_markdown

        block = comparison_markdown(c, timesteps, load, os.cpu_count() or 0)
        write_readme_block(readme, block, README_BLOCK)
        typer.echo(f"wrote the comparison between {readme}'s {README_BLOCK} markers")


_LEARN_CONFIG = typer.Option(
    None, "--config", "-c", help="Config (default: the built-in defaults); its power grid is used."
)
_LEARN_STRENGTHS = typer.Option("0,1", "--strengths", help="Planted-signal strengths (0 needed).")
_LEARN_MARKETS = typer.Option("101,102", "--market-seeds", help="Synthetic market seeds.")
_LEARN_SEEDS = typer.Option("0,1,2", "--training-seeds", help="Training seeds per market.")
_LEARN_TIMESTEPS = typer.Option(None, "--total-timesteps", min=1, help="Timesteps per run.")
_LEARN_OUT = typer.Option(None, "--out", help="Output folder (default runs/learning_<UTC>).")


@app.command("learning")
def bench_learning(
    config: Path | None = _LEARN_CONFIG,
    strengths: str = _LEARN_STRENGTHS,
    market_seeds: str = _LEARN_MARKETS,
    training_seeds: str = _LEARN_SEEDS,
    total_timesteps: int | None = _LEARN_TIMESTEPS,
    same_hyperparameters: bool = _TRAIN_SAME,
    out: Path | None = _LEARN_OUT,
    workers: int | None = typer.Option(None, "--workers", min=1, help="Local worker processes."),
    readme: Path | None = _BENCH_README,
) -> None:
    """The power study with each backend on the same grid: does fused learn what SB3 learns?

    Prints per strength the verdict pass rate and the out-of-sample daily Sharpe of the runs
    of each backend, and whether the fused backend matches (at least as good with a signal,
    no more passes without one).
    """
    from datetime import UTC

    from stairways.bench.learning_bench import (
        README_BLOCK,
        compare_learning,
        comparison_text,
        write_readme_block,
    )
    from stairways.bench.train_bench import backend_configs
    from stairways.config import load_config
    from stairways.configbase import validate_model
    from stairways.errors import InputError
    from stairways.evaluation.settings import PowerConfig

    def numbers(text: str, what: str, kind: type) -> list[object]:
        try:
            return [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise InputError(f"{what} must be comma-separated numbers, got {text!r}") from None

    if readme is not None:
        write_readme_block(readme, "", dry_run=True)  # bad markers fail now, not after the runs
    cfg = load_config(config)
    data = cfg.evaluation.power.model_dump(mode="json")
    data["strengths"] = numbers(strengths, "--strengths", float)
    data["market_seeds"] = numbers(market_seeds, "--market-seeds", int)
    data["training_seeds"] = numbers(training_seeds, "--training-seeds", int)
    # One grid for every strength (the power study's bigger no-signal arm and its other
    # training configs are for the false-positive rate, not for comparing two backends).
    data["null_market_seeds"] = data["market_seeds"]
    data["null_training_seeds"] = data["training_seeds"]
    data["null_arms"] = []
    if total_timesteps is not None:
        data["total_timesteps"] = total_timesteps
    settings = validate_model(PowerConfig, data, "stairways bench learning")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = out or cfg.training.runs_dir / f"learning_{stamp}"
    sb3_cfg, fused_cfg = backend_configs(config, same_hyperparameters=same_hyperparameters)
    c = compare_learning(sb3_cfg, fused_cfg, settings, folder, workers=workers)
    typer.echo(comparison_text(c))
    if readme is not None:
        write_readme_block(readme, comparison_text(c, folders=False))
        typer.echo(f"wrote the comparison between {readme}'s {README_BLOCK} markers")


_EVAL_RUN = typer.Option(
    None, "--run", help="Run to evaluate (default: build a synthetic store and short run)."
)
_EVAL_SPLIT = typer.Option(
    "validation", "--split", help="Split to replay (a development split: not the test year)."
)
_EVAL_CHECKPOINT = typer.Option("final", "--checkpoint", help="final, best or a file.")
_EVAL_SEQUENTIAL = typer.Option(
    None,
    "--sequential-sessions",
    min=1,
    help="Sessions in the sequential loop (default all; fewer are scaled up by steps).",
)
_EVAL_REPEATS = typer.Option(
    3, "--repeats", min=1, help="Warm evaluations after the cold one; the median is shown."
)


@app.command("eval")
def bench_eval(
    run_dir: Path | None = _EVAL_RUN,
    split: str = _EVAL_SPLIT,
    checkpoint: str = _EVAL_CHECKPOINT,
    sequential_sessions: int | None = _EVAL_SEQUENTIAL,
    repeats: int = _EVAL_REPEATS,
    workdir: Path | None = _BENCH_WORKDIR,
) -> None:
    """Seconds to evaluate a checkpoint batched (cold, then warm) vs a model.predict loop."""
    from stairways.bench.eval_bench import load_line, report_lines, run_eval_bench

    typer.echo(f"evaluation speed; {load_line()}")
    r = run_eval_bench(
        run_dir,
        split=split,
        checkpoint=checkpoint,
        sequential_sessions=sequential_sessions,
        workdir=workdir,
        repeats=repeats,
        report=typer.echo,
    )
    for text in report_lines(r):
        typer.echo(text)


_TUNE_BUDGET = typer.Option(2048, "--budget", min=512, help="Training timesteps per trial.")
_TUNE_WORKERS = typer.Option([1, 2], "--workers", help="Worker counts (repeatable).")
_TUNE_STORE = typer.Option(
    None, "--store", help="Bar store with 2022-01..02 (default: a temporary synthetic one)."
)


@app.command("tune")
def bench_tune(
    budget: int = _TUNE_BUDGET,
    workers: list[int] = _TUNE_WORKERS,
    store: Path | None = _TUNE_STORE,
) -> None:
    """Trials per hour of the 2x2 mini grid (real training trials) with 1 and 2 workers."""
    from stairways.bench.tune_bench import run_tune_bench

    typer.echo(
        f"search throughput: 2x2 grid (learning rate x target KL), {budget:,} timesteps per "
        "trial, real training and validation replays (wall clock on this machine)"
    )
    results = run_tune_bench(budget=budget, workers=workers, store=store)
    base = results[0].seconds
    for r in results:
        typer.echo(
            f"{r.workers} worker(s): {r.trials} trials in {r.seconds:7.1f} s  "
            f"{r.trials_per_hour:8,.0f} trials/hour  (speed-up {base / r.seconds:4.2f}x)"
        )


@app.command("governor")
def bench_governor(
    sessions: int = typer.Option(
        251, "--sessions", min=2, help="Sessions replayed, the first a warm-up (251: a year)."
    ),
    extra_intents: int = typer.Option(
        0, "--extra-intents", min=0, help="Random quantity intents per bar beyond the policy's."
    ),
    stage: str = typer.Option("paper", "--stage", help="Risk stage whose limits are used."),
    seed: int = typer.Option(0, "--seed", help="Seed of prices and actions."),
) -> None:
    """Microseconds per risk-governor check (p50/p99) over a replay of real sessions."""
    from stairways.bench.governor_bench import GOAL_P99_US, run_governor_bench

    r = run_governor_bench(
        sessions_count=sessions, extra_intents=extra_intents, stage=stage, seed=seed
    )
    typer.echo(
        f"governor latency, stage {r.stage}: {r.sessions} session{'s' * (r.sessions != 1)}, "
        f"{r.bars:,} bars, "
        f"wall clock per call on this machine; {r.load}"
    )
    typer.echo(f"{'call':34s} {'count':>8s} {'p50 us':>9s} {'p99 us':>9s} {'max us':>10s}")
    labels = {
        "all": "check, every verdict",
        "approve": "check, approved",
        "reduce": "check, reduced",
        "reject": "check, rejected",
        "assess": "assess (once per bar)",
        "submit": "submit (check + journal + memory)",
    }
    for p in r.paths:
        typer.echo(
            f"{labels[p.name]:34s} {p.count:8,d} {p.p50_us:9.1f} {p.p99_us:9.1f} {p.max_us:10.1f}"
        )
    verdict = "meets" if r.meets_goal else "MISSES"
    typer.echo(f"goal p99 under {GOAL_P99_US:.0f} us per check: {verdict}")


@app.command("journal")
def bench_journal(
    appends: int = typer.Option(2_000, "--appends", min=10, help="Events appended one by one."),
    batch: int = typer.Option(4, "--batch", min=1, help="Events per batched transaction."),
    url: str | None = typer.Option(
        None, "--url", help="Measure this empty PostgreSQL database instead of an SQLite file."
    ),
) -> None:
    """Milliseconds per durable journal append (p50/p99), batched events/s, verify records/s."""
    from stairways.bench.journal_bench import run_journal_bench

    r = run_journal_bench(appends=appends, batch_size=batch, url=url)
    typer.echo(f"journal on {r.location}; wall clock on this machine; {r.load}")
    typer.echo(
        f"append, one per transaction       {r.appends:8,d}  p50 {r.append_p50_ms:7.2f} ms  "
        f"p99 {r.append_p99_ms:7.2f} ms  max {r.append_max_ms:7.2f} ms  "
        f"{r.appends_per_s:8,.0f} appends/s"
    )
    label = f"append_many, {r.batch_size} per transaction"
    typer.echo(f"{label:34s} {r.batched_events_per_s:10,.0f} events/s")
    typer.echo(
        f"verify                            {r.verify_records:8,d}  "
        f"{r.verify_records_per_s:10,.0f} records/s"
    )
    typer.echo(f"tail -n 50                        {r.tail_ms:8.2f} ms")


@app.command("live")
def bench_live(
    run_dir: Path = typer.Argument(..., help="Training run directory (a trained model)."),
    day: str = typer.Option(..., "--day", help="Stored session to replay (YYYY-MM-DD)."),
    split: str | None = typer.Option(
        None, "--split", help="Warm the features up as this split's panel does."
    ),
    checkpoint: str = typer.Option("final", "--checkpoint", help="final, best or a file."),
    repeats: int = typer.Option(3, "--repeats", min=1, max=50, help="Passes over the session."),
    halt_trials: int = typer.Option(
        3, "--halt-trials", min=0, max=20, help="Paced rehearsals halted from another handle."
    ),
    pace: float = typer.Option(0.5, "--pace", min=0.05, help="Wall seconds per bar (halt)."),
    poll: float = typer.Option(0.25, "--poll", min=0.01, help="Halt poll interval (seconds)."),
) -> None:
    """Bar-to-intent latency p50/p99 (features, policy, governor) and the time to see a halt."""
    from datetime import date as date_

    from stairways.bench.live_bench import measure_halt, measure_latency
    from stairways.errors import InputError

    try:
        when = date_.fromisoformat(day)
    except ValueError:
        raise InputError(f"--day takes a date YYYY-MM-DD, got {day!r}") from None
    lat = measure_latency(run_dir, when, split, checkpoint=checkpoint, repeats=repeats)
    typer.echo(
        f"bar-to-intent latency, {when}; policy forward pass: {lat.forward_path}; {lat.load}"
    )
    typer.echo(
        f"{'policy path':12s} {'bars':>6s} {'p50 us':>9s} {'p99 us':>9s} {'max us':>9s}  parts"
    )
    for fig in (lat.fast, lat.torch):
        if fig is None:
            continue
        parts = ", ".join(
            f"{k} {fig.parts_p50_us[k]:,.0f}/{fig.parts_p99_us[k]:,.0f}" for k in fig.parts_p50_us
        )
        typer.echo(
            f"{fig.path:12s} {fig.bars:6,d} {fig.p50_us:9,.0f} {fig.p99_us:9,.0f} "
            f"{fig.max_us:9,.0f}  p50/p99 us: {parts}"
        )
    if lat.torch is not None:
        typer.echo(
            f"numpy vs torch forward pass: policy p50 "
            f"{lat.torch.parts_p50_us['policy'] / lat.fast.parts_p50_us['policy']:.1f}x faster, "
            f"whole chain p50 {lat.torch.p50_us / lat.fast.p50_us:.1f}x, "
            f"p99 {lat.torch.p99_us / lat.fast.p99_us:.1f}x; same action on every bar: "
            f"{'yes' if lat.actions_agree else 'NO'}"
        )
    verdict = "meets" if lat.fast.p99_us < 1000.0 else "MISSES"
    typer.echo(f"goal p99 under 1 ms bar to intent: {verdict} ({lat.fast.p99_us:,.0f} us)")
    if halt_trials:
        h = measure_halt(
            run_dir, when, split, checkpoint=checkpoint, trials=halt_trials, pace=pace, poll=poll
        )
        shown = ", ".join(f"{x:.2f}" for x in h.seconds)
        typer.echo(
            f"halt seen and carried out (cancel, flatten) in {shown} s "
            f"(max {max(h.seconds):.2f} s; goal 2 s; poll every {h.poll:g} s, "
            f"{h.pace:g} s per bar)"
        )


@app.command("startup")
def bench_startup(
    repeats: int = typer.Option(3, "--repeats", min=1, max=20, help="Processes per figure."),
) -> None:
    """Seconds to start a training process: import torch, train --help, first PPO update."""
    import os

    from stairways.bench.startup_bench import run_startup_bench

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    typer.echo(f"start-up, best of {repeats} fresh processes; load average {load}")
    run_startup_bench(repeats, report=lambda name, value: typer.echo(f"{name:32s} {value}"))
