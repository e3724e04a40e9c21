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

from stairways.config import StairwaysConfig, load_config
from stairways.configbase import set_by_path, validate_model
from stairways.data.settings import SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from stairways.errors import InputError
from stairways.training.settings import backend_settings
from stairways.training.trainer import TrainOptions, train

log = logging.getLogger(__name__)

__all__ = [
    "BackendComparison",
    "TrainBenchResult",
    "backend_configs",
    "compare_backends",
    "run_train_bench",
    "settings_text",
]

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


def _bench_config(
    cfg: StairwaysConfig, timesteps: int, store: Path, synthetic: bool
) -> StairwaysConfig:
    data = cfg.model_dump(mode="json")
    data = set_by_path(data, "training.total_timesteps", timesteps)
    data = set_by_path(data, "training.tensorboard", cfg.training.tensorboard)
    data = set_by_path(data, "data.store_path", str(store))
    if synthetic:
        data = set_by_path(
            data, "data.splits.train", {"start": str(_TRAIN_START), "end": str(_SYNTH_END)}
        )
    return validate_model(StairwaysConfig, data, "stairways bench train")


def _one_run(cfg: StairwaysConfig, folder: Path, synthetic: bool) -> TrainBenchResult:
    """Train once into ``folder`` and time it (SB3 runs get the rollout/update timer)."""
    tc = cfg.training
    timer = _Timer()
    callbacks = [timer] if tc.backend == "sb3" else []
    started = time.perf_counter()
    result = train(cfg, TrainOptions(run_dir=folder, extra_callbacks=callbacks, command=["bench"]))
    seconds = time.perf_counter() - started
    rollouts = len(timer.rollouts) if timer.rollouts else -(-result.timesteps // tc.rollout_size)
    if timer.rollouts:
        warm_rollouts = timer.rollouts[1:] or timer.rollouts
        rollout_rate = tc.rollout_size * len(warm_rollouts) / sum(warm_rollouts)
        updates = timer.updates or [float("nan")]
        update_mean = sum(updates) / len(updates)
    else:
        rollout_rate = float("nan")
        update_mean = float("nan")
    return TrainBenchResult(
        timesteps=result.timesteps,
        n_envs=tc.n_envs,
        n_steps=tc.n_steps,
        seconds=seconds,
        steps_per_second=result.timesteps / seconds,
        learn_steps_per_second=result.steps_per_second,
        rollouts=rollouts,
        rollout_steps_per_second=rollout_rate,
        update_seconds_mean=update_mean,
        synthetic_store=synthetic,
    )


def run_train_bench(
    cfg: StairwaysConfig, timesteps: int, store: Path | None = None
) -> TrainBenchResult:
    """Train ``timesteps`` with ``cfg`` in a temporary run directory and time it.

    :param cfg: the config to benchmark (its training split is used with ``store``)
    :param timesteps: timesteps to train
    :param store: bar store to train from; None generates a small synthetic one
    """
    _check_timesteps(cfg, timesteps)
    with tempfile.TemporaryDirectory(prefix="stairways-bench-train-") as tmp:
        folder = Path(tmp)
        synthetic = store is None
        path = _synthetic_store(folder) if store is None else store
        return _one_run(_bench_config(cfg, timesteps, path, synthetic), folder / "run", synthetic)


def _check_timesteps(cfg: StairwaysConfig, timesteps: int) -> None:
    if timesteps < cfg.training.rollout_size * 2:
        raise InputError(
            f"--timesteps {timesteps} is under two rollouts ({cfg.training.rollout_size} each); "
            "the update rate needs at least two"
        )


def backend_configs(
    config: Path | None, *, same_hyperparameters: bool = False
) -> tuple[StairwaysConfig, StairwaysConfig]:
    """``config`` loaded once with each backend: (sb3, fused).

    The config is read again with ``training.backend`` set, so the settings it leaves unset
    (:data:`~stairways.training.settings.BACKEND_SETTINGS`) take each backend's own defaults
    and the ones it gives are kept for both.

    :param config: YAML file; None for the built-in defaults
    :param same_hyperparameters: the fused config takes the sb3 config's resolved settings
    """
    sb3 = load_config(config, {"training.backend": "sb3"})
    overrides: dict[str, object] = {"training.backend": "fused"}
    if same_hyperparameters:
        # A setting a curriculum phase replaces is left out of the dump (and must stay unset).
        dumped = sb3.model_dump(mode="json")["training"]
        overrides.update(
            {f"training.{k}": v for k, v in backend_settings(sb3.training).items() if k in dumped}
        )
    return sb3, load_config(config, overrides)


def settings_text(cfg: StairwaysConfig) -> str:
    """``n_envs 64, n_steps 16, batch_size 1024, n_epochs 2, learning_rate 0.003``."""
    return ", ".join(f"{k} {v}" for k, v in backend_settings(cfg.training).items())


@dataclass(frozen=True)
class BackendComparison:
    """Best-of-``passes`` figures of each backend, measured interleaved in one process.

    :param baseline: the SB3 backend
    :param fused: the fused backend
    :param sb3_settings: the SB3 runs' backend-dependent settings (as text)
    :param fused_settings: the fused runs' backend-dependent settings (as text)
    :param passes: interleaved passes (sb3, fused, sb3, fused, ...)
    """

    baseline: TrainBenchResult
    fused: TrainBenchResult
    sb3_settings: str
    fused_settings: str
    passes: int

    @property
    def ratio(self) -> float:
        """End-to-end steps/s of the fused backend over SB3's."""
        return self.fused.steps_per_second / self.baseline.steps_per_second

    @property
    def learn_ratio(self) -> float:
        """Learn-loop steps/s of the fused backend over SB3's."""
        return self.fused.learn_steps_per_second / self.baseline.learn_steps_per_second


def compare_backends(
    sb3_cfg: StairwaysConfig,
    fused_cfg: StairwaysConfig,
    timesteps: int,
    store: Path | None = None,
    passes: int = 2,
) -> BackendComparison:
    """Both backends on the same data, interleaved ``passes`` times; the best pass of each.

    The machine may be shared: interleaving puts both under the same load, and the best pass
    of each is the least disturbed one.

    :param sb3_cfg: the SB3 runs' config (:func:`backend_configs`)
    :param fused_cfg: the fused runs' config
    :param timesteps: timesteps of every run
    :param store: bar store; None generates a small synthetic one (not timed)
    :param passes: interleaved passes of each backend
    """
    if passes < 1:
        raise InputError(f"--passes must be at least 1, got {passes}")
    for name, cfg in (("sb3", sb3_cfg), ("fused", fused_cfg)):
        if cfg.training.backend != name:
            raise ValueError(f"the {name} config trains with backend {cfg.training.backend!r}")
    _check_timesteps(sb3_cfg, timesteps)
    _check_timesteps(fused_cfg, timesteps)
    with tempfile.TemporaryDirectory(prefix="stairways-bench-train-") as tmp:
        folder = Path(tmp)
        synthetic = store is None
        path = _synthetic_store(folder) if store is None else store
        a_cfg = _bench_config(sb3_cfg, timesteps, path, synthetic)
        b_cfg = _bench_config(fused_cfg, timesteps, path, synthetic)
        best: dict[str, TrainBenchResult] = {}
        for k in range(passes):
            for name, run_cfg in (("sb3", a_cfg), ("fused", b_cfg)):
                r = _one_run(run_cfg, folder / f"{name}-{k}", synthetic)
                log.info("pass %d %s: %.0f steps/s", k, name, r.steps_per_second)
                if name not in best or r.steps_per_second > best[name].steps_per_second:
                    best[name] = r
    return BackendComparison(
        best["sb3"], best["fused"], settings_text(sb3_cfg), settings_text(fused_cfg), passes
    )


README_BLOCK = "train-bench"
"""Name of the README's markers (``<!-- train-bench:begin -->``) that take the comparison."""


def comparison_markdown(c: BackendComparison, timesteps: int, load: str, cpus: int) -> str:
    """The README's block: the settings, both backends' steps/s and the ratio, as a table."""
    rows = [
        f"{timesteps:,} timesteps per run, best of {c.passes} interleaved passes, load average "
        f"{load} on {cpus} CPUs; sb3: {c.sb3_settings}; fused: {c.fused_settings}",
        "",
        "| | sb3 | fused | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, a, b in (
        (
            "end to end (setup + learn + saves)",
            c.baseline.steps_per_second,
            c.fused.steps_per_second,
        ),
        ("learn loop", c.baseline.learn_steps_per_second, c.fused.learn_steps_per_second),
    ):
        rows.append(f"| {label} | {a:,.0f} steps/s | {b:,.0f} steps/s | {b / a:.1f}x |")
    return "\n".join(rows)
