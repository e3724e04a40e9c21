"""IBKR history import, live bars and the ``broker`` commands against the fake IB Gateway."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stairways.brokers.ibkr.adapter import IbkrBroker
from stairways.brokers.ibkr.feed import IbkrBarFeed
from stairways.brokers.ibkr.history import IbkrHistory
from stairways.clock import ManualClock
from stairways.data import calendar as cal
from stairways.data.store import BarStore
from tests.cli_helpers import stairways
from tests.fakes.ib_gateway import Accept, FakeIBGateway
from tests.integration.test_ibkr_fake_gateway import broker_config

pytestmark = pytest.mark.timeout(120)

SESSIONS = (
    date(2024, 11, 27),
    date(2024, 11, 29),
)  # a full day and the half day after Thanksgiving


def history_rows(day: date, seed: int) -> list[tuple[int, float, float, float, float, float]]:
    """Deterministic 1-minute bars of one session (epoch seconds, OHLCV)."""
    s = cal.sessions(day, day)
    rng = np.random.default_rng(seed)
    n = int(s.minutes[0])
    close = 130.0 * np.exp(np.cumsum(rng.normal(0, 0.0005, n)))
    open_ = np.concatenate([[130.0], close[:-1]])
    high = np.maximum(open_, close) * 1.0004
    low = np.minimum(open_, close) * 0.9996
    t0 = int(s.opens[0].value // 1_000_000_000)
    return [
        (t0 + 60 * k, round(open_[k], 2), round(high[k], 2), round(low[k], 2), round(close[k], 2),
         float(rng.integers(1_000, 50_000)))
        for k in range(n)
    ]  # fmt: skip


@pytest.fixture(params=(165, 178), ids=("server165", "server178"))
def gateway(request: pytest.FixtureRequest) -> Iterator[FakeIBGateway]:
    with FakeIBGateway(server_version=request.param) as gw:
        gw.history["NVDA"] = [r for i, d in enumerate(SESSIONS) for r in history_rows(d, i)]
        yield gw


def write_broker_yaml(tmp_path: Path, port: int, **ibkr: object) -> Path:
    path = tmp_path / "broker.yaml"
    settings = {"host": "127.0.0.1", "port": port, "connect_timeout_seconds": 3.0, **ibkr}
    path.write_text(yaml.safe_dump({"kind": "ibkr", "mode": "paper", "ibkr": settings}))
    return path


def test_history_when_sessions_requested_then_one_paced_request_per_session(
    gateway: FakeIBGateway,
) -> None:
    cfg = broker_config(gateway.port, history_min_interval_seconds=2.0)
    clock = ManualClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    with IbkrHistory(cfg, clock=clock, sleep=sleep) as source:
        raw = source.fetch("NVDA", date(2024, 11, 27), date(2024, 11, 29))
    assert source.requests == 2  # Thanksgiving (28th) is not a session
    assert len(raw.frame) == 390 + 210
    assert waits == [2.0]  # the second request waited the minimum interval
    requests = gateway.history_requests
    # contract NVDA STK SMART USD; end at the session close in UTC; 1 D of 1 min TRADES, RTH
    assert [r[15] for r in requests] == ["20241127 21:00:00 UTC", "20241129 18:00:00 UTC"]
    assert {(r[3], r[4], r[9], r[11], r[16], r[17], r[18], r[19]) for r in requests} == {
        ("NVDA", "STK", "SMART", "USD", "1 min", "1 D", "1", "TRADES")
    }


def test_history_pacing_when_window_full_then_waits_for_the_oldest_to_leave() -> None:
    cfg = broker_config(4999, history_requests_per_10_minutes=3, history_min_interval_seconds=0.0)
    clock = ManualClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    source = IbkrHistory(cfg, clock=clock, sleep=sleep)
    for _ in range(3):
        source._pace()
        clock.advance(10.0)
    source._pace()
    assert waits == [600.0 - 30.0]


def test_import_ibkr_through_the_cli_validates_and_stores_like_any_source(
    gateway: FakeIBGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = write_broker_yaml(tmp_path, gateway.port, history_min_interval_seconds=0.0)
    store = tmp_path / "bars.duckdb"
    code = stairways(
        monkeypatch, "data", "import", "--ibkr", "--symbol", "NVDA", "--from", "2024-11-27",
        "--to", "2024-11-29", "--store", store, "--broker-config", conf,
    )  # fmt: skip
    assert code == 0
    with BarStore(store) as s:
        bars = s.read_bars(["NVDA"], date(2024, 11, 27), date(2024, 11, 29))
    assert len(bars) == 600
    first = pd.Timestamp(bars["ts"].min()).tz_convert("America/New_York")
    assert (first.hour, first.minute) == (9, 30)
    expected = history_rows(SESSIONS[1], 1)[-1]
    last = bars.sort_values("ts").iloc[-1]
    assert float(last["close"]) == expected[4]
    # a re-run finds both sessions complete and asks IB for nothing
    before = len(gateway.history_requests)
    assert stairways(
        monkeypatch, "data", "import", "--ibkr", "--symbol", "NVDA", "--from", "2024-11-27",
        "--to", "2024-11-29", "--store", store, "--broker-config", conf,
    ) == 0  # fmt: skip
    assert len(gateway.history_requests) == before


def test_import_ibkr_when_flags_conflict_then_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stairways(monkeypatch, "data", "import", "--ibkr", "--symbol", "NVDA") == 2
    assert (
        stairways(monkeypatch, "data", "import", "x.csv", "--broker-config", tmp_path / "b.yaml")
        == 2
    )


def test_realtime_bars_when_five_second_bars_arrive_then_closed_minutes_in_exchange_time(
    gateway: FakeIBGateway,
) -> None:
    start = datetime(2024, 11, 29, 12, 58, tzinfo=cal_tz())
    clock = ManualClock(start)
    broker = IbkrBroker(broker_config(gateway.port), clock=clock)
    broker.connect()
    try:
        feed = IbkrBarFeed(broker, ["NVDA"], grace_seconds=10)
        assert feed.poll(0.2) == []
        t0 = int(start.timestamp())
        # 12:58 complete, 12:59 complete (last minute of the half day), 13:00 after the close
        five = [(t0 + 5 * k, 100 + k, 100.5 + k, 99.5 + k, 100.25 + k, 10.0 + k) for k in range(36)]
        gateway.push_realtime_bars("NVDA", five)
        got = []
        for _ in range(40):
            got += feed.poll(0.05)
            if len(got) == 2:
                break
        assert [(b.start.hour, b.start.minute) for b in got] == [(12, 58), (12, 59)]
        first = got[0]
        assert (first.open, first.high, first.low, first.close) == (100, 111.5, 99.5, 111.25)
        assert first.volume == sum(10.0 + k for k in range(12))
        assert first.start.utcoffset() == timedelta(hours=-5)
        assert feed.last_bar_start("NVDA") == got[1].start
        clock.advance(timedelta(minutes=5))
        assert feed.poll(0.1) == []  # 13:00 is after the half day's close: never delivered
        assert len(gateway.messages_from(11, 50)) == 1
    finally:
        broker.close()


def cal_tz():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/New_York")


def test_broker_check_when_gateway_up_then_prints_account_positions_orders_and_places_nothing(
    gateway: FakeIBGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    gateway.set_position("NVDA", 12, 118.5)
    gateway.plan("*", Accept(fills=None))
    trader = IbkrBroker(broker_config(gateway.port))
    trader.connect()
    from stairways.brokers.orders import OrderRequest, OrderType

    trader.place(OrderRequest.from_decision("d-open", "MSFT", 3, OrderType.LIMIT, 390.0))
    trader.events(0.3)
    conf = write_broker_yaml(tmp_path, gateway.port)
    try:
        code = stairways(
            monkeypatch, "broker", "check", "--mode", "paper", "--host", "127.0.0.1",
            "--port", str(gateway.port), "--broker-config", conf,
        )  # fmt: skip
    finally:
        trader.close()
    out = capsys.readouterr().out
    assert code == 0
    assert "account DU1234567 (paper)" in out and "$1,000,000.00" in out
    assert "NVDA" in out and "12 shares" in out and "$118.50" in out
    assert "sw-d-open-MSFT" in out and "limit $390.00" in out
    assert gateway.messages_from(12, 3) == []  # the check client (id 12) placed nothing
    assert gateway.messages_from(12, 16)  # it asked for every client's open orders


def test_broker_check_when_live_port_in_paper_mode_then_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = stairways(monkeypatch, "broker", "check", "--mode", "paper", "--port", "4001")
    assert code == 2
    assert "4001 is a live port" in capsys.readouterr().err


def test_broker_check_when_live_mode_without_flag_then_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = stairways(monkeypatch, "broker", "check", "--mode", "live")
    assert code == 2
    assert "--live" in capsys.readouterr().err


def test_broker_check_when_gateway_down_then_exit_1_naming_host_and_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = stairways(monkeypatch, "broker", "check", "--port", str(port))
    err = capsys.readouterr().err
    assert code == 1
    assert f"127.0.0.1:{port}" in err and "start IB Gateway" in err


def test_broker_flatten_when_orders_and_positions_then_cancels_all_and_closes(
    gateway: FakeIBGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    gateway.set_position("NVDA", 12, 118.5)
    gateway.plan("d-open", Accept(fills=None))
    gateway.plan("flatten", Accept(fills=((12, 119.0),)))
    trader = IbkrBroker(broker_config(gateway.port))
    trader.connect()
    from stairways.brokers.orders import OrderRequest, OrderType

    trader.place(OrderRequest.from_decision("d-open", "MSFT", 3, OrderType.LIMIT, 390.0))
    trader.events(0.3)
    trader.close()
    conf = write_broker_yaml(tmp_path, gateway.port)
    code = stairways(monkeypatch, "broker", "flatten", "--broker-config", conf, "--wait", "5")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "flat: no open orders, no positions" in out
    assert gateway.messages_from(13, 58)  # global cancel from the flatten client (id 13)
    closing = gateway.messages_from(13, 3)
    assert [(f[3], f[16], f[17]) for f in closing] == [("NVDA", "SELL", "12")]
    assert all(o.done for o in gateway.orders.values())
