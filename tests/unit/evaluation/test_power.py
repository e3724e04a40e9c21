import math
from pathlib import Path

import numpy as np
import pytest

from stairways.config import StairwaysConfig, load_config
from stairways.data.settings import SyntheticConfig
from stairways.errors import InputError
from stairways.evaluation.power import (
    MarketReference,
    PowerReport,
    RunRow,
    _study_config,
    lead_lag_state,
    markdown_table,
    quick_settings,
    round_trip_cost,
    signal_rule_policy,
    summarise,
    wilson,
    write_readme_block,
)
from stairways.evaluation.replay import eval_env, replay
from stairways.evaluation.settings import PowerConfig
from stairways.evaluation.traces import TraceMeta
from stairways.rewards.registry import build_reward
from tests.unit.env.panels import random_walk_panel


def test_power_defaults_are_pinned() -> None:
    p = PowerConfig()
    assert p.strengths == (0.0, 0.25, 0.5, 1.0)
    assert p.market_seeds == (101, 102, 103, 104)
    assert p.training_seeds == (0, 1)
    assert p.total_timesteps == 20_000
    assert p.split == "validation"
    assert p.max_false_positive_rate == 0.05
    assert p.rule_entry_costs == 2.0


def test_strength_zero_is_required_and_grids_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="must include 0"):
        PowerConfig(strengths=(0.5, 1.0))
    with pytest.raises(ValueError, match="market_seeds must be distinct"):
        PowerConfig(market_seeds=(1, 1))


def test_quick_settings_keep_zero_and_the_strongest_with_one_market_and_seed() -> None:
    q = quick_settings(PowerConfig())
    assert q.strengths == (0.0, 1.0)
    assert q.market_seeds == (101,) and q.training_seeds == (0,)
    assert q.total_timesteps == 2_000


def test_wilson_interval_matches_the_closed_form() -> None:
    r = wilson(0, 8)
    assert (r.k, r.n, r.low) == (0, 8, 0.0)
    assert r.high == pytest.approx(0.3244, abs=1e-4)
    r = wilson(4, 8)
    assert r.low == pytest.approx(0.2152, abs=1e-4) and r.high == pytest.approx(0.7848, abs=1e-4)
    assert wilson(0, 0).text() == "0/0 (0%, CI 0%-100%)"


def test_study_refuses_the_protected_split_and_unknown_splits() -> None:
    cfg = StairwaysConfig()
    with pytest.raises(InputError, match="never evaluates on the protected split 'test'"):
        _study_config(cfg, "test")
    with pytest.raises(InputError, match=r"not one of data\.splits"):
        _study_config(cfg, "nope")
    data = _study_config(cfg, "validation")
    # the market covers training and validation (with a warm-up week), never the test year
    assert data["data"]["synthetic"]["start"] == "2021-12-27"
    assert data["data"]["synthetic"]["end"] == "2023-12-29"


def test_lead_lag_state_follows_the_generators_recursion() -> None:
    panel = random_walk_panel(lengths=(6, 4), seed=3)
    leader = panel.symbols.index("MSFT")
    z = lead_lag_state(panel, leader, halflife_bars=5.0)
    phi = 0.5 ** (1 / 5)
    c, o = panel.close[0, :, leader], panel.open[0, 0, leader]
    expected = [math.log(c[0] / o)]
    for k in range(1, 6):
        expected.append(phi * expected[-1] + math.log(c[k] / c[k - 1]))
    np.testing.assert_allclose(z[0, :6], expected, rtol=1e-12)


def test_round_trip_cost_is_commission_and_half_spread_both_ways() -> None:
    market = StairwaysConfig().market  # $5,000 positions, $0.0035/share, $0.35 minimum, 1 bp
    cost = round_trip_cost(np.array([100.0, 10.0]), market)
    # 50 shares at $100: $0.35 minimum commission; 500 shares at $10: $1.75
    assert cost[0] == pytest.approx(2 * (0.35 / 5000 + 1e-4))
    assert cost[1] == pytest.approx(2 * (1.75 / 5000 + 1e-4))


def _rule_trace(strength: float, entry: float = 1.0):  # type: ignore[no-untyped-def]
    cfg = StairwaysConfig.model_validate({"env": {"drawdown_cap": 1.0}})
    panel = random_walk_panel(lengths=(60, 60), seed=11, vol=0.003)
    synthetic = SyntheticConfig(signal_strength=strength)
    meta = TraceMeta(
        symbols=panel.symbols,
        reward_components=build_reward(cfg.reward).components,
        starting_capital=cfg.market.starting_capital,
        split=panel.split,
        policy="signal_rule",
        checkpoint="",
        run="",
    )
    venv = eval_env(cfg, panel)
    try:
        policy = signal_rule_policy(panel, synthetic, cfg.market, entry)
        return replay(venv, meta, policy_factory=policy).trace.frame
    finally:
        venv.close()


