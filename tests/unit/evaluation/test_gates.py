import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.errors import ConfigError
from stairways.evaluation.gates import (
    DISAGREEMENT,
    EARNED,
    EPISODE_LENGTH,
    EPISODE_REWARD,
    EXCESS,
    GATES_FAILED_EXIT_CODE,
    SHARPE,
    SIGNIFICANCE,
    Evaluated,
    GateResult,
    evaluate_gates,
    evaluated,
    write_verdict,
)
from stairways.evaluation.settings import EvaluationConfig, GateConfig
from tests.unit.evaluation.factory import make_trace

EV = EvaluationConfig(bootstrap_resamples=2_000)
ALL_GATES = [
    SHARPE,
    EPISODE_REWARD,
    EPISODE_LENGTH,
    SIGNIFICANCE,
    EXCESS,
    EARNED,
    DISAGREEMENT,
]


def _ev(
    daily: list[float],
    reward: list[float] | None = None,
    steps: int = 100,
    ev: EvaluationConfig = EV,
    earned: list[float] | None = None,
) -> Evaluated:
    """A policy whose session ``d`` makes ``daily[d]`` over ``steps`` steps (first step)."""

    def first(values: list[float] | None) -> list[list[float]] | None:
        return None if values is None else [[v] + [0.0] * (steps - 1) for v in values]

    pnl = first(daily)
    assert pnl is not None
    return evaluated(make_trace(pnl, reward=first(reward), earned=first(earned)), ev)


def _by_metric(results: tuple[GateResult, ...]) -> dict[str, GateResult]:
    return {r.metric: r for r in results}


def _noise(n: int, mean: float, sd: float, seed: int) -> list[float]:
    return list(np.random.default_rng(seed).normal(mean, sd, n))


# ----- defaults ----------------------------------------------------------------------------------


def test_the_plans_three_gate_defaults_are_unchanged() -> None:
    g = GateConfig()
    assert g.min_sharpe == 0.3
    assert g.min_episode_reward_mean == 0.1
    assert g.min_mean_episode_length == 80.0


def test_the_new_gates_are_on_by_default_with_pinned_thresholds() -> None:
    g = GateConfig()
    assert g.significance is True
    assert g.excess is True
    assert g.min_excess_daily_pnl == 0.0
    assert g.min_earned_reward_mean == 0.1
    assert g.earned_component == "pnl"
    assert g.max_reward_pnl_disagreement == 0.5
    assert g.min_sessions == 20
    ev = EvaluationConfig()
    assert ev.confidence == 0.95
    assert ev.bootstrap_resamples == 10_000
    assert ev.bootstrap_seed == 0
    assert ev.sharpe_window_minutes == 30
    assert ev.baselines is True


def test_default_verdict_has_every_gate_in_order_with_its_comparison() -> None:
    agent = _ev(_noise(60, 100.0, 50.0, 1), reward=[1.0] * 60)
    flat = _ev([0.0] * 60, reward=[0.0] * 60)
    verdict = evaluate_gates(agent, EV, {"flat": flat})
    assert [r.metric for r in verdict.results] == ALL_GATES
    ops = {r.metric: (r.op, r.threshold) for r in verdict.results}
    assert ops == {
        SHARPE: (">=", 0.3),
        EPISODE_REWARD: (">=", 0.1),
        EPISODE_LENGTH: (">=", 80.0),
        SIGNIFICANCE: (">", 0.0),
        EXCESS: (">", 0.0),
        EARNED: (">=", 0.1),
        DISAGREEMENT: ("<=", 0.5),
    }
    assert verdict.passed and verdict.exit_code == 0


def test_new_gates_can_be_switched_off() -> None:
    ev = EvaluationConfig(
        bootstrap_resamples=500,
        gates=GateConfig(
            significance=False,
            excess=False,
            min_earned_reward_mean=None,
            max_reward_pnl_disagreement=None,
        ),
    )
    verdict = evaluate_gates(_ev([1.0] * 30, ev=ev), ev)
    assert [r.metric for r in verdict.results] == [SHARPE, EPISODE_REWARD, EPISODE_LENGTH]


def test_excess_gate_without_baselines_is_refused_at_load_and_at_judgement() -> None:
    with pytest.raises(ValueError, match=r"gates\.excess compares the agent with the baselines"):
        EvaluationConfig(baselines=False)
    with pytest.raises(ConfigError, match="needs baseline replays"):
        evaluate_gates(_ev([1.0] * 30), EV)


