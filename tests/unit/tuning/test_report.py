"""Ranking, the seed-noise warning, the results table and the best config file."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.config import load_config
from stairways.tuning.report import TrialRecord, noise_verdict, ranked
from stairways.tuning.search import run_search
from tests.unit.tuning.conftest import make_request, make_space
from tests.unit.tuning.objectives import QuadraticObjective


def record(
    number: int, score: float, seeds: tuple[float, ...] = (), passed: bool = True
) -> TrialRecord:
    std = None
    if len(seeds) > 1:
        mean = sum(seeds) / len(seeds)
        std = math.sqrt(sum((s - mean) ** 2 for s in seeds) / (len(seeds) - 1))
    return TrialRecord(
        number=number,
        state="complete",
        score=score,
        params={},
        seed_scores=seeds,
        seed_std=std,
        passed=passed,
    )


def test_ranking_then_only_passing_complete_trials_best_first() -> None:
    records = [
        record(0, 1.0),
        record(1, 3.0, passed=False),
        record(2, 2.0),
        TrialRecord(number=3, state="pruned", score=9.0, params={}, passed=None),
    ]
    assert [r.number for r in ranked(records, "maximize")] == [2, 0]
    assert [r.number for r in ranked(records, "minimize")] == [0, 2]


def test_one_seed_per_trial_then_noise_unmeasured() -> None:
    verdict = noise_verdict([record(0, 1.0, (1.0,)), record(1, 0.5, (0.5,))], "maximize", 1)
    assert verdict.within_noise is None and verdict.noise is None
    assert "unmeasured" in verdict.message and verdict.best == 0 and verdict.gap == 0.5


@settings(max_examples=100, deadline=None)
@given(
    best=st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=5),
    runner_up_gap=st.floats(1e-6, 5.0, allow_nan=False),  # a tie has no defined best
)
def test_any_seed_scores_then_warning_exactly_when_lead_within_best_seed_std(
    best: list[float], runner_up_gap: float
) -> None:
    mean = sum(best) / len(best)
    top = record(0, mean, tuple(best))
    other = record(1, mean - runner_up_gap, tuple(b - runner_up_gap for b in best))
    verdict = noise_verdict([other, top], "maximize", len(best))
    assert verdict.best == 0 and verdict.runner_up == 1
    assert verdict.gap == pytest.approx(runner_up_gap)
    assert verdict.within_noise == (verdict.gap <= top.seed_std)
    assert verdict.message.startswith("WARNING") == verdict.within_noise


def _two_point_space(**kw: object):
    return make_space(
        budget={"seeds_per_trial": 2},
        parameters={
            "data.features.clip": {"choices": [2.0, 2.1]},  # scores 1.0 and 0.99
            "data.synthetic.signal_strength": {"choices": [1.0]},
        },
        **kw,
    )


def test_lead_smaller_than_seed_spread_then_report_warns(tmp_path: Path) -> None:
    # Seeds 0 and 1 differ by 0.1: std 0.0707 exceeds the 0.01 lead of the best point.
    outcome = run_search(
        make_request(tmp_path, _two_point_space()), QuadraticObjective(steps=1, seed_noise=0.1)
    )
    assert outcome.verdict.within_noise is True
    assert outcome.best is not None and outcome.best.params["data.features.clip"] == 2.0
    html = (tmp_path / "out" / "results.html").read_text()
    assert 'class="verdict warn"' in html and "WARNING: trial" in html


def test_lead_larger_than_seed_spread_then_no_warning(tmp_path: Path) -> None:
    outcome = run_search(
        make_request(tmp_path, _two_point_space()), QuadraticObjective(steps=1, seed_noise=0.001)
    )
    assert outcome.verdict.within_noise is False
    assert "more than its seed noise" in outcome.verdict.message


def test_results_then_csv_rows_html_table_and_loadable_best_config(tmp_path: Path) -> None:
    outcome = run_search(make_request(tmp_path, make_space()), QuadraticObjective(steps=1))
    out = tmp_path / "out"
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4 and set(table["state"]) == {"complete"}
    assert table.loc[table["score"].idxmax(), "data.features.clip"] == 2.0
    html = (out / "results.html").read_text()
    trials = html.split('<table class="sortable">')[1].split("</table>")[0]
    assert trials.count("<tr") == 5 and '<tr class="best">' in trials
    assert "data:image/png;base64," in html and "http" not in html.split("<body>")[1]
    best = load_config(out / "best_config.yaml")
    assert best.data.features.clip == 2.0 and best.data.synthetic.signal_strength == 1.0
    assert best.name == "study_best"
    assert outcome.files["best_config"] == out / "best_config.yaml"


def test_no_trial_meeting_criteria_then_no_best_config_and_not_passed(tmp_path: Path) -> None:
    space = make_space(criteria={"min_episode_reward_mean": 5.0})  # the quadratic peaks at 1
    outcome = run_search(make_request(tmp_path, space), QuadraticObjective(steps=1))
    assert not outcome.passed and outcome.best is None
    assert not (tmp_path / "out" / "best_config.yaml").exists()
    assert outcome.verdict.message == "no trial passed the criteria"
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(table["passed"]) == {"no"}


def test_trial_table_and_best_line_show_the_daily_sharpe_with_its_interval_beside_the_30min(
    tmp_path: Path,
) -> None:
    from stairways.tuning.report import (
        SHARPE_COLUMN,
        NoiseVerdict,
        results_frame,
        write_results_html,
    )

    metrics = {
        "sharpe": 1.234,
        "daily_sharpe": 1.1,
        "daily_sharpe_low": -0.8,
        "daily_sharpe_high": 3.0,
        "mean_daily_pnl": 5.0,
    }
    records = [
        TrialRecord(number=0, state="complete", score=1.0, params={}, metrics=metrics),
        TrialRecord(number=1, state="failed", score=None, params={}, error="boom"),
    ]
    space = make_space()
    frame = results_frame(records, space)
    columns = list(frame.columns)
    assert columns.index(SHARPE_COLUMN) == columns.index("sharpe") + 1
    assert frame[SHARPE_COLUMN][0] == "Sharpe 1.23 (30-min) / 1.10 daily [-0.80, 3.00]"
    assert pd.isna(frame[SHARPE_COLUMN][1])  # a failed trial has no Sharpe to show
    verdict = NoiseVerdict(0, None, None, None, None, "one trial")
    html = write_results_html(
        frame, records, space, verdict, tmp_path / "r.html", {"best_score": 1.0}
    ).read_text()
    assert "Sharpe 1.23 (30-min) / 1.10 daily [-0.80, 3.00]" in html
