"""The action-trace report's verdict and tables read as money, shares and percentages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stairways.analysis import trace_views as tv
from stairways.analysis.action_traces import CheckpointTrace, episode_summary
from stairways.analysis.flipflop import FlipFlopRule
from stairways.reports.html import block_html
from tests.unit.analysis.trace_builders import make_trace

N = 120
CALM = [10.0] * 60 + [0.0] * 10 + [-10.0] * 50  # one reversal through flat
FLIPPER = [10.0 if (i // 2) % 2 == 0 else -10.0 for i in range(N)]  # reverses every 2 bars


def _ranked(first: list[float], pnl_first: float, second: list[float], pnl_second: float):
    traces = [
        make_trace([(first, [0.0] * N, [pnl_first] * N)] * 3, checkpoint="checkpoint_2000"),
        make_trace([(second, [0.0] * N, [pnl_second] * N)] * 3, checkpoint="checkpoint_1000"),
    ]
    ranked = [
        CheckpointTrace(
            rank=i + 1,
            steps=(2 - i) * 1000,
            checkpoint=Path(f"checkpoint_{(2 - i) * 1000}.zip"),
            training_reward=1.5 - i,
            trace=tr,
            reused=False,
        )
        for i, tr in enumerate(traces)
    ]
    rule = FlipFlopRule()
    summaries = {c.label: episode_summary(c.trace, rule) for c in ranked}
    return ranked, summaries, rule


def test_a_profitable_calm_top_checkpoint_passes_and_amounts_read_as_dollars() -> None:
    ranked, summaries, rule = _ranked(CALM, 0.75, FLIPPER, -0.5)
    v = tv.verdict("run_x", "validation", ranked, summaries, rule)
    assert v.level == "pass"
    # 3 sessions x 120 steps x $0.75
    assert v.text.startswith("Top-ranked checkpoint #1 (2000 steps): net P&L $270.00 over 3")
    assert "$90.00 a session, 100% of sessions profitable" in v.text
    assert "0 of 3 episodes flagged as flip-flopping." in v.text
    assert any("#2 (1000 steps): -$180.00" in d for d in v.details)
    assert any("10.0 flips per 60 bars" in d for d in v.details)


def test_a_flip_flopping_top_checkpoint_is_reported_in_the_verdict() -> None:
    ranked, summaries, rule = _ranked(FLIPPER, -0.5, CALM, 0.75)
    v = tv.verdict("run_x", "validation", ranked, summaries, rule)
    assert v.level == "fail"
    assert "3 of 3 episodes flagged as flip-flopping, 3 of them losing money." in v.text


def test_ranking_rows_are_formatted_and_the_top_row_marked() -> None:
    ranked, summaries, _ = _ranked(CALM, 0.75, FLIPPER, -0.5)
    block = tv.ranking_table(ranked, summaries)
    cells = dict(zip(block.table.headers, block.table.cells[0], strict=True))
    assert cells["net P&L"] == "$270.00"
    assert cells["per session"] == "$90.00"
    assert cells["sessions profitable"] == "100%"
    assert cells["checkpoint (steps)"] == "2,000"
    assert re.fullmatch(r"\d+\.\d /h", cells["flips"])
    assert block.table.cells[1][block.table.headers.index("flip-flop episodes")] == "3 of 3"
    assert block.table.row_classes == ("best", "")


def test_no_table_shows_raw_floats() -> None:
    ranked, summaries, rule = _ranked(CALM, 0.123456, FLIPPER, -0.654321)
    best = summaries[ranked[0].label]
    blocks = [
        tv.ranking_table(ranked, summaries),
        tv.patterns_table(ranked),
        tv.activity_table(summaries),
        tv.good_vs_bad_table(best),
        tv.episodes_table(best),
        *tv.flip_flop_tables(ranked, summaries, rule),
    ]
    for block in blocks:
        html = block_html(block)
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
        for cell in cells:
            assert not re.search(r"\d\.\d{4,}", cell), (cell, html[:200])


def test_episodes_table_marks_flagged_losing_sessions() -> None:
    ranked, summaries, _ = _ranked(FLIPPER, -0.5, CALM, 0.75)
    block = tv.episodes_table(summaries[ranked[0].label])
    flags = [row[-1] for row in block.table.cells]
    assert flags == ["flip-flop, losing"] * 3
    assert block.table.row_classes == ("bad",) * 3
    assert block.sortable


def test_the_ranking_and_the_verdict_show_the_daily_sharpe_with_its_interval() -> None:
    # Sessions earning $90, $30 and $60: daily Sharpe = 60 / 30 * sqrt(252) = 31.75
    sessions = [(CALM, [0.0] * N, [p] * N) for p in (0.75, 0.25, 0.5)]
    trace = make_trace(sessions, checkpoint="checkpoint_1000")
    ranked = [
        CheckpointTrace(
            rank=1,
            steps=1000,
            checkpoint=Path("checkpoint_1000.zip"),
            training_reward=1.0,
            trace=trace,
            reused=False,
        )
    ]
    rule = FlipFlopRule()
    summaries = {c.label: episode_summary(c.trace, rule) for c in ranked}
    block = tv.ranking_table(ranked, summaries)
    cells = dict(zip(block.table.headers, block.table.cells[0], strict=True))
    headers = list(block.table.headers)
    # the daily Sharpe sits right beside the 30-minute one
    assert headers.index("daily Sharpe [95% CI]") == headers.index("Sharpe (30-min)") + 1
    daily = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", cells["daily Sharpe [95% CI]"])
    assert daily is not None
    assert float(daily.group(1)) == pytest.approx(2 * 252**0.5, abs=0.01)
    assert float(daily.group(2)) <= float(daily.group(1)) <= float(daily.group(3))
    assert re.fullmatch(r"-?\d+\.\d\d", cells["Sharpe (30-min)"])
    v = tv.verdict("run_x", "validation", ranked, summaries, rule)
    line = next(d for d in v.details if d.startswith("Top-ranked checkpoint: Sharpe"))
    assert f"(30-min) / 31.75 daily [{daily.group(2)}, {daily.group(3)}]" in line