# ----- each gate ---------------------------------------------------------------------------------


def test_plan_gates_pass_at_their_thresholds_exactly() -> None:
    steps = 80
    # one session pattern repeated gives a defined window Sharpe; reward mean exactly 0.1
    agent = _ev(_noise(40, 50.0, 20.0, 2), reward=[0.1] * 40, steps=steps)
    r = _by_metric(evaluate_gates(agent, EV, {"flat": _ev([0.0] * 40, steps=steps)}).results)
    assert r[EPISODE_REWARD].value == pytest.approx(0.1) and r[EPISODE_REWARD].passed
    assert r[EPISODE_LENGTH].value == 80.0 and r[EPISODE_LENGTH].passed
    short = _ev(_noise(40, 50.0, 20.0, 2), reward=[0.1] * 40, steps=79)
    r2 = _by_metric(evaluate_gates(short, EV, {"flat": _ev([0.0] * 40, steps=79)}).results)
    assert not r2[EPISODE_LENGTH].passed


def test_significance_needs_the_lower_bound_above_zero_and_is_deterministic() -> None:
    flat = {"flat": _ev([0.0] * 100)}
    earner = _ev(_noise(100, 30.0, 100.0, 3))
    coin = _ev(_noise(100, 0.0, 100.0, 4))
    r = _by_metric(evaluate_gates(earner, EV, flat).results)
    assert r[SIGNIFICANCE].passed and r[SIGNIFICANCE].value is not None
    assert 0.0 < r[SIGNIFICANCE].value < earner.metrics.mean_daily_pnl
    assert not _by_metric(evaluate_gates(coin, EV, flat).results)[SIGNIFICANCE].passed
    again = _by_metric(evaluate_gates(_ev(_noise(100, 30.0, 100.0, 3)), EV, flat).results)
    assert again[SIGNIFICANCE].value == r[SIGNIFICANCE].value


def test_significance_and_excess_refuse_a_verdict_below_the_minimum_sessions() -> None:
    agent = _ev([100.0] * 19)
    r = _by_metric(evaluate_gates(agent, EV, {"flat": _ev([0.0] * 19)}).results)
    for gate in (SIGNIFICANCE, EXCESS):
        assert r[gate].value is None and not r[gate].passed
        assert "at least 20 sessions" in r[gate].detail


def test_excess_is_paired_by_session_against_the_best_baseline() -> None:
    market = _noise(80, 0.0, 200.0, 5)
    # The agent earns the market move plus 5 a day: noisy alone, significant when paired.
    agent = _ev([m + 5.0 for m in market])
    hold = _ev(market)
    r = _by_metric(evaluate_gates(agent, EV, {"buy_and_hold_X": hold}).results)
    assert r[EXCESS].value == pytest.approx(5.0)  # the paired difference is exactly 5 a day
    assert r[EXCESS].passed and "best baseline buy_and_hold_X" in r[EXCESS].detail
    assert not r[SIGNIFICANCE].passed  # alone it is not distinguishable from zero
    # With flat as well, the baseline with the higher mean is the one to beat.
    both = evaluate_gates(agent, EV, {"flat": _ev([0.0] * 80), "buy_and_hold_X": hold})
    best = "buy_and_hold_X" if np.mean(market) > 0.0 else "flat"
    assert f"best baseline {best}" in _by_metric(both.results)[EXCESS].detail


def test_a_losing_buy_and_hold_is_not_the_baseline_to_beat() -> None:
    market = [m - 30.0 for m in _noise(80, 0.0, 200.0, 12)]  # loses 30 a day on average
    earner = _ev(_noise(80, 40.0, 60.0, 13))
    verdict = evaluate_gates(earner, EV, {"flat": _ev([0.0] * 80), "buy_and_hold_X": _ev(market)})
    r = _by_metric(verdict.results)
    assert "best baseline flat" in r[EXCESS].detail
    assert r[EXCESS].value == pytest.approx(r[SIGNIFICANCE].value)  # against flat: the same bound
    assert r[EXCESS].passed


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-300.0, 300.0, allow_nan=False), min_size=20, max_size=40),
    st.floats(-50.0, 50.0),
)
def test_no_baseline_can_pass_the_excess_gate(daily: list[float], shift: float) -> None:
    ev = EvaluationConfig(bootstrap_resamples=200)
    a = _ev(daily, ev=ev)
    b = _ev([d + shift for d in daily], ev=ev)
    verdict = evaluate_gates(a, ev, {"flat": _ev([0.0] * len(daily), ev=ev), "other": b})
    for results in verdict.baselines.values():
        assert not _by_metric(results)[EXCESS].passed


