"""``stairways broker flatten`` on a simulated account kept in its SQLite state file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from stairways.brokers.base import MinuteBar
from stairways.brokers.orders import OrderRequest, OrderType
from stairways.brokers.settings import SimConfig
from stairways.brokers.sim import SimBroker
from tests.cli_helpers import stairways

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def bars(t: datetime) -> list[MinuteBar]:
    return [
        MinuteBar("NVDA", t, 100.0, 100.2, 99.8, 100.1, 5_000),
        MinuteBar("MSFT", t, 400.0, 400.4, 399.6, 400.2, 5_000),
    ]


def test_flatten_sim_when_positions_and_orders_then_all_closed_and_persisted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "sim.sqlite"
    broker = SimBroker(SimConfig(state_path=state), ("NVDA", "MSFT"))
    broker.connect()
    broker.on_bars(bars(T0))
    broker.place(OrderRequest.from_decision("d1", "NVDA", 8))
    broker.place(OrderRequest.from_decision("d2", "MSFT", -3))
    broker.on_bars(bars(T0.replace(minute=31)))
    broker.place(OrderRequest.from_decision("d3", "NVDA", 1, OrderType.LIMIT, 50.0))
    broker.close()
    conf = tmp_path / "broker.yaml"
    conf.write_text(yaml.safe_dump({"kind": "sim", "sim": {"state_path": str(state)}}))

    assert stairways(monkeypatch, "broker", "flatten", "--broker-config", conf) == 0
    out = capsys.readouterr().out
    assert "closed NVDA -8" in out and "closed MSFT +3" in out and "positions: none" in out
    again = SimBroker(SimConfig(state_path=state), ("NVDA", "MSFT"))
    again.connect()
    assert again.positions() == [] and again.open_orders() == []


def test_flatten_sim_without_state_file_then_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "broker.yaml"
    conf.write_text("kind: sim\n")
    assert stairways(monkeypatch, "broker", "flatten", "--broker-config", conf) == 2
