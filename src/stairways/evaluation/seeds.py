"""Seed variance: train one config with several seeds, evaluate each, judge the spread.

A sweep passes when, for the chosen metric (``evaluation.seeds.metric``, episode reward mean by
default) on the first evaluated split, the sample standard deviation across seeds (ddof=1) is
below ``max_relative_std`` (30 %) times the absolute mean and below ``max_std`` (0.5) in absolute
terms. A mean of exactly zero makes the relative spread infinite, so it fails. The Sharpe ratio
is reported next to it. The verdict is the pure function :func:`seed_verdict`.

:func:`run_seed_sweep` trains the seeds in parallel worker processes (see
:mod:`stairways.evaluation.jobs`) and writes into the output directory: the seeds' run
directories, ``seed_comparison_stats.csv`` (one row per seed and split, then mean and std rows
per split, then the verdict), ``seed_comparison.png`` and ``seed_sweep.json``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stairways.errors import InputError, StairwaysError
from stairways.evaluation.jobs import Job, default_out_dir, run_jobs
from stairways.evaluation.settings import SeedVarianceConfig

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig

log = logging.getLogger(__name__)

REPORTED_METRICS: tuple[str, ...] = (
    "episode_reward_mean",
    "sharpe",
    "sortino",
    "total_return",
    "max_drawdown",
    "win_rate",
    "trades_per_day",
    "mean_episode_length",
)


@dataclass(frozen=True)
class SeedResult:
    """The evaluated metrics of one seed's run on one split."""

    seed: int
    run_dir: str
    metrics: Mapping[str, float | int | None]
    gates_passed: bool
    split: str = "test"


@dataclass(frozen=True)
class SeedVerdict:
    """Spread of the chosen metric across seeds and whether it is within the limits."""

    metric: str
    n: int
    mean: float
    std: float
    relative_std: float
    max_relative_std: float
    max_std: float
    passed: bool

    def summary(self) -> str:
        """One line for the terminal."""
        word = "PASS" if self.passed else "FAIL"
        return (
            f"seed variance of {self.metric} over {self.n} seeds: mean {self.mean:.4f}, "
            f"std {self.std:.4f}, std/|mean| {self.relative_std:.1%} "
            f"(limits < {self.max_relative_std:.0%} and < {self.max_std:g}): {word}"
        )


def _values(results: Sequence[SeedResult], metric: str) -> np.ndarray:
    out = []
    for r in results:
        value = r.metrics.get(metric)
        if value is None:
            raise InputError(
                f"seed {r.seed} has no defined value of {metric!r} (run {r.run_dir}); "
                "choose another metric with evaluation.seeds.metric"
            )
        out.append(float(value))
    return np.asarray(out, dtype=np.float64)


def seed_verdict(results: Sequence[SeedResult], cfg: SeedVarianceConfig) -> SeedVerdict:
    """Judge the spread of ``cfg.metric`` across ``results`` (at least two seeds)."""
    if len(results) < 2:
        raise InputError(f"seed variance needs at least two seeds, got {len(results)}")
    values = _values(results, cfg.metric)
    mean = float(values.mean())
    std = float(values.std(ddof=1))
    relative = std / abs(mean) if mean != 0.0 else math.inf
    passed = relative < cfg.max_relative_std and std < cfg.max_std
    return SeedVerdict(
        metric=cfg.metric,
        n=len(values),
        mean=mean,
        std=std,
        relative_std=relative,
        max_relative_std=cfg.max_relative_std,
        max_std=cfg.max_std,
        passed=passed,
    )


def _fmt(value: float | int | None) -> str:
    return "" if value is None else repr(float(value))


