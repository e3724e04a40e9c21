from pathlib import Path

import pandas as pd
import pytest

from stairways.analysis import action_traces as at
from stairways.analysis.flipflop import FlipFlopRule
from stairways.errors import InputError, MissingResourceError
from stairways.evaluation.traces import (
    trace_path,
    write_trace,
)
from tests.unit.analysis.trace_builders import CAPITAL, PRICE, make_trace


def test_trade_events_name_entries_exits_reversals_and_resizes() -> None:
    trace = make_trace([([0, 10, 10, 20, -5, 0], [0] * 6, [0.0] * 6)])
    events = at.trade_events(trace)
    assert events["kind"].tolist() == ["entry", "resize", "reversal", "exit"]
    assert events["step"].tolist() == [1, 3, 4, 5]
    assert events["side"].tolist() == ["long", "long", "short", "short"]
    assert events["price"].tolist() == [PRICE + 0.5] * 4  # fill prices where filled


def test_each_session_starts_flat_so_a_carried_position_is_an_entry() -> None:
    trace = make_trace([([0, 5], [0, 0], [0.0, 0.0]), ([5, 5], [0, 0], [0.0, 0.0])])
    events = at.trade_events(trace)
    assert events["kind"].tolist() == ["entry", "entry"]
    assert events["session_date"].dt.day.tolist() == [1, 2]


def test_holdings_measure_runs_of_one_side_and_end_at_the_session_end() -> None:
    trace = make_trace([([0, 1, 1, 1, -1, -1, 0, 2], [0] * 8, [0.0] * 8)])
    held = at.holdings(trace)
    assert held[["side", "entry_step", "exit_step", "holding_bars"]].values.tolist() == [
        ["long", 1, 3, 3],
        ["short", 4, 5, 2],
        ["long", 7, 7, 1],
    ]


def test_position_patterns_give_shares_of_time_long_short_and_flat() -> None:
    trace = make_trace([([1, 1, -1, 0], [0, 0, 0, 0], [0.0] * 4)])
    pat = at.position_patterns(trace)
    assert pat.loc["NVDA", ["long", "short", "flat"]].tolist() == [0.5, 0.25, 0.25]
    assert pat.loc["MSFT", "flat"] == 1.0


def test_equity_curve_chains_sessions_and_measures_drawdown_from_the_peak() -> None:
    trace = make_trace([([0, 0], [0, 0], [100.0, -50.0]), ([0, 0], [0, 0], [-550.0, 0.0])])
    curve = at.equity_curve(trace)
    assert curve["equity"].tolist() == [10_100.0, 10_050.0, 9_500.0, 9_500.0]
    assert curve["drawdown"].iloc[2] == pytest.approx(600.0 / 10_100.0)


def test_episode_summary_counts_turnover_fills_exposure_and_flips() -> None:
    flipper = [1.0 if (i // 2) % 2 == 0 else -1.0 for i in range(60)]
    calm = [0.0] * 30 + [2.0] * 30
    trace = make_trace([(flipper, [0.0] * 60, [-1.0] * 60), (calm, [0.0] * 60, [1.0] * 60)])
    summary = at.episode_summary(trace, FlipFlopRule(window=2))
    bad, good = summary.iloc[0], summary.iloc[1]
    assert bad["flips"] == 29 and bool(bad["flagged_losing"])
    assert good["flips"] == 0 and not bool(good["flagged"])
    assert good["fills"] == 1 and good["exposure"] == pytest.approx(0.5)
    assert good["turnover"] == pytest.approx(2 * (PRICE + 0.5) / CAPITAL)
    assert good["mean_holding_bars"] == 30
    assert bad["net_pnl"] == -60.0 and good["net_pnl"] == 60.0


def test_good_versus_bad_compares_the_best_and_worst_episodes() -> None:
    summary = pd.DataFrame({"net_pnl": [5.0, -3.0, 1.0, -8.0], "flips": [0, 10, 2, 20]})
    table = at.good_vs_bad(summary, fraction=0.5)
    assert table.loc["good", "net_pnl"] == 3.0 and table.loc["bad", "net_pnl"] == -5.5
    assert table.loc["good", "flips"] == 1.0 and table.loc["bad", "flips"] == 15.0
    with pytest.raises(InputError, match="at least 2 episodes"):
        at.good_vs_bad(summary.head(1))


def test_missing_run_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(MissingResourceError, match="no_such_run"):
        at.ranked_traces(tmp_path / "no_such_run", "eval_feb2024")


def test_existing_traces_are_reused_and_missing_ones_are_not_invented(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "checkpoint_1000.zip"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"zip")
    ranking = pd.DataFrame(
        {
            "rank": [1],
            "steps": [1000],
            "checkpoint": [str(ckpt)],
            "reward_mean": [0.3],
            "episodes_in_window": [4],
        }
    )
    with pytest.raises(MissingResourceError, match="stairways evaluate"):
        at.checkpoint_traces(run, "eval_feb2024", ranking)
    trace = make_trace([([0, 1], [0, 0], [0.0, 1.0]), ([1, 0], [0, 0], [0.0, 0.0])])
    write_trace(trace, trace_path(run, "eval_feb2024", "checkpoint_1000"))

    def fail(*_: object) -> Path:
        raise AssertionError("an existing trace must be reused, not replayed")

    [loaded] = at.checkpoint_traces(run, "eval_feb2024", ranking, produce=fail)
    assert loaded.reused and loaded.rank == 1 and loaded.label == "#1 (1000 steps)"
    assert loaded.trace.n_sessions == 2


def test_notebook_failures_come_back_as_the_same_typed_error(tmp_path: Path) -> None:
    from stairways.analysis.trace_report import _typed_error
    from stairways.errors import StairwaysError

    err = _typed_error("MissingResourceError", "no trace of checkpoint_5000.zip", tmp_path / "n")
    assert type(err) is MissingResourceError and str(err) == "no trace of checkpoint_5000.zip"
    foreign = _typed_error("ZeroDivisionError", "division by zero", tmp_path / "n.ipynb")
    assert type(foreign) is StairwaysError
    assert "ZeroDivisionError" in str(foreign) and "n.ipynb" in str(foreign)
