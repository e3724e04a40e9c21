"""``stairways seeds``: train one config with several seeds in parallel and judge the spread.

Exit codes: 0 the spread is within the limits; 3 it is not (outputs were written); 2 bad input;
1 any other failure (for example a seed's training failed).
"""

from __future__ import annotations

from pathlib import Path

import typer

from stairways.cli.common import StoreOption
from stairways.cli.task_backend import AddressOption, BackendOption, task_backend
from stairways.config import load_config
from stairways.errors import InputError
from stairways.evaluation.gates import GatesFailedError
from stairways.evaluation.metrics import sharpe_text


def split_greedy(
    first_seeds: list[str], first_splits: list[str], extra: list[str]
) -> tuple[list[int], list[str]]:
    """Seeds and splits from ``--seeds 0 1 2 --splits validation test`` style arguments.

    Click gives an option one value; the remaining words arrive as extra arguments. Whole
    numbers among them are seeds, other words are split names. Commas also separate values.
    """
    words = [w for item in (*first_seeds, *first_splits, *extra) for w in item.split(",") if w]
    seeds: list[int] = []
    splits: list[str] = []
    for w in words:
        if w.lstrip("-").isdigit():
            seeds.append(int(w))
        elif w.startswith("-"):
            raise InputError(f"unknown option {w}")
        else:
            splits.append(w)
    if splits and not first_splits:
        raise InputError(f"unexpected arguments {splits}; split names follow --splits")
    return seeds, splits


CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": False}
_CONFIG = typer.Option(None, "--config", "-c", help="YAML config to train.")
_SEEDS = typer.Option(
    [], "--seeds", help="Seeds to train, for example --seeds 0 1 2 3 (default from config)."
)
_STEPS = typer.Option(
    None, "--total-timesteps", min=1, help="Timesteps per seed (evaluation.seeds)."
)
_SPLITS = typer.Option(
    [],
    "--splits",
    help="Splits to evaluate; the first decides (default validation: never the test year).",
)
_OUT = typer.Option(
    None, "--out", help="Output directory (default runs/seeds_<config>_<UTC time>)."
)
_WORKERS = typer.Option(
    None, "--workers", min=1, help="Cap on worker processes (default: seeds or cores)."
)


def seeds(
    ctx: typer.Context,
    config: Path | None = _CONFIG,
    seed_values: list[str] = _SEEDS,
    total_timesteps: int | None = _STEPS,
    split_values: list[str] = _SPLITS,
    out: Path | None = _OUT,
    workers: int | None = _WORKERS,
    store: Path | None = StoreOption,
    backend: BackendOption = "local",
    address: AddressOption = None,
) -> None:
    """Train the seeds in parallel (processes or Ray), evaluate each, write stats and verdict."""
    from stairways.evaluation.seeds import run_seed_sweep

    seed_list, split_list = split_greedy(seed_values, split_values, list(ctx.args))
    runner = task_backend(backend, address, workers)
    overrides = {"data.store_path": str(store)} if store is not None else {}
    cfg = load_config(config, overrides)
    report = run_seed_sweep(
        cfg,
        seeds=seed_list or None,
        total_timesteps=total_timesteps,
        splits=split_list or None,
        out_dir=out,
        workers=workers,
        backend=runner,
    )
    for r in report.results:
        pnl = r.metrics.get("mean_daily_pnl")
        typer.echo(
            f"seed {r.seed} {r.split}: mean daily net P&L "
            f"{'undefined' if pnl is None else f'${float(pnl):+.2f}'}, "
            f"{sharpe_text(dict(r.metrics))}, episode reward mean "
            f"{r.metrics['episode_reward_mean']}, gates "
            f"{'PASS' if r.gates_passed else 'FAIL'}  ({r.run_dir})"
        )
    typer.echo(report.verdict.summary())
    typer.echo(f"stats: {report.csv_path}")
    typer.echo(f"plot: {report.plot_path}")
    if not report.verdict.passed:
        raise GatesFailedError(
            f"the seeds do not agree on {report.verdict.metric} (see {report.csv_path})"
        )
