import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.config import StairwaysConfig, load_config
from stairways.data.settings import SyntheticConfig
from stairways.errors import InputError
from stairways.evaluation.power import (
    FalsePositive,
    MarketReference,
    PowerReport,
    RunRow,
    _binomial_cdf,
    _study_config,
    exact_upper_bound,
    lead_lag_state,
    markdown_table,
    quick_settings,
    readme_block,
    readme_block_in,
    report_from_json,
    round_trip_cost,
    runs_to_show,
    signal_rule_policy,
    summarise,
    wilson,
    write_readme_block,
)
from stairways.evaluation.replay import eval_env, replay
from stairways.evaluation.settings import NULL_RUNS_FOR_FIVE_PERCENT, PowerConfig
from stairways.evaluation.traces import TraceMeta
from stairways.rewards.registry import build_reward
from tests.paths import README, REPO_ROOT
from tests.unit.env.panels import random_walk_panel


def test_power_defaults_are_pinned() -> None:
    p = PowerConfig()
    assert p.strengths == (0.0, 0.25, 0.5, 1.0)
    assert p.market_seeds == (101, 102, 103, 104)
    assert p.training_seeds == (0, 1)
    assert p.total_timesteps == 20_000
    assert p.split == "validation"
    assert p.max_false_positive_rate == 0.05
    assert p.false_positive_confidence == 0.95
    assert p.rule_entry_costs == 2.0
    assert p.null_market_seeds == tuple(range(101, 121))
    assert p.null_training_seeds == (0, 1, 2)
    assert [(a.name, a.config.name, a.runs) for a in p.null_arms] == [
        ("phase2_oos", "phase2_oos.yaml", 12)
    ]


def test_the_default_null_arm_is_big_enough_to_show_the_five_percent_goal() -> None:
    p = PowerConfig()
    assert p.null_runs == 60 >= NULL_RUNS_FOR_FIVE_PERCENT == runs_to_show(0.05, 0.95) == 59
    # with no pass, the default study shows the goal; one run fewer than needed would not
    assert exact_upper_bound(0, p.null_runs, p.false_positive_confidence) <= 0.05
    assert exact_upper_bound(0, 58, 0.95) > 0.05


@given(n=st.integers(1, 200), data=st.data())
@settings(max_examples=60, deadline=None)
def test_the_exact_upper_bound_is_the_clopper_pearson_bound(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n - 1))
    upper = exact_upper_bound(k, n, 0.95)
    assert k / n < upper < 1.0
    # at the bound, seeing k or fewer passes has probability 5 % exactly
    assert _binomial_cdf(k, n, upper) == pytest.approx(0.05, abs=1e-9)
    assert exact_upper_bound(k + 1, n, 0.95) > upper if k + 1 < n else True
    assert exact_upper_bound(k, n + 1, 0.95) < upper


def test_false_positive_states_say_shown_not_shown_or_exceeded() -> None:
    def fp(k: int, n: int) -> FalsePositive:
        return FalsePositive("default", wilson(k, n), exact_upper_bound(k, n), 0.95, 0.05)

    assert fp(0, 60).state == "SHOWN" and "upper bound 4.9%" in fp(0, 60).text()
    assert fp(0, 8).state == "NOT SHOWN" and "59 runs are needed" in fp(0, 8).text()
    assert fp(1, 60).state == "NOT SHOWN"  # 1.7 % observed, bound 8.6 %
    assert fp(1, 8).state == "EXCEEDED" and fp(1, 8).exceeded


def test_strength_zero_is_required_and_grids_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="must include 0"):
        PowerConfig(strengths=(0.5, 1.0))
    with pytest.raises(ValueError, match="market_seeds must be distinct"):
        PowerConfig(market_seeds=(1, 1))