def test_the_rule_never_trades_without_a_signal_and_trades_only_nvda_with_one() -> None:
    flat = _rule_trace(0.0)
    assert (flat["fill_qty__NVDA"] == 0).all() and (flat["fill_qty__MSFT"] == 0).all()
    on = _rule_trace(5.0)
    assert (on["fill_qty__NVDA"] != 0).any()
    assert (on["fill_qty__MSFT"] == 0).all()
    assert set(np.unique(on["target__NVDA"])) <= {-1.0, 0.0, 1.0}


def _row(strength: float, passed: bool, pnl: float) -> RunRow:
    return RunRow(
        strength=strength,
        market_seed=1,
        training_seed=0,
        run_dir="r",
        checkpoint="final",
        status="completed",
        gates={"significance": passed, "excess_over_baselines": passed},
        gate_values={"significance": pnl, "excess_over_baselines": pnl},
        passed=passed,
        mean_daily_pnl=pnl,
        daily_sharpe=pnl / 10,
        sharpe=pnl / 9,
        seconds=1.0,
        cpu_seconds=1.0,
    )


def _market(strength: float) -> MarketReference:
    return MarketReference(
        strength=strength,
        market_seed=1,
        store="m",
        sessions=126,
        rule={"mean_daily_pnl": 10 * strength, "daily_sharpe": 14 * strength},
        rule_significant=strength > 0.5,
        baselines_passed={"flat": False, "buy_and_hold_NVDA": False},
        baseline_gates={},
        seconds=1.0,
        cpu_seconds=1.0,
    )


def test_summary_counts_pass_rates_per_strength_and_the_false_positive_rate() -> None:
    rows = [_row(0.0, False, -3.0), _row(0.0, True, 2.0), _row(1.0, True, 90.0)]
    names, summaries = summarise(rows, [_market(0.0), _market(1.0)], (0.0, 1.0))
    assert names == ["significance", "excess_over_baselines"]
    zero, one = summaries
    assert (zero.verdict.k, zero.verdict.n) == (1, 2)
    assert zero.agent_mean_daily_pnl == pytest.approx(-0.5)
    assert (one.verdict.k, one.verdict.n) == (1, 1)
    assert one.rule_daily_sharpe == 14.0 and (one.rule_significant.k, one.rule_significant.n) == (
        1,
        1,
    )
    assert (zero.baselines_passed.k, zero.baselines_passed.n) == (0, 2)
    report = PowerReport(
        out_dir=Path(),
        settings=PowerConfig(strengths=(0.0, 1.0)),
        markets=[_market(0.0), _market(1.0)],
        rows=rows,
        summaries=summaries,
        gate_names=names,
        seconds=1.0,
    )
    assert report.false_positive.k == 1 and not report.passed  # 50 % is above 5 %
    table = markdown_table(report)
    assert table.splitlines()[0].startswith("| signal strength | runs | all gates pass |")
    assert "| 0 | 2 | 1/2 (50%" in table and "| 1 | 1 | 1/1 (100%" in table


def test_the_shipped_power_config_matches_the_defaults() -> None:
    from stairways.configbase import CONFIG_DIR

    assert load_config(CONFIG_DIR / "power.yaml").evaluation.power == PowerConfig()


def _report() -> PowerReport:
    rows = [_row(0.0, False, -3.0), _row(1.0, True, 90.0)]
    names, summaries = summarise(rows, [_market(0.0), _market(1.0)], (0.0, 1.0))
    return PowerReport(
        out_dir=Path(),
        settings=PowerConfig(strengths=(0.0, 1.0)),
        markets=[_market(0.0), _market(1.0)],
        rows=rows,
        summaries=summaries,
        gate_names=names,
        seconds=600.0,
    )


def test_the_readme_block_is_replaced_between_its_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "before\n<!-- power-table:begin (generated; do not edit) -->\nold table\n"
        "<!-- power-table:end -->\nafter\n"
    )
    write_readme_block(readme, _report())
    text = readme.read_text()
    assert text.startswith("before\n<!-- power-table:begin (generated; do not edit) -->\n")
    assert text.endswith("<!-- power-table:end -->\nafter\n")
    assert "old table" not in text
    assert "False-positive rate (every default gate passes with no signal): 0/1" in text
    once = text
    write_readme_block(readme, _report())
    assert readme.read_text() == once  # the same study writes the same block
    (tmp_path / "bare.md").write_text("no markers\n")
    with pytest.raises(InputError, match="power-table:begin"):
        write_readme_block(tmp_path / "bare.md", _report())


def test_a_folder_holding_a_study_is_not_overwritten(tmp_path: Path) -> None:
    from stairways.evaluation.power import run_power_study

    (tmp_path / "power.json").write_text("{}")
    with pytest.raises(InputError, match="already holds a power study"):
        run_power_study(StairwaysConfig(), out_dir=tmp_path)
