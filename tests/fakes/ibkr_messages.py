"""Recorded TWS API messages (both directions) at two server versions, for fixture tests.

``python -m tests.fakes.ibkr_messages`` re-records ``tests/fixtures/ibkr/messages_v<N>.json``:
the fake gateway's answers for a canonical order (open order, status, execution, commission,
completed order, reject, historical data, real-time bar) and what the real ib_async client sent
for it (startApi, placeOrder, cancelOrder, reqHistoricalData). The tests compare today's
messages with the recorded ones, so a change in ib_async's or the fake's wire layout shows up
as a failing fixture test instead of a silent drift.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ib_async import IB, LimitOrder, Stock

from tests.fakes.ib_gateway import NY, FakeExecution, FakeIBGateway, FakeOrder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ibkr"
VERSIONS = (165, 178)


def server_messages(version: int) -> dict[str, list[str]]:
    """The fake gateway's messages for a canonical order, at ``version``."""
    gw = FakeIBGateway(server_version=version)
    order = FakeOrder(
        order_id=7, client_id=11, perm_id=900000001, symbol="NVDA", action="BUY", quantity=10,
        order_type="LMT", lmt_price="120.5", tif="DAY", account="DU1234567",
        order_ref="sw-d-0001-NVDA", status="Submitted", filled=4, avg_price=120.25,
        last_fill=120.25,
    )  # fmt: skip
    ex = FakeExecution(
        exec_id="0000e0d5.60000001.01.01", order=order, shares=4, price=120.25, cum_qty=4,
        avg_price=120.25, time=datetime(2024, 3, 4, 10, 0, tzinfo=NY), commission=1.0,
    )  # fmt: skip
    done = FakeOrder(**{**order.__dict__, "status": "Filled", "filled": 10})

    def s(fields: list[Any]) -> list[str]:
        return [str(f) for f in fields]

    error: list[Any] = [4, 2, 7, 201, "Order rejected - reason:SIMULATED"]
    if version >= 166:
        error.append("")
    return {
        "nextValidId": s([9, 1, 8]),
        "managedAccounts": s([15, 1, "DU1234567"]),
        "position": s(gw._position_fields("NVDA", 4, 120.25)),
        "openOrder": s(gw._open_order_fields(order)),
        "orderStatus": s(gw._status_fields(order)),
        "execDetails": s(gw._exec_fields(-1, ex)),
        "commissionReport": s(gw._commission_fields(ex)),
        "completedOrder": s(gw._completed_order_fields(done)),
        "error": s(error),
        "historicalData": s(
            [17, 3, "", "", 1, "1709562600", "120", "120.5", "119.9", "120.25", "1500", "120.2", 10]
        ),
        "realtimeBar": s(
            [50, 3, 4, 1709562600, "120", "120.5", "119.9", "120.25", "80", "120.2", 7]
        ),
    }


def client_messages(version: int) -> dict[str, list[str]]:
    """What the real ib_async client sends for a canonical order and requests, at ``version``."""
    with FakeIBGateway(server_version=version) as gw:
        ib = IB()
        ib.connect("127.0.0.1", gw.port, clientId=11, timeout=5)
        try:
            order = LimitOrder("BUY", 10, 120.5)
            order.orderRef = "sw-d-0001-NVDA"
            order.account = "DU1234567"
            order.tif = "DAY"
            trade = ib.placeOrder(Stock("NVDA", "SMART", "USD"), order)
            ib.sleep(0.2)
            ib.cancelOrder(trade.order)
            ib.reqHistoricalData(
                Stock("NVDA", "SMART", "USD"), "20240304 21:00:00 UTC", "1 D", "1 min",
                "TRADES", True, 2,
            )  # fmt: skip
            ib.sleep(0.2)
        finally:
            ib.disconnect()
        received = gw.messages_from(11)
    first = {int(f[0]): f for f in reversed(received)}
    return {
        "startApi": first[71],
        "placeOrder": first[3],
        "cancelOrder": first[4],
        "reqHistoricalData": first[20],
    }


def _dump(data: dict[str, Any]) -> str:
    """JSON with one message per line, so a layout change reads as a one-line diff."""
    lines = ["{", f' "server_version": {data["server_version"]},']
    for side in ("server", "client"):
        lines.append(f' "{side}": {{')
        items = list(data[side].items())
        for k, (name, fields) in enumerate(items):
            comma = "," if k < len(items) - 1 else ""
            lines.append(f"  {json.dumps(name)}: {json.dumps(fields)}{comma}")
        lines.append("  }," if side == "server" else "  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def record() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for v in VERSIONS:
        data = {"server_version": v, "server": server_messages(v), "client": client_messages(v)}
        path = FIXTURES / f"messages_v{v}.json"
        path.write_text(_dump(data))
        print(f"wrote {path}")


if __name__ == "__main__":
    record()