def test_quick_settings_keep_zero_and_the_strongest_with_one_market_and_seed() -> None:
    q = quick_settings(PowerConfig())
    assert q.strengths == (0.0, 1.0)
    assert q.market_seeds == (101,) and q.training_seeds == (0,)
    assert q.null_market_seeds == (101,) and q.null_training_seeds == (0,)
    assert q.null_arms == ()
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
    assert table.splitlines()[0].startswith(
        "| signal strength | training config | runs | all gates pass |"
    )
    assert "| 0 | default | 2 | 1/2 (50%" in table and "| 1 | default | 1 | 1/1 (100%" in table
    assert [f.state for f in report.false_positives] == ["EXCEEDED"]


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
    assert "False-positive rate, default: 0/1 runs pass every gate with no signal" in text
    assert "NOT SHOWN (with no pass, 59 runs are needed to show it)" in text
    # the calibration quotes the rule's figures and the weakest strength found
    assert "daily Sharpe ratio of 14.0 at strength 1" in text
    assert "find a signal of strength 1 or stronger" in text
    once = text
    write_readme_block(readme, _report())
    assert readme.read_text() == once  # the same study writes the same block
    (tmp_path / "bare.md").write_text("no markers\n")
    with pytest.raises(InputError, match="power-table:begin"):
        write_readme_block(tmp_path / "bare.md", _report())


def test_a_folder_holding_a_study_is_not_overwritten(tmp_path: Path) -> None:
    from stairways.evaluation.power import run_power_study

    (tmp_path / "power.json").write_text("{}")
    with pytest.raises(InputError, match="already holds a finished power study without its"):
        run_power_study(StairwaysConfig(), out_dir=tmp_path)


def _fake_backends(
    monkeypatch: pytest.MonkeyPatch, asked: list[list[str]], stop_after: int | None
) -> None:
    """Markets and runs without generating or training: results made up, stops on request."""
    import stairways.evaluation.power as power
    from stairways.evaluation.jobs import JobOutcome, PoolResult

    def fake_map(fn, items, workers=None, backend=None, on_result=None):  # type: ignore[no-untyped-def]
        out = []
        for t in items:
            Path(t.store).parent.mkdir(parents=True, exist_ok=True)
            Path(t.store).write_text("store")
            m = _market(t.strength)
            m = MarketReference(**{**m.__dict__, "market_seed": t.market_seed, "store": t.store})
            on_result(m)
            out.append(m)
        return out

    def fake_jobs(jobs, workers=None, backend=None, on_outcome=None):  # type: ignore[no-untyped-def]
        asked.append([j.key for j in jobs])
        done = []
        for i, job in enumerate(jobs):
            run_dir = Path(job.config["training"]["runs_dir"])
            run_dir.mkdir(parents=True)
            if stop_after is not None and i == stop_after:
                raise KeyboardInterrupt  # the session is stopped while this run trains
            passed = job.config["data"]["synthetic"]["signal_strength"] > 0
            gate = {"metric": "significance", "passed": passed, "value": 1.0}
            o = JobOutcome(
                key=job.key,
                run_dir=str(run_dir),
                status="completed",
                checkpoint="final",
                metrics={"validation": {"mean_daily_pnl": 1.0, "daily_sharpe": 0.1}},
                gates_passed={"validation": passed},
                gates={"validation": {"passed": passed, "gates": [gate]}},
                seconds=1.0,
                train_steps_per_second=1.0,
            )
            on_outcome(o)
            done.append(o)
        return PoolResult(outcomes=done)

    monkeypatch.setattr(power, "map_tasks", fake_map)
    monkeypatch.setattr(power, "run_jobs", fake_jobs)


