"""The monitor's figures come from the journal: P&L, drawdown, positions, orders, state."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.clock import ManualClock
from stairways.journal import JournalLocation, JournalReader
from stairways.monitoring.service import Monitor
from tests.unit.monitoring.conftest import Tick
from tests.unit.monitoring.session_writer import T0, SessionWriter, open_journal


def test_empty_journal_shows_no_trading_and_the_start_state(monitor: Monitor) -> None:
    monitor.refresh()
    snap = monitor.snapshot()
    assert snap["empty"] is True
    assert snap["session"] is None
    assert snap["pnl"]["today"] is None and snap["pnl"]["week"] is None
    assert snap["curve"] == [] and snap["decisions"] == [] and snap["fills"] == []
    assert snap["governor"] == {
        "state": "PAUSED",
        "since": "",
        "who": "start",
        "why": "start state",
        "journaled": False,
    }
    assert snap["latency"]["p50_ms"] is None


def test_snapshot_figures_equal_the_sessions_arithmetic(
    monitor: Monitor, writer: SessionWriter
) -> None:
    writer.start()
    writer.bar({"NVDA": 100.0, "MSFT": 50.0}, trade={"NVDA": 40.0}, fee=1.5, latency_ms=0.5)
    writer.bar({"NVDA": 110.0, "MSFT": 50.0}, latency_ms=2.0)
    writer.bar({"NVDA": 99.0, "MSFT": 50.0}, trade={"MSFT": -10.0}, fee=0.5, latency_ms=1.0)
    monitor.refresh()
    s = monitor.snapshot()
    # Cash: -4000 - 1.5 + 500 - 0.5; holdings at the last closes: 40 * 99 - 10 * 50.
    net = (-4000.0 - 1.5 + 500.0 - 0.5) + 40 * 99.0 - 10 * 50.0
    assert abs(s["pnl"]["today"]["net"] - net) < 1e-9
    assert abs(s["pnl"]["today"]["fees"] - 2.0) < 1e-9
    assert abs(s["pnl"]["today"]["gross"] - (net + 2.0)) < 1e-9
    peak = 10_000.0 - 1.5 + 40 * 10.0
    assert abs(s["drawdown"] - (peak - (10_000.0 + net)) / peak) < 1e-9
    assert s["positions"] == {"NVDA": 40.0, "MSFT": -10.0}
    assert [round(p["equity"], 6) for p in s["curve"]] == [
        round(10_000.0 - 1.5, 6),
        round(peak, 6),
        round(10_000.0 + net, 6),
    ]
    assert s["governor"]["state"] == "RUNNING" and s["governor"]["who"] == "alice"
    assert s["limits"]["drawdown"]["flatten_and_halt_at"] == 0.10
    assert s["limits"]["loss_limit"] == 1000.0
    assert s["latency"]["p50_ms"] == 1.0 and s["latency"]["decisions"] == 3
    assert s["open_orders"] == []  # both orders filled
    assert [f["symbol"] for f in s["fills"]] == ["MSFT", "NVDA"]  # newest first
    assert s["decisions"][0]["verdicts"] == []  # the newest decision made no order yet
    verdicts = s["decisions"][1]["verdicts"]
    assert verdicts[0]["symbol"] == "MSFT" and verdicts[0]["decision"] == "approve"
    assert monitor.view.executions[("NVDA", "filled")] == 1


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(50.0, 150.0),
            st.floats(-30.0, 30.0).map(lambda q: float(round(q))),
            st.floats(0.0, 3.0),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_net_pnl_is_cash_flow_plus_marked_holdings_for_any_trades(
    tmp_path_factory: object, steps: list[tuple[float, float, float]]
) -> None:
    root = Path(tmp_path_factory.mktemp("view"))  # type: ignore[attr-defined]
    j = open_journal(root / "j.sqlite")
    try:
        w = SessionWriter(j)
        w.start()
        cash, held, fees = 0.0, 0.0, 0.0
        for price, qty, fee in steps:
            trade = {"NVDA": qty} if qty else None
            w.bar({"NVDA": price, "MSFT": 40.0}, trade=trade, fee=fee)
            if qty:
                cash -= qty * price + fee
                held += qty
                fees += fee
        with JournalReader.open(JournalLocation.sqlite(root / "j.sqlite")) as reader:
            m = Monitor(reader, ManualClock(T0), monotonic=Tick())
            m.refresh()
            pnl = m.snapshot()["pnl"]["today"]
        expected = cash + held * steps[-1][0]
        assert abs(pnl["net"] - expected) < 1e-6
        assert abs(pnl["fees"] - fees) < 1e-9
        assert abs(pnl["gross"] - (expected + fees)) < 1e-6
    finally:
        j.close()


def test_refresh_reads_only_new_records_and_counts_versions(
    monitor: Monitor, writer: SessionWriter
) -> None:
    writer.start()
    assert monitor.refresh() is True
    v = monitor.version
    assert monitor.refresh() is False and monitor.version == v
    writer.bar({"NVDA": 100.0, "MSFT": 50.0})
    assert monitor.refresh() is True and monitor.version == v + 1


def test_broker_disconnect_and_feed_age_follow_the_journal(
    monitor: Monitor, writer: SessionWriter, clock: ManualClock, tick: Tick
) -> None:
    writer.start()
    writer.bar({"NVDA": 100.0, "MSFT": 50.0})
    writer.journal.append(
        "alert", {"session_id": writer.sid, "type": "broker_disconnect", "why": "socket"}, writer.at
    )
    clock.set(writer.at)
    monitor.refresh()
    tick.t += 30.0
    clock.advance(90.0)
    f = monitor.figures()
    assert f["broker_down_seconds"] == 90.0
    assert f["feed_age"] == 30.0  # the smaller of 90 s exchange time and 30 s since read
    assert monitor.snapshot()["broker"]["connected"] is False
