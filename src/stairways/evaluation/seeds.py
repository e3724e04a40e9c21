"""Seed variance: train one config with several seeds, evaluate each, judge the agreement.

The verdict (:func:`seed_verdict`) is on one metric (``evaluation.seeds.metric``, the mean daily
net P&L by default) of the first evaluated split, compared with that metric's gate:

============================ ====================================== =====
metric                        gate threshold                         pass
============================ ====================================== =====
mean_daily_pnl                0 (makes money)                        >
daily_sharpe                  0                                      >
earned_reward_mean            gates.min_earned_reward_mean (0.1)     >=
sharpe                        gates.min_sharpe (0.3)                 >=
episode_reward_mean           gates.min_episode_reward_mean (0.1)    >=
============================ ====================================== =====

A sweep passes when (1) the mean across seeds is on the passing side of the threshold, (2) at
least ``min_agreement`` (all, by default) of the seeds are on that side (seeds agree in sign),
and (3) the spread is small against the distance from the threshold:
``std / |mean - threshold| < max_relative_std`` (0.30), a coefficient of variation that does
not depend on the metric's scale. Seeds that all lose consistently therefore fail. The mean,
the sample standard deviation (ddof=1) and a Student-t confidence interval of the mean are
reported.

:func:`run_seed_sweep` trains the seeds in parallel worker processes, or as tasks on the Ray
backend (see :mod:`stairways.evaluation.jobs`), and writes into the output directory: the
seeds' run directories, ``seed_comparison_stats.csv`` (one row per seed and split, then mean
and std rows per split, then the verdict), ``seed_comparison.png`` and ``seed_sweep.json``.
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

from stairways.data.splits import DEVELOPMENT_SPLIT
from stairways.errors import ConfigError, InputError, StairwaysError
from stairways.evaluation.jobs import Job, TaskBackend, default_out_dir, run_jobs
from stairways.evaluation.settings import GateConfig, SeedVarianceConfig
from stairways.evaluation.stats import t_interval

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig

log = logging.getLogger(__name__)

REPORTED_METRICS: tuple[str, ...] = (
    "mean_daily_pnl",
    "daily_sharpe",
    "sharpe",
    "earned_reward_mean",
    "episode_reward_mean",
    "sum_daily_returns",
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
    split: str = DEVELOPMENT_SPLIT


def metric_gate(metric: str, gates: GateConfig) -> tuple[float, str]:
    """The threshold and comparison (``>`` or ``>=``) a seed metric is judged against."""
    if metric in ("mean_daily_pnl", "daily_sharpe"):
        return 0.0, ">"
    if metric == "earned_reward_mean":
        if gates.min_earned_reward_mean is None:
            raise ConfigError(
                "evaluation.seeds.metric is earned_reward_mean but the earned-reward gate is "
                "off (evaluation.gates.min_earned_reward_mean: null); choose another metric"
            )
        return gates.min_earned_reward_mean, ">="
    if metric == "sharpe":
        return gates.min_sharpe, ">="
    if metric == "episode_reward_mean":
        return gates.min_episode_reward_mean, ">="
    raise ConfigError(f"evaluation.seeds.metric {metric!r} has no gate")


def _on_passing_side(value: float, threshold: float, op: str) -> bool:
    return value > threshold if op == ">" else value >= threshold


@dataclass(frozen=True)
class SeedVerdict:
    """Agreement of the chosen metric across seeds and whether it passes."""

    metric: str
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float
    threshold: float
    op: str
    mean_passes: bool
    agreement: float
    min_agreement: float
    relative_std: float
    max_relative_std: float
    passed: bool

    def summary(self) -> str:
        """One line for the terminal."""
        word = "PASS" if self.passed else "FAIL"
        return (
            f"seeds: {self.metric} over {self.n} seeds: mean {self.mean:.4f} "
            f"({self.confidence:.0%} CI [{self.ci_low:.4f}, {self.ci_high:.4f}]), std "
            f"{self.std:.4f}; mean {self.op} {self.threshold:g}: "
            f"{'yes' if self.mean_passes else 'no'}; seeds on the passing side "
            f"{self.agreement:.0%} (need {self.min_agreement:.0%}); std/|mean - threshold| "
            f"{self.relative_std:.1%} (limit < {self.max_relative_std:.0%}): {word}"
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


def seed_verdict(
    results: Sequence[SeedResult], cfg: SeedVarianceConfig, gates: GateConfig
) -> SeedVerdict:
    """Judge ``cfg.metric`` across ``results`` (at least two seeds) against its gate."""
    if len(results) < 2:
        raise InputError(f"seed variance needs at least two seeds, got {len(results)}")
    values = _values(results, cfg.metric)
    threshold, op = metric_gate(cfg.metric, gates)
    ci = t_interval(values, cfg.confidence)
    distance = abs(ci.mean - threshold)
    relative = ci.std / distance if distance > 0.0 else math.inf
    mean_passes = _on_passing_side(ci.mean, threshold, op)
    agreement = float(np.mean([_on_passing_side(v, threshold, op) for v in values]))
    passed = mean_passes and agreement >= cfg.min_agreement and relative < cfg.max_relative_std
    return SeedVerdict(
        metric=cfg.metric,
        n=len(values),
        mean=ci.mean,
        std=ci.std,
        ci_low=ci.low,
        ci_high=ci.high,
        confidence=ci.confidence,
        threshold=threshold,
        op=op,
        mean_passes=mean_passes,
        agreement=agreement,
        min_agreement=cfg.min_agreement,
        relative_std=relative,
        max_relative_std=cfg.max_relative_std,
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
                f"{verdict.metric}: mean={verdict.mean:.6g} "
                f"CI=[{verdict.ci_low:.6g}, {verdict.ci_high:.6g}] std={verdict.std:.6g} "
                f"agreement={verdict.agreement:.4f} "
                f"std/|mean-threshold|={verdict.relative_std:.4f}",
                *([""] * len(REPORTED_METRICS)),
                "PASS" if verdict.passed else "FAIL",
            ]
        )
    return path


def plot_seeds(results: Sequence[SeedResult], verdict: SeedVerdict, path: Path) -> Path:
    """Bar chart of the chosen metric (with its gate and mean) and a Sharpe ratio per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = [str(r.seed) for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    second = "daily_sharpe" if verdict.metric != "daily_sharpe" else "sharpe"
    for ax, metric in zip(axes, (verdict.metric, second), strict=True):
        # An undefined value (None) is drawn as a missing bar, not as zero.
        vals = [float(v) if (v := r.metrics.get(metric)) is not None else math.nan for r in results]
        ax.bar(seeds, vals, color="#4477aa")
        if metric == verdict.metric:
            ax.axhline(verdict.threshold, color="#222222", linestyle=":", label="gate")
        if not any(math.isnan(v) for v in vals):
            ax.axhline(float(np.mean(vals)), color="#cc3311", linestyle="--", label="mean")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best")
        ax.set_xlabel("seed")
        ax.set_title(metric)
    word = "PASS" if verdict.passed else "FAIL"
    fig.suptitle(
        f"seeds: {verdict.metric} mean {verdict.mean:.4g} "
        f"[{verdict.ci_low:.4g}, {verdict.ci_high:.4g}], agreement {verdict.agreement:.0%} "
        f"({word})"
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
    backend: TaskBackend | None = None,
) -> SeedSweepReport:
    """Train every seed in parallel processes, evaluate each, write stats, plot and verdict.

    :param cfg: the config every seed trains with
    :param seeds: seeds to train (default ``evaluation.seeds.seeds``)
    :param total_timesteps: timesteps per seed (default ``evaluation.seeds.total_timesteps``)
    :param splits: splits to evaluate on, the first decides the verdict (default
        ``validation``, the development split: seeds never look at the test year by default)
    :param out_dir: output directory (default ``<training.runs_dir>/seeds_<config>_<UTC>``)
    :param workers: cap on local worker processes
    :param backend: run the seeds as tasks on this backend (Ray) instead of local processes
    """
    sc = cfg.evaluation.seeds
    seeds = list(sc.seeds if seeds is None else seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise InputError(f"give at least two distinct seeds, got {seeds}")
    if any(s < 0 for s in seeds):
        raise InputError(f"seeds must be non-negative, got {seeds}")
    # A seed sweep is development work: it evaluates on the validation split unless told.
    splits = list(splits or [DEVELOPMENT_SPLIT])
    unknown = [s for s in splits if s not in cfg.data.splits]
    if unknown:
        raise InputError(f"unknown splits {unknown}; the config defines {sorted(cfg.data.splits)}")
    steps = sc.total_timesteps if total_timesteps is None else total_timesteps
    if steps < 1:
        raise InputError(f"--total-timesteps must be at least 1, got {steps}")
    cfg = _with_timesteps(cfg, steps)
    out = out_dir or default_out_dir(cfg.training.runs_dir, "seeds", cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    metric_gate(sc.metric, cfg.evaluation.gates)  # a metric without a gate fails before training
    pool = run_jobs(seed_jobs(cfg, seeds, splits, out), workers, backend)
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
    verdict = seed_verdict(primary, sc, cfg.evaluation.gates)
    csv_path = write_seed_csv(results, verdict, out / "seed_comparison_stats.csv")
    plot_path = plot_seeds(primary, verdict, out / "seed_comparison.png")
    summary = {
        "config": cfg.name,
        "seeds": seeds,
        "total_timesteps": steps,
        "splits": splits,
        "backend": "local" if backend is None else backend.name,
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
