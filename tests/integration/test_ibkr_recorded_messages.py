"""Recorded TWS API messages: ib_async decodes them as expected, and nothing drifted.

The fixtures (``tests/fixtures/ibkr/messages_v<N>.json``) hold the fake gateway's canonical
answers and what the real ib_async client sent, at two server versions. Re-record them with
``python -m tests.fakes.ibkr_messages`` only after checking a layout change on purpose.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest
from ib_async.decoder import Decoder

from tests.fakes.ibkr_messages import FIXTURES, VERSIONS, client_messages, server_messages

pytestmark = pytest.mark.timeout(60)


def load(version: int) -> dict[str, Any]:
    return json.loads((FIXTURES / f"messages_v{version}.json").read_text())


class Recorder:
    """A wrapper that records every call the decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.ib = type("IBStub", (), {"TimezoneTWS": None})()
        self.defaultTimezone = UTC

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def decode(version: int, fields: list[str]) -> tuple[str, tuple[Any, ...]]:
    rec = Recorder()
    Decoder(rec, version).interpret(list(fields))  # type: ignore[arg-type]
    assert rec.calls, f"decoder produced nothing for {fields[:3]}"
    return rec.calls[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_recorded_server_messages_decode_into_the_expected_objects(version: int) -> None:
    msgs = load(version)["server"]
    name, (order_id, contract, order, state) = decode(version, msgs["openOrder"])
    assert name == "openOrder"
    assert (order_id, contract.symbol, contract.exchange, contract.currency) == (
        7,
        "NVDA",
        "SMART",
        "USD",
    )
    assert (order.orderRef, order.totalQuantity, order.lmtPrice, order.clientId) == (
        "sw-d-0001-NVDA", 10.0, 120.5, 11
    )  # fmt: skip
    assert (order.permId, state.status) == (900000001, "Submitted")
    # about 120 to 128 fields, depending on the version
    assert 120 <= len(msgs["openOrder"]) <= 128
    name, args = decode(version, msgs["orderStatus"])
    assert (name, args[:5]) == ("orderStatus", (7, "Submitted", 4.0, 6.0, 120.25))
    name, (req_id, contract, execution) = decode(version, msgs["execDetails"])
    assert (req_id, execution.orderRef, execution.shares, execution.price, execution.side) == (
        -1, "sw-d-0001-NVDA", 4.0, 120.25, "BOT"
    )  # fmt: skip
    assert execution.time.isoformat() == "2024-03-04T15:00:00+00:00"
    name, (report,) = decode(version, msgs["commissionReport"])
    assert (report.execId, report.commission) == ("0000e0d5.60000001.01.01", 1.0)
    name, (contract, order, state) = decode(version, msgs["completedOrder"])
    assert (name, order.orderRef, state.status, order.filledQuantity) == (
        "completedOrder", "sw-d-0001-NVDA", "Filled", 10.0
    )  # fmt: skip
    name, args = decode(version, msgs["error"])
    assert (name, args[:3]) == ("error", (7, 201, "Order rejected - reason:SIMULATED"))
    name, (account, contract, position, avg) = decode(version, msgs["position"])
    assert (account, contract.symbol, position, avg) == ("DU1234567", "NVDA", 4.0, 120.25)


@pytest.mark.parametrize("version", VERSIONS)
def test_server_messages_match_the_recording(version: int) -> None:
    assert server_messages(version) == load(version)["server"]


@pytest.mark.parametrize("version", VERSIONS)
def test_client_messages_of_ib_async_match_the_recording(version: int) -> None:
    recorded = load(version)["client"]
    now = client_messages(version)
    assert now == recorded
    placed = recorded["placeOrder"]
    assert (placed[3], placed[16], placed[17], placed[18], placed[19], placed[26]) == (
        "NVDA", "BUY", "10", "LMT", "120.5", "sw-d-0001-NVDA"
    )  # fmt: skip


def test_layouts_differ_between_the_recorded_versions() -> None:
    old, new = load(VERSIONS[0]), load(VERSIONS[1])
    assert len(old["server"]["openOrder"]) != len(new["server"]["openOrder"])
    assert len(old["server"]["error"]) + 1 == len(new["server"]["error"])
    assert len(old["server"]["execDetails"]) + 1 == len(new["server"]["execDetails"])
