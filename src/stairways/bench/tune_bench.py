"""Search throughput (``stairways bench tune``): trials per hour of the 2x2 mini grid.

Each measurement runs a fresh study of the 2x2 grid learning rate {1e-4, 5e-5} x target KL
{0.015, 0.0075} through :func:`stairways.tuning.search.run_search` with the real training
objective (train at a fixed small budget, intermediate and final validation replays, reports),
once per worker count. Without ``--store`` it first generates two months of the synthetic market
into a temporary store (not timed). Trials per hour = 4 trials / wall-clock seconds * 3600; the
time includes starting worker processes, which is what a user of ``--workers`` pays too.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from stairways.configbase import validate_model
from stairways.data.settings import SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from stairways.errors import InputError, StairwaysError
from stairways.tuning.search import SearchRequest, run_search
from stairways.tuning.space import SearchSpace
from stairways.tuning.train_objective import TrainingObjective

log = logging.getLogger(__name__)

__all__ = ["TuneBenchResult", "mini_grid_overrides", "run_tune_bench"]

_SYNTH = SyntheticConfig(start=date(2022, 1, 3), end=date(2022, 2, 28))
_SPLITS = {
    "train": {"start": "2022-01-05", "end": "2022-01-31"},  # first sessions warm the features
    "validation": {"start": "2022-02-01", "end": "2022-02-14"},
    "test": {"start": "2022-02-15", "end": "2022-02-28"},
}
# A small network and short rollouts: the benchmark measures the search machinery around
# realistic (if short) trials, not PPO at full size (``stairways bench train`` does that).
_TRAINING = {
    "n_envs": 8,
    "n_steps": 64,
    "batch_size": 256,
    "n_epochs": 2,
    "policy": {"net_arch": [32, 32]},
    "rolling_window": 20,
    "tensorboard": False,
}


def mini_grid_overrides(store: Path) -> dict[str, Any]:
    """Dotted config overrides of the benchmark's trials: the store, its splits, small PPO.

    :param store: bar store holding 2022-01-03..2022-02-28
    """
    return {
        "data.store_path": str(store),
        "data.splits": _SPLITS,
        "data.protected_splits": ["test"],
        "env.drawdown_cap": 0.01,
        **{f"training.{k}": v for k, v in _TRAINING.items()},
    }


@dataclass(frozen=True)
class TuneBenchResult:
    """One measurement: the grid with ``workers`` workers."""

    workers: int
    trials: int
    seconds: float
    trials_per_hour: float


def _space(budget: int) -> SearchSpace:
    return validate_model(
        SearchSpace,
        {
            "name": "bench_mini_grid",
            "sampler": "grid",
            "budget": {"total_timesteps": budget, "eval_every": max(1, budget // 2)},
            "pruner": {"kind": "none"},  # every trial runs its full budget
            "parameters": {
                "training.learning_rate": {"choices": [1.0e-4, 5.0e-5]},
                "training.target_kl": {"choices": [0.015, 0.0075]},
            },
        },
        "bench space",
    )


def run_tune_bench(
    budget: int = 2048,
    workers: Sequence[int] = (1, 2),
    store: Path | None = None,
    work_dir: Path | None = None,
) -> list[TuneBenchResult]:
    """Time the 2x2 grid once per worker count.

    :param budget: training timesteps per trial
    :param workers: worker counts to measure, in order
    :param store: bar store holding 2022-01-03..2022-02-28 (default: a temporary synthetic one)
    :param work_dir: where studies and trial runs go (default: a temporary directory)
    """
    if budget < 512:
        raise InputError(f"--budget must be at least 512 timesteps (one rollout), got {budget}")
    with tempfile.TemporaryDirectory(prefix="stairways_bench_tune_") as tmp:
        root = work_dir or Path(tmp)
        if store is None:
            store = root / "bars.duckdb"
            with BarStore(store) as bars:
                bars.write_bars(
                    generate(_SYNTH),
                    source="synthetic",
                    synthetic=True,
                    details=generator_details(_SYNTH),
                )
        overrides = {
            **mini_grid_overrides(store),
            # The speed bump would stop these untuned runs after 30k timesteps: every trial
            # must run its whole budget for the figure to mean trials of that budget per hour.
            "training.speed_bump": {"enabled": False},
        }
        space = _space(budget)
        results = []
        for n in workers:
            name = f"bench_w{n}"
            objective = TrainingObjective(
                base_config=None,
                study_name=name,
                split="validation",
                total_timesteps=budget,
                eval_every=space.budget.eval_every,
                base_overrides=overrides,
            )
            request = SearchRequest(
                space=space,
                out_dir=root / name,
                study_name=name,
                workers=n,
                base_overrides=overrides,
            )
            started = time.perf_counter()
            outcome = run_search(request, objective)
            seconds = time.perf_counter() - started
            finished = outcome.progress.finished
            if finished != space.grid_size:
                raise StairwaysError(
                    f"the benchmark grid finished {finished} of {space.grid_size} trials with "
                    f"{n} workers; see {request.out_dir / 'results.csv'}"
                )
            results.append(TuneBenchResult(n, finished, seconds, finished / seconds * 3600.0))
            log.info("%d workers: %d trials in %.1f s", n, finished, seconds)
        return results
