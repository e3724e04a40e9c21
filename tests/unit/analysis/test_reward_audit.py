"""Reward audits on constructed traces: statistics, flags, reports, exit codes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from stairways.analysis.reward_audit import (
    AUDIT_CRITICAL_EXIT_CODE,
    RewardAuditConfig,
    audit_path,
    audit_trace,
    find_trace,
    latest_run_traces,
)
from stairways.analysis.reward_audit_report import write_audit_report
from stairways.cli.main import app as main_app
from stairways.configbase import validate_model
from stairways.errors import ConfigError, MissingResourceError
from tests.unit.analysis.reward_traces import episode_trace, write_run

CFG = RewardAuditConfig()
# Ten episodes that make money and are paid for it: P&L and reward agree, three components
# share the reward 50/30/20, no episode nears the drawdown cap.
CLEAN_PNL = [10.0, 12.0, 8.0, 11.0, 9.0, 10.5, 9.5, 12.5, 7.5, 10.0]
CLEAN = {
    "pnl": [0.5 * p for p in CLEAN_PNL],
    "kelly": [0.3 * p for p in CLEAN_PNL],
    "hold": [0.2 * p for p in CLEAN_PNL],
}


def _flag(audit, name):
    return next(f for f in audit.flags if f.name == name)


def test_clean_run_then_no_flag_raised_and_exit_code_zero() -> None:
    audit = audit_trace(episode_trace(CLEAN_PNL, CLEAN), CFG, drawdown_cap=0.02)

    assert [f.level for f in audit.flags] == ["ok"] * 5
    assert audit.exit_code == 0
    assert audit.reward_pnl_correlation == pytest.approx(1.0)
    shares = dict(
        zip(audit.components["component"], audit.components["share_of_abs_reward"], strict=True)
    )
    assert shares == pytest.approx({"pnl": 0.5, "kelly": 0.3, "hold": 0.2})
    assert audit.episodes["reward"].to_numpy() == pytest.approx(CLEAN_PNL)
    assert audit.episodes["steps"].tolist() == [4] * 10


def test_reward_up_while_pnl_down_then_reward_hacking_is_critical() -> None:
    # Every episode loses money, yet a hold bonus makes every reward positive.
    pnl = [-5.0, -8.0, -3.0, -6.0, -4.0, -7.0, -5.0, -9.0]
    comps = {"pnl": [0.01 * p for p in pnl], "hold": [3.0, 3.1, 2.9, 3.0, 3.2, 2.8, 3.0, 3.1]}
    audit = audit_trace(episode_trace(pnl, comps), CFG, drawdown_cap=0.02)

    hacking = _flag(audit, "reward_hacking")
    assert hacking.level == "critical" and hacking.value == 1.0
    assert "reward hacking" in hacking.message
    assert _flag(audit, "component_dominance").level == "critical"  # hold is ~99% of it
    assert audit.critical and audit.exit_code == AUDIT_CRITICAL_EXIT_CODE
    assert audit.episodes["reward"].gt(0).all() and audit.episodes["pnl"].lt(0).all()


@pytest.mark.parametrize(
    ("negatives", "level"), [(5, "ok"), (6, "warning"), (7, "warning"), (8, "critical")]
)
def test_share_of_negative_episodes_then_level_by_thresholds(negatives: int, level: str) -> None:
    pnl = [-1.0] * negatives + [1.0] * (10 - negatives)
    audit = audit_trace(episode_trace(pnl, {"pnl": pnl}), CFG, drawdown_cap=0.02)
    assert _flag(audit, "negative_episodes").level == level
    assert _flag(audit, "negative_episodes").value == pytest.approx(negatives / 10)


@pytest.mark.parametrize(("ended", "level"), [(0, "ok"), (1, "warning"), (2, "critical")])
def test_episodes_past_the_drawdown_cap_then_level_by_thresholds(ended: int, level: str) -> None:
    dd = [0.03] * ended + [0.01] * (10 - ended)
    audit = audit_trace(episode_trace(CLEAN_PNL, CLEAN, max_drawdown=dd), CFG, drawdown_cap=0.02)
    flag = _flag(audit, "drawdown_endings")
    assert flag.level == level and flag.value == pytest.approx(ended / 10)
    assert audit.episodes["ended_by_drawdown"].sum() == ended


def test_unknown_drawdown_cap_then_flag_unmeasured_not_ok() -> None:
    audit = audit_trace(episode_trace(CLEAN_PNL, CLEAN), CFG, drawdown_cap=None)
    flag = _flag(audit, "drawdown_endings")
    assert flag.level == "unmeasured" and flag.value is None
    assert "--drawdown-cap" in flag.message


@pytest.mark.parametrize(
    ("rewards", "level"),
    [
        ([1.0, 1.0, 1.0, 1.0], "ok"),  # std 0
        ([3.0, -1.0, 3.0, -1.0], "warning"),  # mean 1, std 2: 2.0 is not above 2.0
        ([5.0, -3.0, 5.0, -3.0], "critical"),  # mean 1, std 4
        ([1.0, -1.0, 1.0, -1.0], "critical"),  # mean 0: infinitely dispersed
    ],
)
def test_reward_dispersion_then_level_by_std_over_abs_mean(
    rewards: list[float], level: str
) -> None:
    audit = audit_trace(episode_trace(rewards, {"pnl": rewards}), CFG, drawdown_cap=0.02)
    assert _flag(audit, "reward_dispersion").level == level


def test_components_not_summing_to_reward_then_unexplained_component_shown() -> None:
    trace = episode_trace([1.0, 2.0, 3.0], {"pnl": [1.0, 2.0, 3.0]}, reward=[2.0, 3.0, 4.0])
    audit = audit_trace(trace, CFG, drawdown_cap=0.02)
    assert list(audit.components["component"]) == ["pnl", "unexplained"]
    assert audit.episodes["reward__unexplained"].to_numpy() == pytest.approx([1.0, 1.0, 1.0])


def test_single_component_reward_then_dominance_does_not_apply() -> None:
    audit = audit_trace(episode_trace(CLEAN_PNL, {"pnl": CLEAN_PNL}), CFG, drawdown_cap=0.02)
    assert _flag(audit, "component_dominance").level == "unmeasured"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-100, 100, allow_nan=False),
            st.floats(-5, 5, allow_nan=False),
            st.floats(-5, 5, allow_nan=False),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_trace_then_shares_sum_to_one_and_episode_sums_match(
    rows: list[tuple[float, float, float]],
) -> None:
    pnl = [r[0] for r in rows]
    comps = {"a": [r[1] for r in rows], "b": [r[2] for r in rows]}
    audit = audit_trace(episode_trace(pnl, comps), CFG, drawdown_cap=0.02)
    total_abs = sum(abs(x) for x in comps["a"] + comps["b"])
    shares = audit.components["share_of_abs_reward"].to_numpy()
    if total_abs > 1e-9:
        assert shares.sum() == pytest.approx(1.0)
    assert audit.episodes["pnl"].to_numpy() == pytest.approx(pnl, abs=1e-9)
    assert audit.episodes["reward"].to_numpy() == pytest.approx(
        np.add(comps["a"], comps["b"]), abs=1e-9
    )
    per_episode = audit.episodes[["share__a", "share__b"]].abs().sum(axis=1).to_numpy()
    nonzero = np.abs(comps["a"]) + np.abs(comps["b"]) > 0
    assert per_episode[nonzero] == pytest.approx(1.0)


def test_warning_above_critical_threshold_then_config_error() -> None:
    with pytest.raises(ConfigError, match="negative_share_warning"):
        validate_model(
            RewardAuditConfig,
            {"negative_share_warning": 0.9, "negative_share_critical": 0.7},
            "thresholds.yaml",
        )


def test_run_dir_without_evaluation_then_missing_resource_names_evaluate(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(MissingResourceError, match="stairways evaluate"):
        find_trace(tmp_path / "run")


def test_run_dir_then_cap_read_from_its_config_and_reports_written(tmp_path: Path) -> None:
    dd = [0.05] + [0.0] * 9
    write_run(tmp_path / "run", episode_trace(CLEAN_PNL, CLEAN, max_drawdown=dd), 0.04)

    audit, trace_file = audit_path(tmp_path / "run", CFG)
    files = write_audit_report(audit, tmp_path / "report")

    assert audit.drawdown_cap == 0.04
    assert _flag(audit, "drawdown_endings").value == pytest.approx(0.1)
    assert trace_file.name == "traces.parquet"
    md = files["markdown"].read_text()
    assert "| reward_hacking | OK |" in md
    assert "![episode reward against P&L](reward_vs_pnl.png)" in md
    # verdict first, then the flags; shares as percentages, P&L as dollars
    assert md.splitlines()[2] == "**No critical flag (exit code 0); warnings: drawdown_endings**"
    assert "| drawdown_endings | WARNING | 10.0% | 5.0% | 10.0% |" in md
    assert "| 2024-03-13 | 4 | 10.000 | $10.00 |" in md
    assert files["reward_vs_pnl.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = files["html"].read_text()
    assert html.count("data:image/png;base64,") == 3


def test_latest_runs_then_most_recently_evaluated_first_and_unevaluated_skipped(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    first = write_run(runs / "a", episode_trace(CLEAN_PNL, CLEAN))
    second = write_run(runs / "b", episode_trace(CLEAN_PNL, CLEAN))
    (runs / "c").mkdir()  # trained, never evaluated
    os.utime(first, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    os.utime(second, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    assert latest_run_traces(runs, 1) == [first]
    assert latest_run_traces(runs, 5) == [first, second]


def test_cli_on_hacking_and_clean_runs_then_exit_codes_three_and_zero(tmp_path: Path) -> None:
    pnl = [-5.0, -8.0, -3.0, -6.0]
    write_run(tmp_path / "hack", episode_trace(pnl, {"pnl": [0.0] * 4, "hold": [1.0] * 4}))
    write_run(tmp_path / "clean", episode_trace(CLEAN_PNL, CLEAN))
    runner = CliRunner()

    hack = runner.invoke(main_app, ["audit", "rewards", str(tmp_path / "hack")])
    clean = runner.invoke(
        main_app, ["audit", "rewards", str(tmp_path / "clean"), "--out", str(tmp_path / "r")]
    )

    assert hack.exit_code == AUDIT_CRITICAL_EXIT_CODE, hack.output
    assert re.search(r"^CRITICAL +reward_hacking +reward and P&L disagree", hack.output, re.M)
    assert (
        tmp_path / "hack" / "eval" / "validation" / "final" / "reward_audit" / "reward_audit.md"
    ).is_file()
    assert clean.exit_code == 0, clean.output
    assert (tmp_path / "r" / "reward_audit.html").is_file()
