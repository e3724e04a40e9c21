"""Temporal (walk-forward) validation: train on one period, evaluate out of sample on a later one.

Pairs are named in ``evaluation.temporal`` (defaults: the plan's out-of-sample test
``train2022_2023_test2024``, then ``train2022_test2023`` and ``train2023_test2024``). For each
pair the config's splits are replaced by exactly two: ``train`` (the pair's training range, also
the normalisation split) and ``test`` (the pair's test range, protected), so the feature
normaliser and the agent see nothing of the test period. Each pair trains in its own worker
process (:mod:`stairways.evaluation.jobs`), is evaluated on ``test`` and judged by the success
gates. Outputs: the pairs' run directories, ``temporal_validation.csv`` and
``temporal_validation.json`` in the output directory.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stairways.errors import InputError, StairwaysError
from stairways.evaluation.jobs import Job, JobOutcome, default_out_dir, run_jobs
from stairways.evaluation.settings import TemporalPair
from stairways.reports import tables as t

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig

log = logging.getLogger(__name__)

TEST_SPLIT = "test"
TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class PairResult:
    """One pair's outcome: ranges, run, headline metrics and the gate verdict."""

    name: str
    train: str
    test: str
    run_dir: str
    checkpoint: str
    sharpe: float | None
    daily_sharpe: float | None
    daily_sharpe_low: float | None
    daily_sharpe_high: float | None
    mean_daily_pnl: float
    episode_reward_mean: float
    mean_episode_length: float
    sum_daily_returns: float
    gates_passed: bool
    gates: dict[str, Any]


@dataclass(frozen=True)
class TemporalReport:
    """All pairs of a temporal validation and where the summary was written."""

    out_dir: Path
    pairs: list[PairResult]
    csv_path: Path
    json_path: Path

    @property
    def passed(self) -> bool:
        """Whether every pair passed every gate."""
        return all(p.gates_passed for p in self.pairs)


def pair_config(cfg: StairwaysConfig, pair: TemporalPair, runs_dir: Path) -> dict[str, Any]:
    """The config (as data) that trains on ``pair.train`` and evaluates on ``pair.test``."""
    data = cfg.model_dump(mode="json")
    data["data"] = {
        **data["data"],
        "splits": {
            TRAIN_SPLIT: pair.train.model_dump(mode="json"),
            TEST_SPLIT: pair.test.model_dump(mode="json"),
        },
        "protected_splits": [TEST_SPLIT],
        "features": {**data["data"]["features"], "normalisation_split": TRAIN_SPLIT},
    }
    data["training"] = {**data["training"], "split": TRAIN_SPLIT, "runs_dir": str(runs_dir)}
    data["evaluation"] = {**data["evaluation"], "split": TEST_SPLIT}
    return data


def select_pairs(cfg: StairwaysConfig, names: Sequence[str] | None) -> list[str]:
    """Pair names to run: the given ones (checked), else all, the primary pair first."""
    pairs = cfg.evaluation.temporal
    if not pairs:
        raise InputError("evaluation.temporal defines no pairs; add at least one to the config")
    if names:
        unknown = [n for n in names if n not in pairs]
        if unknown:
            raise InputError(f"unknown temporal pairs {unknown}; configured: {sorted(pairs)}")
        return list(dict.fromkeys(names))
    primary = cfg.evaluation.temporal_primary
    return [primary, *(n for n in pairs if n != primary)]


def run_temporal_validation(
    cfg: StairwaysConfig,
    *,
    pairs: Sequence[str] | None = None,
    total_timesteps: int | None = None,
    out_dir: Path | None = None,
    workers: int | None = None,
) -> TemporalReport:
    """Train and evaluate every selected pair; write the summary CSV and JSON.

    :param cfg: the base config (training hyperparameters, market, reward, gates)
    :param pairs: pair names (default: all configured, the primary first)
    :param total_timesteps: timesteps per pair (default ``training.total_timesteps``)
    :param out_dir: output directory (default ``<training.runs_dir>/temporal_<config>_<UTC>``)
    :param workers: cap on worker processes
    """
    from stairways.config import StairwaysConfig as Config
    from stairways.configbase import validate_model

    names = select_pairs(cfg, pairs)
    out = out_dir or default_out_dir(cfg.training.runs_dir, "temporal", cfg.name)
    jobs = []
    for name in names:
        data = pair_config(cfg, cfg.evaluation.temporal[name], out)
        if total_timesteps is not None:
            data["training"]["total_timesteps"] = int(total_timesteps)
        # Validate in this process so a bad pair fails before any worker starts.
        validate_model(Config, data, f"evaluation.temporal.{name}")
        jobs.append(Job(key=name, config=data, splits=(TEST_SPLIT,)))
    out.mkdir(parents=True, exist_ok=True)
    pool = run_jobs(jobs, workers)
    if pool.failures:
        lines = "; ".join(f"{f.key}: {f.error}" for f in pool.failures)
        raise StairwaysError(f"temporal validation in {out}: pairs failed: {lines}")
    results = [_pair_result(cfg.evaluation.temporal[o.key], o) for o in pool.outcomes]
    csv_path = _write_csv(results, out / "temporal_validation.csv")
    json_path = out / "temporal_validation.json"
    json_path.write_text(
        json.dumps({"config": cfg.name, "pairs": [asdict(p) for p in results]}, indent=2) + "\n"
    )
    return TemporalReport(out, results, csv_path, json_path)


