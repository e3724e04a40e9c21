"""Training throughput of a real run (``stairways bench train``).

Runs :func:`stairways.training.trainer.train` with the given config (the defaults unless told)
into a temporary run directory, so everything a real run does is timed: the batched env,
VecMonitor and VecNormalize, policy inference during rollouts, PPO updates, checkpoints and
TensorBoard logging. Without ``--store`` it first generates three months of the synthetic
market into a temporary store (not timed) and trains on them. Figures are wall-clock rates on
this machine; the first rollout includes numba compilation of the env kernel unless the cache
is warm, which is why the rollout and update rates are also given separately (from the second
rollout on).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback

from stairways.config import StairwaysConfig
from stairways.configbase import set_by_path, validate_model
from stairways.data.settings import SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from stairways.errors import InputError
from stairways.training.trainer import TrainOptions, train

log = logging.getLogger(__name__)

__all__ = ["TrainBenchResult", "run_train_bench"]

_SYNTH_START = date(2022, 1, 3)
_SYNTH_END = date(2022, 3, 31)
_TRAIN_START = date(2022, 1, 5)  # leaves the first sessions for feature warm-up


@dataclass(frozen=True)
class TrainBenchResult:
    """Measured figures of one benchmark run."""

    timesteps: int
    n_envs: int
    n_steps: int
    seconds: float
    steps_per_second: float
    learn_steps_per_second: float
    rollouts: int
    rollout_steps_per_second: float
    update_seconds_mean: float
    synthetic_store: bool


class _Timer(BaseCallback):
    """Wall-clock time of each rollout and of each update between rollouts."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts: list[float] = []
        self.updates: list[float] = []
        self._start = 0.0
        self._end: float | None = None

    def _on_rollout_start(self) -> None:
        now = time.perf_counter()
        if self._end is not None:
            self.updates.append(now - self._end)
        self._start = now

    def _on_rollout_end(self) -> None:
        self._end = time.perf_counter()
        self.rollouts.append(self._end - self._start)

    def _on_step(self) -> bool:
        return True


def _synthetic_store(folder: Path) -> Path:
    path = folder / "bench.duckdb"
    synth = SyntheticConfig(start=_SYNTH_START, end=_SYNTH_END)
    with BarStore(path) as store:
        store.write_bars(
            generate(synth), source="synthetic", synthetic=True, details=generator_details(synth)
        )
    return path


def run_train_bench(
    cfg: StairwaysConfig, timesteps: int, store: Path | None = None
) -> TrainBenchResult:
    """Train ``timesteps`` with ``cfg`` in a temporary run directory and time it.

    :param cfg: the config to benchmark (its training split is used with ``store``)
    :param timesteps: timesteps to train
    :param store: bar store to train from; None generates a small synthetic one
    """
    if timesteps < cfg.training.rollout_size * 2:
        raise InputError(
            f"--timesteps {timesteps} is under two rollouts ({cfg.training.rollout_size} each); "
            "the update rate needs at least two"
        )
    with tempfile.TemporaryDirectory(prefix="stairways-bench-train-") as tmp:
        folder = Path(tmp)
        data = cfg.model_dump(mode="json")
        data = set_by_path(data, "training.total_timesteps", timesteps)
        if store is None:
            data = set_by_path(data, "data.store_path", str(_synthetic_store(folder)))
            data = set_by_path(
                data, "data.splits.train", {"start": str(_TRAIN_START), "end": str(_SYNTH_END)}
            )
        else:
            data = set_by_path(data, "data.store_path", str(store))
        bench_cfg = validate_model(StairwaysConfig, data, "stairways bench train")
        timer = _Timer()
        started = time.perf_counter()
        result = train(
            bench_cfg,
            TrainOptions(run_dir=folder / "run", extra_callbacks=[timer], command=["bench"]),
        )
        seconds = time.perf_counter() - started
    tc = bench_cfg.training
    warm_rollouts = timer.rollouts[1:] or timer.rollouts
    rollout_rate = tc.rollout_size * len(warm_rollouts) / sum(warm_rollouts)
    updates = timer.updates or [float("nan")]
    return TrainBenchResult(
        timesteps=result.timesteps,
        n_envs=tc.n_envs,
        n_steps=tc.n_steps,
        seconds=seconds,
        steps_per_second=result.timesteps / seconds,
        learn_steps_per_second=result.steps_per_second,
        rollouts=len(timer.rollouts),
        rollout_steps_per_second=rollout_rate,
        update_seconds_mean=sum(updates) / len(updates),
        synthetic_store=store is None,
    )