def write_seed_csv(results: Sequence[SeedResult], verdict: SeedVerdict, path: Path) -> Path:
    """Write one row per seed and split, then mean and std rows per split, then the verdict."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["row", "split", "seed", "run_dir", *REPORTED_METRICS, "gates_passed"]
    splits = list(dict.fromkeys(r.split for r in results))
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for r in results:
            writer.writerow(
                ["seed", r.split, r.seed, r.run_dir]
                + [_fmt(r.metrics.get(m)) for m in REPORTED_METRICS]
                + [r.gates_passed]
            )
        for split in splits:
            group = [r for r in results if r.split == split]
            for label in ("mean", "std"):
                row: list[object] = [label, split, "", ""]
                for m in REPORTED_METRICS:
                    vals = [r.metrics.get(m) for r in group]
                    defined = [float(v) for v in vals if v is not None]
                    if len(defined) != len(vals) or (label == "std" and len(defined) < 2):
                        row.append("")  # undefined for at least one seed: no summary
                    elif label == "mean":
                        row.append(repr(float(np.mean(defined))))
                    else:
                        row.append(repr(float(np.std(defined, ddof=1))))
                row.append("")
                writer.writerow(row)
        writer.writerow(
            [
                "verdict",
                splits[0] if splits else "",
                "",
                f"{verdict.metric}: std/|mean|={verdict.relative_std:.4f} std={verdict.std:.4f}",
                *([""] * len(REPORTED_METRICS)),
                "PASS" if verdict.passed else "FAIL",
            ]
        )
    return path


def plot_seeds(results: Sequence[SeedResult], verdict: SeedVerdict, path: Path) -> Path:
    """Bar chart of the chosen metric and the Sharpe ratio per seed, with the mean marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = [str(r.seed) for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, (verdict.metric, "sharpe"), strict=True):
        # An undefined value (None) is drawn as a missing bar, not as zero.
        vals = [float(v) if (v := r.metrics.get(metric)) is not None else math.nan for r in results]
        ax.bar(seeds, vals, color="#4477aa")
        if not any(math.isnan(v) for v in vals):
            ax.axhline(float(np.mean(vals)), color="#cc3311", linestyle="--", label="mean")
            ax.legend(loc="best")
        ax.set_xlabel("seed")
        ax.set_title(metric)
    word = "PASS" if verdict.passed else "FAIL"
    fig.suptitle(
        f"seed variance of {verdict.metric}: std/|mean| {verdict.relative_std:.1%} ({word})"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class SeedSweepReport:
    """A finished sweep: per-seed results, the verdict and where everything was written."""

    out_dir: Path
    results: list[SeedResult]
    verdict: SeedVerdict
    csv_path: Path
    plot_path: Path
    json_path: Path


def seed_jobs(
    cfg: StairwaysConfig, seeds: Sequence[int], splits: Sequence[str], out_dir: Path
) -> list[Job]:
    """One job per seed: the config with ``training.seed`` set and runs kept in ``out_dir``."""
    base = cfg.model_dump(mode="json")
    jobs = []
    for seed in seeds:
        data = dict(base)
        data["training"] = {**base["training"], "seed": int(seed), "runs_dir": str(out_dir)}
        jobs.append(Job(key=f"seed {seed}", config=data, splits=tuple(splits)))
    return jobs


def run_seed_sweep(
    cfg: StairwaysConfig,
    *,
    seeds: Sequence[int] | None = None,
    total_timesteps: int | None = None,
    splits: Sequence[str] | None = None,
    out_dir: Path | None = None,
    workers: int | None = None,
) -> SeedSweepReport:
    """Train every seed in parallel processes, evaluate each, write stats, plot and verdict.

    :param cfg: the config every seed trains with
    :param seeds: seeds to train (default ``evaluation.seeds.seeds``)
    :param total_timesteps: timesteps per seed (default ``evaluation.seeds.total_timesteps``)
    :param splits: splits to evaluate on, the first decides the verdict (default
        ``evaluation.split``)
    :param out_dir: output directory (default ``<training.runs_dir>/seeds_<config>_<UTC>``)
    :param workers: cap on worker processes
    """
    sc = cfg.evaluation.seeds
    seeds = list(sc.seeds if seeds is None else seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise InputError(f"give at least two distinct seeds, got {seeds}")
    if any(s < 0 for s in seeds):
        raise InputError(f"seeds must be non-negative, got {seeds}")
    splits = list(splits or [cfg.evaluation.split])
    unknown = [s for s in splits if s not in cfg.data.splits]
    if unknown:
        raise InputError(f"unknown splits {unknown}; the config defines {sorted(cfg.data.splits)}")
    steps = sc.total_timesteps if total_timesteps is None else total_timesteps
    if steps < 1:
        raise InputError(f"--total-timesteps must be at least 1, got {steps}")
    cfg = _with_timesteps(cfg, steps)
    out = out_dir or default_out_dir(cfg.training.runs_dir, "seeds", cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    pool = run_jobs(seed_jobs(cfg, seeds, splits, out), workers)
    if pool.failures:
        lines = "; ".join(f"{f.key}: {f.error}" for f in pool.failures)
        raise StairwaysError(f"seed sweep in {out}: {len(pool.failures)} seeds failed: {lines}")
    results = [
        SeedResult(
            seed=int(o.key.split()[-1]),
            run_dir=o.run_dir,
            metrics=o.metrics[split],
            gates_passed=o.gates_passed[split],
            split=split,
        )
        for split in splits
        for o in pool.outcomes
    ]
    primary = [r for r in results if r.split == splits[0]]
    verdict = seed_verdict(primary, sc)
    csv_path = write_seed_csv(results, verdict, out / "seed_comparison_stats.csv")
    plot_path = plot_seeds(primary, verdict, out / "seed_comparison.png")
    summary = {
        "config": cfg.name,
        "seeds": seeds,
        "total_timesteps": steps,
        "splits": splits,
        "verdict": asdict(verdict),
        "outcomes": [asdict(o) for o in pool.outcomes],
    }
    json_path = out / "seed_sweep.json"
    json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info("%s", verdict.summary())
    return SeedSweepReport(out, results, verdict, csv_path, plot_path, json_path)


def _with_timesteps(cfg: StairwaysConfig, steps: int) -> StairwaysConfig:
    """``cfg`` with ``training.total_timesteps`` replaced (validated like any override)."""
    from stairways.config import StairwaysConfig as Config
    from stairways.configbase import set_by_path, validate_model

    data = set_by_path(cfg.model_dump(mode="json"), "training.total_timesteps", steps)
    return validate_model(Config, data, "--total-timesteps")
