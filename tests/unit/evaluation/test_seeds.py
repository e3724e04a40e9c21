import csv
import math
from pathlib import Path

import pytest

from stairways.errors import InputError
from stairways.evaluation.seeds import SeedResult, plot_seeds, seed_verdict, write_seed_csv
from stairways.evaluation.settings import SeedVarianceConfig


def _results(values: list[float], metric: str = "episode_reward_mean") -> list[SeedResult]:
    return [
        SeedResult(
            seed=i, run_dir=f"runs/r{i}", metrics={metric: v, "sharpe": 0.5}, gates_passed=True
        )
        for i, v in enumerate(values)
    ]


def test_tight_spread_then_sweep_passes() -> None:
    verdict = seed_verdict(_results([1.0, 1.1, 0.9, 1.0]), SeedVarianceConfig())
    # Sample std of (1.0, 1.1, 0.9, 1.0) is sqrt(0.02 / 3).
    assert verdict.std == pytest.approx(math.sqrt(0.02 / 3))
    assert verdict.mean == pytest.approx(1.0)
    assert verdict.relative_std == pytest.approx(math.sqrt(0.02 / 3))
    assert verdict.passed


def test_relative_spread_above_thirty_percent_then_sweep_fails() -> None:
    verdict = seed_verdict(_results([0.1, 0.3, 0.2, 0.05]), SeedVarianceConfig())
    assert verdict.std < 0.5
    assert verdict.relative_std > 0.3
    assert not verdict.passed


def test_absolute_spread_above_limit_then_sweep_fails_even_if_relative_is_small() -> None:
    verdict = seed_verdict(_results([10.0, 11.0, 9.0, 10.5]), SeedVarianceConfig())
    assert verdict.relative_std < 0.3
    assert verdict.std > 0.5
    assert not verdict.passed


def test_zero_mean_then_relative_spread_infinite_and_fails() -> None:
    verdict = seed_verdict(_results([0.1, -0.1]), SeedVarianceConfig())
    assert math.isinf(verdict.relative_std)
    assert not verdict.passed


def test_single_seed_then_input_error() -> None:
    with pytest.raises(InputError, match="at least two seeds"):
        seed_verdict(_results([1.0]), SeedVarianceConfig())


def test_undefined_metric_then_input_error_names_seed() -> None:
    results = _results([1.0, 1.0])
    results[1] = SeedResult(
        seed=7, run_dir="r7", metrics={"episode_reward_mean": None}, gates_passed=False
    )
    with pytest.raises(InputError, match="seed 7"):
        seed_verdict(results, SeedVarianceConfig())


def test_csv_has_one_row_per_seed_then_summary_and_plot_is_png(tmp_path: Path) -> None:
    results = _results([1.0, 1.1, 0.9])
    verdict = seed_verdict(results, SeedVarianceConfig())
    path = write_seed_csv(results, verdict, tmp_path / "seed_comparison_stats.csv")
    rows = list(csv.DictReader(path.open()))
    assert [r["row"] for r in rows] == ["seed", "seed", "seed", "mean", "std", "verdict"]
    assert {r["split"] for r in rows} == {"test"}
    assert float(rows[3]["episode_reward_mean"]) == pytest.approx(1.0)
    assert float(rows[4]["episode_reward_mean"]) == pytest.approx(0.1)
    assert rows[5]["gates_passed"] == "PASS"
    png = plot_seeds(results, verdict, tmp_path / "seeds.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