def test_an_interrupted_study_resumes_where_it_stopped_and_refuses_another_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from stairways.configbase import CONFIG_DIR
    from stairways.evaluation.power import run_power_study
    from stairways.evaluation.settings import NullArm

    arm = NullArm(
        name="p2",
        config=CONFIG_DIR / "curriculum" / "phase2_oos.yaml",
        market_seeds=(2,),
        training_seeds=(0,),
    )
    p = PowerConfig(
        strengths=(0.0, 1.0),
        market_seeds=(1,),
        training_seeds=(0,),
        null_market_seeds=(1, 2),
        null_training_seeds=(0, 1),
        null_arms=(arm,),
    )
    cfg = StairwaysConfig()
    out = tmp_path / "study"
    asked: list[list[str]] = []
    _fake_backends(monkeypatch, asked, stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        run_power_study(cfg, settings=p, out_dir=out)
    # the null arm runs first, then the other arm, then the planted strengths
    assert asked[0] == [
        "strength0_seed1_train0",
        "strength0_seed1_train1",
        "strength0_seed2_train0",
        "strength0_seed2_train1",
        "strength0_seed2_p2_train0",
        "strength1_seed1_train0",
    ]
    assert sorted(x.stem for x in (out / "results" / "runs").glob("*.json")) == asked[0][:3]
    assert len(list((out / "results" / "markets").glob("*.json"))) == 3
    # --progress reads what is done without running or removing anything
    partial = run_power_study(cfg, settings=p, out_dir=out, progress=True)
    assert (len(partial.rows), partial.planned_runs, partial.complete) == (3, 6, False)
    assert (out / "runs" / asked[0][3]).is_dir() and len(asked) == 1
    _fake_backends(monkeypatch, asked, stop_after=None)
    report = run_power_study(cfg, settings=p, out_dir=out)
    assert report.complete
    # the record (power.json) renders the very block the study wrote
    recorded = report_from_json((out / "power.json").read_text(), "power.json")
    assert readme_block(recorded) == readme_block(report)
    assert asked[1] == asked[0][3:]  # only what was not finished; its leftover folder restarted
    assert [r.arm for r in report.rows] == ["default"] * 4 + ["p2", "default"]
    assert [(s.arm, s.strength, s.runs) for s in report.summaries] == [
        ("default", 0.0, 4),
        ("p2", 0.0, 1),
        ("default", 1.0, 1),
    ]
    assert [(f.arm, f.state) for f in report.false_positives] == [
        ("default", "NOT SHOWN"),
        ("p2", "NOT SHOWN"),
    ]
    assert report.passed and not report.shown
    # a resumed study must be the same study
    changed = p.model_copy(update={"total_timesteps": 1_000})
    with pytest.raises(InputError, match=r"differs in settings\.total_timesteps"):
        run_power_study(cfg, settings=changed, out_dir=out)
    # reading the same results against another goal is not another study
    relaxed = p.model_copy(update={"max_false_positive_rate": 0.5})
    assert run_power_study(cfg, settings=relaxed, out_dir=out).rows == report.rows


def test_an_arm_trains_its_own_config_on_the_studys_markets() -> None:
    from stairways.configbase import CONFIG_DIR
    from stairways.evaluation.power import arm_config
    from stairways.evaluation.settings import NullArm

    base = _study_config(StairwaysConfig(), "validation")
    arm = NullArm(
        name="p2",
        config=CONFIG_DIR / "curriculum" / "phase2_oos.yaml",
        market_seeds=(1,),
        training_seeds=(0,),
    )
    data = arm_config(base, arm)
    assert data["data"] == base["data"] and data["evaluation"] == base["evaluation"]
    assert data["reward"]["name"] == "refined" and data["market"]["action_set"] == "grid9"
    with pytest.raises(ValueError, match="not in null_market_seeds"):
        PowerConfig(
            null_market_seeds=(1,), null_arms=(arm.model_copy(update={"market_seeds": (9,)}),)
        )


def test_the_readme_power_table_is_the_one_the_recorded_study_wrote() -> None:
    """No table typed by hand: the README's block is empty, or it is what
    ``stairways validate power --from-record docs/power_study.json --readme README.md`` writes."""
    readme = README
    record = REPO_ROOT / "docs" / "power_study.json"
    block = readme_block_in(readme.read_text())
    if not record.is_file():
        assert block == "", "README has a power table but docs/power_study.json is missing"
        return
    report = report_from_json(record.read_text(), str(record))
    assert report.complete
    assert block == readme_block(report) + "\n"


def test_a_study_whose_runs_come_from_two_code_versions_says_so(tmp_path: Path) -> None:
    import json

    from stairways.evaluation.power import code_versions, markdown_report

    rows = []
    for i, (commit, dirty) in enumerate((("abc1234567ff", False), ("def7654321ff", True))):
        run = tmp_path / f"run{i}"
        run.mkdir()
        (run / "manifest.json").write_text(json.dumps({"git_commit": commit, "git_dirty": dirty}))
        rows.append(RunRow(**{**_row(0.0, False, -1.0).__dict__, "run_dir": str(run)}))
    assert code_versions(rows) == {"abc1234567": 1, "def7654321+uncommitted": 1}
    names, summaries = summarise(rows, [_market(0.0)], (0.0,))
    report = PowerReport(
        out_dir=tmp_path,
        settings=PowerConfig(strengths=(0.0,), null_arms=()),
        markets=[_market(0.0)],
        rows=rows,
        summaries=summaries,
        gate_names=names,
        seconds=1.0,
    )
    assert "Note: the runs started from 2 checkout states" in markdown_report(report, "t")
    same = [rows[0], rows[0]]
    assert code_versions(same) == {"abc1234567": 2}