def test_earned_reward_counts_the_money_component_so_flat_cannot_pass() -> None:
    flat = _ev([0.0] * 30, reward=[0.0] * 30)
    r = _by_metric(evaluate_gates(flat, EV, {"flat": flat}).results)
    assert r[EARNED].value == 0.0 and not r[EARNED].passed
    ev = EvaluationConfig(bootstrap_resamples=500, gates=GateConfig(earned_component="hold"))
    with pytest.raises(ConfigError, match="component 'hold'"):
        evaluate_gates(_ev([1.0] * 30, ev=ev), ev, {"flat": _ev([0.0] * 30, ev=ev)})


def test_reward_that_disagrees_with_money_in_most_sessions_fails() -> None:
    # The case: reward about +5 a session while losing money every session.
    hacked = _ev(_noise(40, -80.0, 20.0, 6), reward=[5.0] * 40)
    r = _by_metric(evaluate_gates(hacked, EV, {"flat": _ev([0.0] * 40)}).results)
    assert r[DISAGREEMENT].value == 1.0 and not r[DISAGREEMENT].passed
    assert r[EPISODE_REWARD].passed  # the plan's reward gate alone would have let it through


# ----- baselines and the table -------------------------------------------------------------------


def test_a_gate_a_baseline_passes_is_flagged_not_informative() -> None:
    agent = _ev(_noise(60, 100.0, 50.0, 7), reward=[1.0] * 60)
    # v3's hold bonus: flat scores +0.37 a session and earns nothing
    flat = _ev([0.0] * 60, reward=[0.37] * 60, earned=[0.0] * 60)
    verdict = evaluate_gates(agent, EV, {"flat": flat})
    r = _by_metric(verdict.results)
    assert r[EPISODE_REWARD].baselines_passing == ("flat",)
    assert r[EPISODE_LENGTH].baselines_passing == ("flat",)
    assert r[SIGNIFICANCE].informative and r[EXCESS].informative and r[EARNED].informative
    assert verdict.not_informative() == [EPISODE_REWARD, EPISODE_LENGTH]
    assert not verdict.baseline_passed("flat")
    table = verdict.table()
    header = table.splitlines()[0].split()
    assert header[:4] == ["gate", "agent", "threshold", "result"] and "flat" in header
    assert "NO (a baseline passes)" in table
    assert "not informative (a baseline passes them too): episode_reward_mean" in table
    assert "agent: Sharpe" in table and "daily [" in table  # daily Sharpe with its interval
    assert table.endswith("verdict: PASS")


def test_failed_gate_sets_the_dedicated_exit_code_and_names_the_gate() -> None:
    coin = _ev(_noise(60, 0.0, 100.0, 8), reward=[1.0] * 60)
    verdict = evaluate_gates(coin, EV, {"flat": _ev([0.0] * 60)})
    assert not verdict.passed
    assert verdict.exit_code == GATES_FAILED_EXIT_CODE == 3
    assert SIGNIFICANCE in verdict.failed()


def test_verdict_saved_as_json_with_every_gate_and_every_baseline(tmp_path: Path) -> None:
    agent = _ev(_noise(30, 100.0, 50.0, 9), reward=[1.0] * 30)
    verdict = evaluate_gates(agent, EV, {"flat": _ev([0.0] * 30)})
    data = json.loads(write_verdict(verdict, tmp_path / "gates.json").read_text())
    assert data["passed"] is True
    first = data["gates"][0]
    assert set(first) == {
        "metric",
        "value",
        "op",
        "threshold",
        "passed",
        "detail",
        "informative",
        "baselines_passing",
    }
    assert first["metric"] == "sharpe" and first["threshold"] == 0.3
    assert data["baselines"]["flat"]["passed"] is False
    assert [g["metric"] for g in data["baselines"]["flat"]["gates"]] == ALL_GATES
    assert "daily" in data["sharpe"]["agent"]
