import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.errors import ConfigError, InputError
from stairways.evaluation.seeds import (
    SeedResult,
    metric_gate,
    plot_seeds,
    seed_verdict,
    write_seed_csv,
)
from stairways.evaluation.settings import GateConfig, SeedVarianceConfig

GATES = GateConfig()
SC = SeedVarianceConfig()  # mean_daily_pnl > 0, every seed agrees, std/|mean| < 30 %


def _results(values: list[float], metric: str = "mean_daily_pnl") -> list[SeedResult]:
    return [
        SeedResult(
            seed=i,
            run_dir=f"runs/r{i}",
            metrics={"sharpe": 0.5, "daily_sharpe": 0.4, metric: v},
            gates_passed=True,
        )
        for i, v in enumerate(values)
    ]


def test_seed_verdict_defaults_are_pinned() -> None:
    assert SC.metric == "mean_daily_pnl"
    assert SC.max_relative_std == 0.30
    assert SC.min_agreement == 1.0
    assert SC.confidence == 0.95
    assert SC.seeds == (0, 1, 2, 3)
    assert SC.total_timesteps == 10_000


def test_each_seed_metric_is_judged_against_its_own_gate() -> None:
    assert metric_gate("mean_daily_pnl", GATES) == (0.0, ">")
    assert metric_gate("daily_sharpe", GATES) == (0.0, ">")
    assert metric_gate("earned_reward_mean", GATES) == (0.1, ">=")
    assert metric_gate("sharpe", GATES) == (0.3, ">=")
    assert metric_gate("episode_reward_mean", GATES) == (0.1, ">=")
    with pytest.raises(ConfigError, match="earned-reward gate is off"):
        metric_gate("earned_reward_mean", GateConfig(min_earned_reward_mean=None))


def test_seeds_that_all_earn_alike_pass_with_mean_std_and_t_interval() -> None:
    verdict = seed_verdict(_results([100.0, 110.0, 90.0, 100.0]), SC, GATES)
    std = math.sqrt(200.0 / 3)  # sample std of (100, 110, 90, 100)
    assert verdict.mean == pytest.approx(100.0)
    assert verdict.std == pytest.approx(std)
    half = 3.182446305284263 * std / 2.0  # t(0.975, df=3) * s / sqrt(4)
    assert verdict.ci_low == pytest.approx(100.0 - half, rel=1e-9)
    assert verdict.ci_high == pytest.approx(100.0 + half, rel=1e-9)
    assert verdict.relative_std == pytest.approx(std / 100.0)
    assert verdict.agreement == 1.0 and verdict.mean_passes
    assert verdict.passed


def test_seeds_that_all_lose_consistently_fail_however_tight_they_are() -> None:
    # The case: ten seeds losing $56-111 a session agree perfectly with each other.
    verdict = seed_verdict(_results([-56.0, -80.0, -111.0, -70.0]), SC, GATES)
    assert verdict.relative_std < 0.3
    assert not verdict.mean_passes and verdict.agreement == 0.0
    assert not verdict.passed


def test_one_seed_on_the_wrong_side_fails_the_default_agreement() -> None:
    verdict = seed_verdict(_results([100.0, 120.0, 90.0, -5.0]), SC, GATES)
    assert verdict.mean_passes and verdict.agreement == 0.75
    assert not verdict.passed
    relaxed = SeedVarianceConfig(min_agreement=0.75, max_relative_std=1.0)
    assert seed_verdict(_results([100.0, 120.0, 90.0, -5.0]), relaxed, GATES).passed


def test_spread_is_measured_from_the_gate_not_from_zero() -> None:
    # Sharpe seeds around 0.4 with the gate at 0.3: std 0.05 over a margin of 0.1 is 50 %.
    values = [0.45, 0.35, 0.4, 0.4]
    verdict = seed_verdict(
        _results(values, "sharpe"), SC.model_copy(update={"metric": "sharpe"}), GATES
    )
    assert verdict.threshold == 0.3
    assert verdict.relative_std == pytest.approx(np.std(values, ddof=1) / 0.1)
    assert not verdict.passed


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.floats(-500.0, 500.0, allow_nan=False, allow_subnormal=False), min_size=2, max_size=8
    ),
    st.floats(1e-3, 1e3),
)
def test_verdict_on_daily_pnl_does_not_depend_on_the_scale(values: list[float], k: float) -> None:
    a = seed_verdict(_results(values), SC, GATES)
    b = seed_verdict(_results([v * k for v in values]), SC, GATES)
    assert a.passed == b.passed
    assert a.agreement == b.agreement
    if math.isfinite(a.relative_std):
        assert b.relative_std == pytest.approx(a.relative_std, rel=1e-6)


def test_zero_mean_then_relative_spread_infinite_and_fails() -> None:
    verdict = seed_verdict(_results([0.1, -0.1]), SC, GATES)
    assert math.isinf(verdict.relative_std)
    assert not verdict.passed


def test_single_seed_then_input_error() -> None:
    with pytest.raises(InputError, match="at least two seeds"):
        seed_verdict(_results([1.0]), SC, GATES)


def test_undefined_metric_then_input_error_names_seed() -> None:
    results = _results([1.0, 1.0])
    results[1] = SeedResult(
        seed=7, run_dir="r7", metrics={"mean_daily_pnl": None}, gates_passed=False
    )
    with pytest.raises(InputError, match="seed 7"):
        seed_verdict(results, SC, GATES)


def test_csv_has_one_row_per_seed_then_summary_and_plot_is_png(tmp_path: Path) -> None:
    results = _results([100.0, 110.0, 90.0])
    verdict = seed_verdict(results, SC, GATES)
    path = write_seed_csv(results, verdict, tmp_path / "seed_comparison_stats.csv")
    rows = list(csv.DictReader(path.open()))
    assert [r["row"] for r in rows] == ["seed", "seed", "seed", "mean", "std", "verdict"]
    assert {r["split"] for r in rows} == {results[0].split}
    assert float(rows[3]["mean_daily_pnl"]) == pytest.approx(100.0)
    assert float(rows[4]["mean_daily_pnl"]) == pytest.approx(10.0)
    assert rows[5]["gates_passed"] == "PASS"
    assert "CI=[" in rows[5]["run_dir"] and "agreement=1.0000" in rows[5]["run_dir"]
    png = plot_seeds(results, verdict, tmp_path / "seeds.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
