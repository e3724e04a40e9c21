"""IBKR historical 1-minute bars as a :class:`~stairways.data.sources.BarSource`.

``stairways data import --ibkr --symbol NVDA --from ... --to ...`` uses this source through the
same importer as Polygon (:func:`stairways.data.importing.import_from_source`): it returns raw
rows, and the importer validates them (schema, OHLC sanity, duplicates, gaps, session hours)
and writes them to the bar store window by window.

One request per session: ``reqHistoricalData`` with the session's close as the end,
``1 D`` duration, ``1 min`` bars of ``TRADES`` in regular hours only, and epoch-second
timestamps. IB's pacing rules for historical data (at most 60 requests in any 10 minutes, no
identical request within 15 seconds, at most 6 requests for one contract within 2 seconds)
are kept client-side: a minimum pause between requests and a sliding 10-minute window, both
configurable below IB's limits. A pacing violation reported by IB (error 162 with "pacing")
is a :class:`~stairways.errors.TemporaryError`; a missing permission or contract is an
:class:`~stairways.errors.ExternalServiceError` naming the fix.

The ``history`` client id of the broker configuration is used, so an import can run next to a
trading session.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import date
from typing import Self

import pandas as pd
from ib_async import IB, BarData, BarDataList, RequestError

from stairways.brokers.ibkr.adapter import stock
from stairways.brokers.ibkr.connection import Endpoint, open_ib
from stairways.brokers.settings import BrokerConfig
from stairways.clock import Clock, ExchangeClock
from stairways.data import calendar as cal
from stairways.data.validation import ROW_COLUMN, RawBars
from stairways.errors import ExternalServiceError, TemporaryError

log = logging.getLogger(__name__)

PACING_WINDOW_SECONDS = 600.0
# IB error codes: 162 historical data service error (pacing, no data), 200 no security
# definition, 354/10167 no market data subscription, 321 request validation.
_PERMANENT = frozenset({200, 321, 354, 10167})


def session_minute_bars(ib: IB, symbol: str, end: pd.Timestamp) -> BarDataList:
    """One request for IB's 1-minute TRADES bars of ``symbol``'s regular trading hours for
    the day ending at ``end`` (tz-aware); IB's ``RequestError`` is the caller's to word."""
    return ib.reqHistoricalData(
        stock(symbol),
        endDateTime=ib_end_text(end),
        durationStr="1 D",
        barSizeSetting="1 min",
        whatToShow="TRADES",
        useRTH=True,
        formatDate=2,
    )


def ib_end_text(end: pd.Timestamp) -> str:
    """``end`` (tz-aware) as IB's ``endDateTime`` text, in UTC."""
    return end.tz_convert("UTC").strftime("%Y%m%d %H:%M:%S UTC")


def bar_start(bar: BarData) -> pd.Timestamp:
    """A historical bar's start, tz-aware (IB's naive stamps with ``formatDate=2`` are UTC)."""
    start = pd.Timestamp(bar.date)
    if start.tzinfo is None:
        start = start.tz_localize("UTC")
    return start


class IbkrHistory:
    """1-minute regular-hours TRADES bars from IB, one request per session, paced.

    :param cfg: broker configuration (host, port, ``history`` client id, pacing)
    :param host: host override
    :param port: port override
    :param clock: monotonic time for pacing (the exchange clock by default)
    :param sleep: how to wait between requests (tests record the waits)
    :param ib_factory: builds the ib_async client
    """

    name = "ibkr"

    def __init__(
        self,
        cfg: BrokerConfig,
        *,
        host: str | None = None,
        port: int | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        ib_factory: Callable[[], IB] = IB,
    ) -> None:
        self.cfg = cfg
        self.endpoint = Endpoint(
            host or cfg.ibkr.host,
            port if port is not None else cfg.ibkr_port(),
            cfg.ibkr.client_ids.history,
        )
        self.clock: Clock = clock or ExchangeClock()
        self._sleep = sleep or IB.sleep
        self._factory = ib_factory
        self._ib: IB | None = None
        self._sent: deque[float] = deque()
        self.requests = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect."""
        if self._ib is not None:
            self._ib.disconnect()
            self._ib = None

    def _client(self) -> IB:
        if self._ib is None:
            self._ib, _ = open_ib(self.cfg, self.endpoint, ib_factory=self._factory)
            self._ib.RaiseRequestErrors = True
        return self._ib

    def describe(self) -> dict[str, object]:
        """Provenance recorded with the stored bars."""
        return {
            "source": "ibkr",
            "host": self.endpoint.host,
            "port": self.endpoint.port,
            "what_to_show": "TRADES",
            "bar_size": "1 min",
            "regular_hours_only": True,
        }

    def _pace(self) -> None:
        c = self.cfg.ibkr
        now = self.clock.monotonic()
        while self._sent and now - self._sent[0] >= PACING_WINDOW_SECONDS:
            self._sent.popleft()
        wait = 0.0
        if self._sent:
            wait = max(wait, self._sent[-1] + c.history_min_interval_seconds - now)
        if len(self._sent) >= c.history_requests_per_10_minutes:
            wait = max(wait, self._sent[0] + PACING_WINDOW_SECONDS - now)
        if wait > 0.0:
            log.info("pacing historical requests: waiting %.1f s", wait)
            self._sleep(wait)
        self._sent.append(self.clock.monotonic())

    def fetch(self, symbol: str, start: date, end: date) -> RawBars:
        """Raw 1-minute bars of ``symbol`` for the sessions ``start``..``end``."""
        ib = self._client()
        days = cal.sessions(start, end)
        rows: list[dict[str, object]] = []
        for close in days.closes:
            self._pace()
            self.requests += 1
            end_text = ib_end_text(close)
            try:
                bars = session_minute_bars(ib, symbol, close)
            except RequestError as err:
                where = f"{self.endpoint.host}:{self.endpoint.port}"
                what = f"IB historical data for {symbol} ending {end_text} via {where}"
                if err.code == 162 and "pacing" in err.message.lower():
                    raise TemporaryError(
                        f"{what}: pacing violation (IB error 162); wait ten minutes and re-run, "
                        "the import resumes where it stopped"
                    ) from None
                if err.code in _PERMANENT:
                    raise ExternalServiceError(
                        f"{what}: IB error {err.code}: {err.message}. Check the symbol and the "
                        "account's market data subscriptions"
                    ) from None
                raise TemporaryError(f"{what}: IB error {err.code}: {err.message}") from None
            for b in bars:
                stamp = bar_start(b)
                rows.append(
                    {
                        "symbol": symbol,
                        "ts": int(stamp.value // 1_000_000_000),
                        "open": b.open,
                        "high": b.high,
                        "low": b.low,
                        "close": b.close,
                        "volume": b.volume,
                        "vwap": b.average,
                        "trade_count": b.barCount,
                    }
                )
        frame = pd.DataFrame(
            rows,
            columns=[
                "symbol",
                "ts",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "vwap",
                "trade_count",
            ],
        )
        frame[ROW_COLUMN] = range(1, len(frame) + 1)
        return RawBars(
            origin=f"IBKR historical {symbol} {start}..{end}",
            frame=frame,
            row_label="bar",
            epoch_unit="s",
        )
