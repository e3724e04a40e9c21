"""Live 1-minute bars from IB's 5-second real-time bars, behind the BarFeed protocol.

The feed subscribes ``reqRealTimeBars`` (5 seconds, TRADES, regular hours) for every symbol on
the broker's connection and aggregates with :class:`~stairways.brokers.bars.MinuteAggregator`;
each minute carries its VWAP built from the five-second bars' ``wap`` (the rule the bar store's
``vwap`` follows; a ``wap`` that is not a positive price counts as unknown).
After a reconnect (the adapter's connection count changes) the subscriptions are made again,
since IB forgets them with the socket. A minute whose last five-second bar never comes is
closed when the clock passes its end plus ``grace_seconds``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from ib_async import RealTimeBarList

from stairways.brokers.bars import SUB_BAR_SECONDS, MinuteAggregator
from stairways.brokers.base import MinuteBar
from stairways.brokers.ibkr.adapter import IbkrBroker, stock

log = logging.getLogger(__name__)


class IbkrBarFeed:
    """Closed 1-minute bars of ``symbols`` from the broker's IB connection.

    :param broker: a connected :class:`IbkrBroker` (its connection and clock are used)
    :param symbols: tickers to subscribe
    :param grace_seconds: how long after a minute's end a missing last 5-second bar is awaited
    :param on_bar: called with each 5-second bar's end as it arrives (a clock that follows the
        market data)
    """

    def __init__(
        self,
        broker: IbkrBroker,
        symbols: Sequence[str],
        grace_seconds: float = 10.0,
        on_bar: Callable[[datetime], None] | None = None,
    ) -> None:
        self.broker = broker
        self.on_bar = on_bar
        self.symbols = tuple(symbols)
        self.grace = timedelta(seconds=grace_seconds)
        self._agg = {s: MinuteAggregator(s) for s in self.symbols}
        self._ready: deque[MinuteBar] = deque()
        self._last: dict[str, datetime] = {}
        self._subs: list[RealTimeBarList] = []
        self._subscribed_at = -1

    def _subscribe(self) -> None:
        if self._subscribed_at == self.broker.connects or not self.broker.connected:
            return
        ib = self.broker.ib
        self._subs = []
        for symbol in self.symbols:
            bars = ib.reqRealTimeBars(stock(symbol), 5, "TRADES", useRTH=True)
            bars.updateEvent += self._on_update
            self._subs.append(bars)
        self._subscribed_at = self.broker.connects
        log.info("subscribed 5-second bars for %s", ", ".join(self.symbols))

    def _on_update(self, bars: RealTimeBarList, has_new_bar: bool) -> None:
        if not has_new_bar or not bars:
            return
        b = bars[-1]
        symbol = bars.contract.symbol
        if self.on_bar is not None:
            self.on_bar(b.time + timedelta(seconds=SUB_BAR_SECONDS))
        wap = float(b.wap) if b.wap is not None and b.wap > 0.0 else None
        for minute in self._agg[symbol].add(b.time, b.open_, b.high, b.low, b.close, b.volume, wap):
            self._ready.append(minute)
            self._last[symbol] = minute.start

    def poll(self, timeout: float = 0.0) -> list[MinuteBar]:
        """Minutes that closed since the last call (runs the network up to ``timeout``)."""
        self._subscribe()
        if not self._ready:
            self.broker.pump(timeout)
            self._subscribe()
        now = self.broker.clock.now()
        for symbol, agg in self._agg.items():
            for minute in agg.flush_before(now - self.grace):
                self._ready.append(minute)
                self._last[symbol] = minute.start
        out = list(self._ready)
        self._ready.clear()
        return out

    def last_bar_start(self, symbol: str) -> datetime | None:
        """Start of the last delivered bar of ``symbol``."""
        return self._last.get(symbol)