def _num(metrics: Any, key: str) -> float:
    value = metrics[key]
    if value is None:
        raise StairwaysError(f"metric {key} is undefined in an evaluation that must define it")
    return float(value)


def _opt(metrics: Any, key: str) -> float | None:
    value = metrics[key]
    return None if value is None else float(value)


def _pair_result(pair: TemporalPair, o: JobOutcome) -> PairResult:
    m = o.metrics[TEST_SPLIT]
    sharpe = m["sharpe"]
    return PairResult(
        name=o.key,
        train=f"{pair.train.start}..{pair.train.end}",
        test=f"{pair.test.start}..{pair.test.end}",
        run_dir=o.run_dir,
        checkpoint=o.checkpoint,
        sharpe=None if sharpe is None else float(sharpe),
        daily_sharpe=_opt(m, "daily_sharpe"),
        daily_sharpe_low=_opt(m, "daily_sharpe_low"),
        daily_sharpe_high=_opt(m, "daily_sharpe_high"),
        mean_daily_pnl=_num(m, "mean_daily_pnl"),
        episode_reward_mean=_num(m, "episode_reward_mean"),
        mean_episode_length=_num(m, "mean_episode_length"),
        sum_daily_returns=_num(m, "sum_daily_returns"),
        gates_passed=o.gates_passed[TEST_SPLIT],
        gates=dict(o.gates[TEST_SPLIT]),
    )


def _write_csv(results: Sequence[PairResult], path: Path) -> Path:
    columns = [
        "pair",
        "train",
        "test",
        "sharpe",
        "daily_sharpe",
        "daily_sharpe_low",
        "daily_sharpe_high",
        "mean_daily_pnl",
        "episode_reward_mean",
        "mean_episode_length",
        "sum_daily_returns",
        "gates_passed",
        "run_dir",
        "checkpoint",
    ]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for p in results:
            writer.writerow(
                [
                    p.name,
                    p.train,
                    p.test,
                    "" if p.sharpe is None else repr(p.sharpe),
                    *("" if v is None else repr(v) for v in _daily(p)),
                    repr(p.mean_daily_pnl),
                    repr(p.episode_reward_mean),
                    repr(p.mean_episode_length),
                    repr(p.sum_daily_returns),
                    "PASS" if p.gates_passed else "FAIL",
                    p.run_dir,
                    p.checkpoint,
                ]
            )
    return path


def _daily(p: PairResult) -> tuple[float | None, float | None, float | None]:
    return (p.daily_sharpe, p.daily_sharpe_low, p.daily_sharpe_high)


def _fmt_opt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.2f}"


def summary_table(report: TemporalReport) -> str:
    """Plain-text table: one row per pair with the gate metrics and the verdict."""
    rows = [
        {
            "pair": p.name,
            "train": p.train,
            "test": p.test,
            "sharpe": p.sharpe,
            "daily": f"{_fmt_opt(p.daily_sharpe)} [{_fmt_opt(p.daily_sharpe_low)}, "
            f"{_fmt_opt(p.daily_sharpe_high)}]",
            "pnl": p.mean_daily_pnl,
            "reward": p.episode_reward_mean,
            "length": p.mean_episode_length,
            "gates": "PASS" if p.gates_passed else "FAIL",
        }
        for p in report.pairs
    ]
    columns = (
        t.Column("pair"),
        t.Column("train"),
        t.Column("test"),
        t.Column("sharpe", "sharpe (30-min)", t.number(3)),
        t.Column("daily", "daily sharpe [interval]"),
        t.Column("pnl", "net P&L a day", t.dollars),
        t.Column("reward", "episode reward", t.number(3)),
        t.Column("length", "episode length", t.number(1)),
        t.Column("gates"),
    )
    return t.render_text(t.table(columns, rows))
