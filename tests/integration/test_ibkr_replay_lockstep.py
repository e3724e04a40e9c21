"""The fake gateway's lockstep replay fills a slow client's order at the next minute's open.

The replay serves the next minute once the client is ready and then quiet. A client that took
longer than the quiet time over its decision writes its order and then says it is ready; the
order is in the gateway's socket buffer but not read yet. The quiet time must count from the
ready moment: counted from the minute's push, the replay served the next minute before reading
the order (all twelve of its 5-second bars go out without yielding), which then filled at the
open of the minute after (a stalled stress session traded other prices than the same session
unstalled: ``test_stress_gateway`` failed on CI).
"""

from __future__ import annotations

import threading
import time

import pytest
from ib_async import IB, MarketOrder

from stairways.brokers.ibkr.adapter import stock
from tests.fakes.ib_gateway import FakeIBGateway, ReplayBar, five_second_bars

pytestmark = pytest.mark.timeout(60)

START = 1_700_000_000 - 1_700_000_000 % 60


def _minute(k: int, base: float) -> dict[str, ReplayBar]:
    return {
        "NVDA": ReplayBar(
            start=START + 60 * k,
            open=base,
            high=base + 2.4,
            low=base - 1.2,
            close=base + 1.0,
            volume=1200.0,
            vwap=base + 0.5,
        )
    }


def test_an_order_sent_just_before_ready_fills_at_the_next_minute_open() -> None:
    minutes = [_minute(0, 100.0), _minute(1, 110.0), _minute(2, 120.0)]
    asked, sent = threading.Event(), threading.Event()
    stall = 0.3  # deciding took longer than the gateway's quiet time

    def ready(start: int) -> bool:
        # on the gateway's thread, inside the replay: the first call after the stall lets the
        # client send its order and answers once it is written (so it cannot have been read)
        if start != START or sent.is_set():
            return True
        if time.monotonic() - t_first[0] < stall:
            return False
        asked.set()
        return sent.wait(10.0)

    t_first = [float("inf")]
    with FakeIBGateway(server_version=178) as gw:
        gw.start_replay(
            minutes, quiet_seconds=0.02, away_minutes=0, ready=ready, ready_timeout=10.0
        )
        ib = IB()
        ib.connect("127.0.0.1", gw.port, clientId=1, timeout=5.0)
        try:
            bars = ib.reqRealTimeBars(stock("NVDA"), 5, "TRADES", False)
            deadline = time.monotonic() + 10.0
            while len(bars) < 12 and time.monotonic() < deadline:
                ib.sleep(0.005)
            assert len(bars) == 12, "the first minute was not served"
            t_first[0] = time.monotonic()
            assert asked.wait(10.0)
            trade = ib.placeOrder(stock("NVDA"), MarketOrder("BUY", 10))
            sent.set()
            while not trade.fills and time.monotonic() < deadline:
                ib.sleep(0.005)
            assert trade.fills, "the order did not fill"
            opens = [p[1] for p in five_second_bars(minutes[1]["NVDA"])]
            assert opens[0] != opens[1]
            assert trade.fills[0].execution.price == pytest.approx(opens[0])
        finally:
            sent.set()
            ib.disconnect()
