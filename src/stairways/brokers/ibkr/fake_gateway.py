"""A fake IB Gateway on loopback that speaks the TWS socket protocol to the real ib_async client.

It serves the tests and the stress suite's gateway scenarios (``stairways stress run``), which
is why it ships in the package; it never trades and listens on 127.0.0.1 only.

It is small but honest about the wire: the ``API\\0`` greeting and version range, the
length-prefixed NUL-separated messages, the server version answer, startApi (71) followed by
nextValidId (9) and managedAccounts (15), and the request/answer pairs ib_async waits for at
connect (positions 61 -> 61*, 62; open orders 5 -> 5*/3*, 53; completed orders 99 -> 101*, 102;
account updates 6 -> 6*, 54; account updates multi 76 -> 73*, 74; executions 7 -> 11*, 59*, 55).
Field layouts follow ib_async's decoder for the configured server version (openOrder and
completedOrder change with it), so at least two versions are exercised by the tests.

State (orders, executions, positions) lives in the gateway, not in a connection, so a client
that reconnects or restarts finds it like at a real gateway. Every received message is recorded
with its arrival time (for the message-budget test) and every sent message is recorded too
(for the recorded fixtures).

Everything runs on a private event loop in a background thread; the test talks to it through
thread-safe methods. It listens on 127.0.0.1 only.

**Replay** (:meth:`FakeIBGateway.start_replay`): the gateway serves a stored day of 1-minute bars
as IB's 5-second real-time bars, minute by minute, "as fast as the client can follow": after a
minute's twelve bars it waits until the trading client has been quiet for ``quiet_seconds`` (its
decision and orders are in), then goes on. Each 5-second bar carries the minute's stored VWAP as
its ``wap``, so the minute rebuilt by the client has the stored VWAP. Market orders under the
:class:`FillAtMarket` plan fill at the next 5-second bar's open (the next trade after the order
arrived), stamped with that bar's time. While no client subscribes to the bars (a client killed
or disconnected) the replay goes on for at most ``away_minutes`` minutes, then holds until one
subscribes again; completed minutes are served as 1-minute historical bars, as IB does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
CON_IDS = {"NVDA": 4815747, "MSFT": 272093, "AAPL": 265598}

log = logging.getLogger(__name__)


def _num(x: float) -> str:
    """A float the way TWS writes it (integers without a fraction)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def pack(fields: Sequence[Any]) -> bytes:
    """One length-prefixed message of NUL-terminated fields."""
    body = b"".join(str(f).encode() + b"\0" for f in fields)
    return struct.pack(">I", len(body)) + body


@dataclass
class Accept:
    """Accept the order; fill it in the given (shares, price) chunks (none: stays working)."""

    fills: tuple[tuple[float, float], ...] | None = None
    commission_per_share: float = 0.005
    min_commission: float = 1.0
    pre_submitted: bool = True


@dataclass
class RejectOrder:
    """Reject the order with an IB error code."""

    code: int = 201
    text: str = "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. SIMULATED"


@dataclass
class FillAtMarket:
    """Accept the order; during a replay fill a market order completely at the next 5-second
    bar's open (without a replay it stays working until :meth:`FakeIBGateway.fill_working`)."""

    commission_per_share: float = 0.005
    min_commission: float = 1.0


@dataclass
class Swallow:
    """Lose the order: the gateway never records it (as if it died in transit)."""


PARTS_PER_MINUTE = 12


@dataclass(frozen=True)
class ReplayBar:
    """One stored 1-minute bar to replay (``start`` in epoch seconds)."""

    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float


def five_second_bars(
    bar: ReplayBar,
) -> list[tuple[float, float, float, float, float, float, float]]:
    """Twelve 5-second bars (epoch, open, high, low, close, volume, wap) making up ``bar``.

    The price walks open -> high -> low -> close (or open -> low -> high -> close when the close
    is nearer the high) in straight lines, so the minute's open, high, low and close are the
    bar's; the volume is split in whole shares when it is whole (the remainder in the last
    part); every part's ``wap`` is the bar's VWAP, so their volume-weighted mean is the VWAP.
    """
    n = PARTS_PER_MINUTE
    first, second = (
        (bar.high, bar.low)
        if abs(bar.close - bar.low) <= abs(bar.close - bar.high)
        else (bar.low, bar.high)
    )
    knots = [(0.0, bar.open), (4.0, first), (8.0, second), (12.0, bar.close)]

    def price(x: float) -> float:
        for (x0, p0), (x1, p1) in itertools.pairwise(knots):
            if x <= x1:
                return p0 + (p1 - p0) * (x - x0) / (x1 - x0)
        return bar.close

    path = [price(float(i)) for i in range(n + 1)]
    path[0], path[4], path[8], path[12] = bar.open, first, second, bar.close
    if float(bar.volume).is_integer():
        whole = int(bar.volume)
        vols = [float(whole // n)] * (n - 1) + [float(whole - (whole // n) * (n - 1))]
    else:
        vols = [bar.volume / n] * (n - 1)
        vols.append(bar.volume - sum(vols))
    out = []
    for i in range(n):
        o, c = path[i], path[i + 1]
        out.append((float(bar.start + 5 * i), o, max(o, c), min(o, c), c, vols[i], float(bar.vwap)))
    return out


@dataclass
class FakeOrder:
    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    action: str
    quantity: float
    order_type: str
    lmt_price: str
    tif: str
    account: str
    order_ref: str
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_price: float = 0.0
    last_fill: float = 0.0

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def done(self) -> bool:
        return self.status in ("Filled", "Cancelled", "ApiCancelled", "Inactive")


@dataclass
class FakeExecution:
    exec_id: str
    order: FakeOrder
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    time: datetime
    commission: float


@dataclass
class _Conn:
    writer: asyncio.StreamWriter
    client_id: int = -1
    positions_subscribed: bool = False
    realtime: dict[int, str] = field(default_factory=dict)  # reqId -> symbol


class FakeIBGateway:
    """The fake gateway. Use as a context manager; ``port`` is where it listens.

    :param server_version: TWS API server version to speak (157..178)
    :param accounts: managed accounts (ids starting with D are paper)
    :param prices: default fill price per symbol
    """

    def __init__(
        self,
        server_version: int = 176,
        accounts: Sequence[str] = ("DU1234567",),
        prices: dict[str, float] | None = None,
        net_liquidation: float = 1_000_000.0,
    ) -> None:
        self.server_version = server_version
        self.accounts = list(accounts)
        self.prices = dict(prices or {"NVDA": 120.0, "MSFT": 410.0})
        self.net_liquidation = net_liquidation
        self.orders: dict[int, FakeOrder] = {}
        self.executions: list[FakeExecution] = []
        self.positions: dict[str, tuple[float, float]] = {}  # symbol -> (qty, avg cost)
        self.plans: list[
            tuple[str, Accept | RejectOrder | Swallow | FillAtMarket]
        ] = []  # (orderRef substring, plan)
        self.default_plan: Accept | FillAtMarket = Accept()
        # symbol -> rows (epoch, open, high, low, close, volume[, wap])
        self.history: dict[str, list[tuple[float, ...]]] = {}
        self.received: list[tuple[float, int, list[str]]] = []  # (time, client id, fields)
        self.sent: list[list[str]] = []
        self.history_requests: list[list[str]] = []
        self.exchange_time = datetime(2024, 3, 4, 10, 0, tzinfo=NY)
        self._conns: list[_Conn] = []
        self._next_perm = 900_000_001
        self._next_exec = 1
        self._min_order_id = 1
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0
        self.last_received = 0.0  # monotonic time of the last message from any client
        self.replayed_minutes = 0
        self.replay_done = False
        self.replay_error = ""
        self.held_seconds = 0.0
        self._waiting: list[FakeOrder] = []  # market orders waiting for the next trade
        self._replay_task: concurrent.futures.Future[None] | None = None
        self._stopping = False
        self._refuse_until = -1  # replayed-minute count until which connections are refused
        self._away_extra = 0

    # lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> FakeIBGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        server: asyncio.Server = self.call(self._start_server(0))
        self._server = server
        self.port = server.sockets[0].getsockname()[1]

    async def _start_server(self, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", port)

    def stop(self) -> None:
        self._stopping = True
        if self._replay_task is not None:
            self._replay_task.cancel()
        if self._server is not None:
            self.call(self._close_all())
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _close_all(self) -> None:
        assert self._server is not None
        self._server.close()
        for c in list(self._conns):
            c.writer.transport.abort()
        self._conns.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the gateway's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def run(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run a plain function on the gateway's loop (state is only touched there)."""

        async def wrapper() -> Any:
            return fn()

        return self.call(wrapper(), timeout)

    # test controls -----------------------------------------------------------------------

    def plan(self, match: str, plan: Accept | RejectOrder | Swallow | FillAtMarket) -> None:
        """How orders whose orderRef contains ``match`` are handled (``*`` matches all)."""
        self.run(lambda: self.plans.append((match, plan)))

    def drop_connections(self) -> None:
        """Cut every client socket, like a gateway restart or a network failure."""

        def cut() -> None:
            for c in list(self._conns):
                c.writer.transport.abort()
            self._conns.clear()

        self.run(cut)

    def outage(self, minutes: int) -> None:
        """Cut every client and refuse new connections while the replay serves ``minutes``
        more minutes (a gateway or network outage; the replay goes on meanwhile)."""

        def cut() -> None:
            self._refuse_until = self.replayed_minutes + minutes
            self._away_extra += minutes
            for c in list(self._conns):
                c.writer.transport.abort()
            self._conns.clear()

        self.run(cut)

    @property
    def refusing(self) -> bool:
        """Whether new connections are refused (an outage is on)."""
        return self.replayed_minutes < self._refuse_until

    def broadcast_error(self, code: int, text: str) -> None:
        """Send a system message (for example 1100 connectivity lost, 1102 restored)."""

        def send() -> None:
            for c in list(self._conns):
                self._error(c, -1, code, text)

        self.run(send)

    def fill_working(self, order_ref: str, shares: float, price: float) -> None:
        """Fill part of a working order now (the client may be disconnected)."""
        self.run(lambda: self._fill(self._by_ref(order_ref), shares, price, Accept()))

    def set_position(self, symbol: str, qty: float, avg: float) -> None:
        """Change a position behind the client's back (a manual trade elsewhere)."""
        self.run(lambda: self.positions.__setitem__(symbol, (qty, avg)))

    def push_realtime_bars(
        self, symbol: str, bars: Sequence[tuple[int, float, float, float, float, float]]
    ) -> None:
        """Send 5-second bars (epoch, open, high, low, close, volume) to every subscriber."""

        def push() -> None:
            for c in self._conns:
                for req_id, sym in c.realtime.items():
                    if sym != symbol:
                        continue
                    for t, o, h, lo, cl, v in bars:
                        wap = round((h + lo + cl) / 3, 4)
                        self._realtime_bar(c, req_id, (t, o, h, lo, cl, v, wap))

        self.run(push)

    def _realtime_bar(self, conn: _Conn, req_id: int, bar: Sequence[float]) -> None:
        t, o, h, lo, cl, v, wap = bar
        self._send(conn, [50, 3, req_id, int(t), *(_num(x) for x in (o, h, lo, cl, v, wap)), 7])

    # replay ------------------------------------------------------------------------------

    def start_replay(
        self,
        minutes: Sequence[Mapping[str, ReplayBar]],
        *,
        quiet_seconds: float = 0.03,
        away_minutes: int = 2,
        max_hold_seconds: float = 300.0,
        ready: Callable[[int], bool] | None = None,
        ready_timeout: float = 5.0,
    ) -> None:
        """Serve ``minutes`` (one :class:`ReplayBar` per symbol each) as 5-second bars.

        :param quiet_seconds: after a minute, wait until no client message came for this long
        :param ready: called with a served minute's start (epoch seconds) on the gateway's
            thread; the next minute waits until it returns True (the client decided on it),
            at most ``ready_timeout`` seconds (a dead or paused client does not hold the day)
        :param away_minutes: minutes served while nobody subscribes, before the replay holds
        :param max_hold_seconds: a hold longer than this ends the replay with an error
        """
        self.default_plan = FillAtMarket()
        self.replay_done = False
        self._replay_task = asyncio.run_coroutine_threadsafe(
            self._replay(
                list(minutes),
                quiet_seconds,
                away_minutes,
                max_hold_seconds,
                ready,
                ready_timeout,
            ),
            self._loop,
        )

    def wait_replay(self, timeout: float) -> bool:
        """Wait until the replay has served every minute; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.replay_done:
                return True
            time.sleep(0.05)
        return self.replay_done

    def subscribed(self, symbols: Sequence[str]) -> bool:
        """Whether some client receives real-time bars of every one of ``symbols``."""
        have = {sym for c in self._conns for sym in c.realtime.values()}
        return set(symbols) <= have

    async def _replay(
        self,
        minutes: list[Mapping[str, ReplayBar]],
        quiet: float,
        away: int,
        max_hold: float,
        ready: Callable[[int], bool] | None,
        ready_timeout: float,
    ) -> None:
        try:
            for minute in minutes:
                symbols = sorted(minute)
                held = time.monotonic()
                while not self.subscribed(symbols):
                    if self._away_extra > 0:
                        self._away_extra -= 1
                        break
                    if away > 0:
                        away -= 1
                        break
                    if self._stopping:
                        return
                    if time.monotonic() - held > max_hold:
                        self.replay_error = f"no subscriber for {max_hold:g} s; replay ended"
                        return
                    await asyncio.sleep(0.01)
                self.held_seconds += time.monotonic() - held
                parts = {s: five_second_bars(b) for s, b in minute.items()}
                for i in range(PARTS_PER_MINUTE):
                    start = next(iter(parts.values()))[i][0]
                    self.exchange_time = datetime.fromtimestamp(start, NY)
                    self._fill_waiting({s: p[i][1] for s, p in parts.items()})
                    for c in list(self._conns):
                        for req_id, sym in c.realtime.items():
                            if sym in parts:
                                self._realtime_bar(c, req_id, parts[sym][i])
                for s, b in minute.items():
                    self.history.setdefault(s, []).append(
                        (b.start, b.open, b.high, b.low, b.close, b.volume, b.vwap)
                    )
                    self.prices[s] = b.close
                self.replayed_minutes += 1
                pushed = time.monotonic()
                start = next(iter(minute.values())).start
                # the client decides on the closed minute and sends its orders: wait until it
                # is ready (when asked to) and then quiet. Quiet counts from the moment it was
                # ready too: its orders are in this socket's buffer by then but not yet read
                # (this coroutine has not yielded since), and a minute served before they are
                # read would fill them at a later bar.
                decided = ready is None
                decided_at = pushed
                while not self._stopping:
                    await asyncio.sleep(quiet / 3)
                    now = time.monotonic()
                    if not decided and not self.subscribed(symbols):
                        decided, decided_at = True, now  # nobody listens: no waiting
                    if not decided:
                        decided = ready is not None and ready(start)
                        if not decided and now - pushed < ready_timeout:
                            continue
                        decided, decided_at = True, now
                    if now - max(decided_at, self.last_received) >= quiet:
                        break
            end = minutes[-1] if minutes else {}
            if end:
                self.exchange_time = datetime.fromtimestamp(next(iter(end.values())).start + 60, NY)
            self.replay_done = True
            self._fill_waiting(None)
        except Exception as err:  # a fake's bug must show in the test, not vanish in a thread
            self.replay_error = f"{type(err).__name__}: {err}"
            raise

    def _fill_waiting(self, opens: Mapping[str, float] | None) -> None:
        """Fill waiting market orders at ``opens`` (None: at the last prices)."""
        waiting, self._waiting = self._waiting, []
        for order in waiting:
            if order.done:
                continue
            price = (opens or {}).get(order.symbol, self.prices.get(order.symbol, 0.0))
            self._fill(order, order.remaining, price, FillAtMarket())

    def messages_from(self, client_id: int, msg_id: int | None = None) -> list[list[str]]:
        """Fields of the messages a client sent (optionally of one message id)."""
        return self.run(
            lambda: [
                f
                for _, cid, f in self.received
                if cid == client_id and (msg_id is None or int(f[0]) == msg_id)
            ]
        )

    def receive_times(self, msg_id: int) -> list[float]:
        """Arrival times (monotonic seconds) of every message with ``msg_id``."""
        return self.run(lambda: [t for t, _, f in self.received if int(f[0]) == msg_id])

    def _by_ref(self, ref: str) -> FakeOrder:
        for o in self.orders.values():
            if o.order_ref == ref:
                return o
        raise KeyError(ref)

    # wire --------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        conn = _Conn(writer)
        self._conns.append(conn)
        try:
            greeting = await reader.readexactly(4)
            if greeting != b"API\0":
                return
            size = struct.unpack(">I", await reader.readexactly(4))[0]
            versions = (await reader.readexactly(size)).decode()
            lo, hi = (int(v) for v in versions.split(" ")[0].lstrip("v").split(".."))
            if not lo <= self.server_version <= hi:
                return
            now = datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")
            self._send(conn, [self.server_version, now])
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">I", head)[0])
                fields = body.decode().split("\0")[:-1]
                arrived = time.monotonic()
                self.last_received = arrived
                self._handle(conn, fields)
                # recorded after handling so that startApi carries the client id it set
                self.received.append((arrived, conn.client_id, fields))
        except (asyncio.IncompleteReadError, ConnectionError) as err:
            # The client closed or dropped its connection: the end of this conversation.
            log.debug(
                "fake gateway: client %s disconnected (%s)", conn.client_id, type(err).__name__
            )
        finally:
            if conn in self._conns:
                self._conns.remove(conn)
            writer.transport.abort()

    def _send(self, conn: _Conn, fields: Sequence[Any]) -> None:
        out = [str(f) for f in fields]
        self.sent.append(out)
        if not conn.writer.is_closing():
            conn.writer.write(pack(out))

    def _to_client(self, client_id: int, fields: Sequence[Any]) -> None:
        for c in self._conns:
            if c.client_id == client_id:
                self._send(c, fields)

    def _error(self, conn: _Conn, req_id: int, code: int, text: str) -> None:
        fields: list[Any] = [4, 2, req_id, code, text]
        if self.server_version >= 166:
            fields.append("")
        self._send(conn, fields)

    # requests ----------------------------------------------------------------------------

    def _handle(self, conn: _Conn, f: list[str]) -> None:
        msg = int(f[0])
        if msg == 71:  # startApi
            client_id = int(f[2])
            if any(c.client_id == client_id for c in self._conns if c is not conn):
                self._error(
                    conn,
                    -1,
                    326,
                    "Unable to connect as the client id is already in use. "
                    "Retry with a unique client id.",
                )
                conn.writer.transport.close()
                return
            conn.client_id = client_id
            self._send(conn, [9, 1, self._next_valid_id()])
            self._send(conn, [15, 1, ",".join(self.accounts)])
        elif msg == 61:  # reqPositions
            conn.positions_subscribed = True
            for symbol, (qty, avg) in self.positions.items():
                self._send(conn, self._position_fields(symbol, qty, avg))
            self._send(conn, [62, 1])
        elif msg == 64:  # cancelPositions
            conn.positions_subscribed = False
        elif msg in (5, 16):  # reqOpenOrders / reqAllOpenOrders
            for o in self.orders.values():
                if not o.done and (msg == 16 or o.client_id == conn.client_id):
                    self._send(conn, self._open_order_fields(o))
                    self._send(conn, self._status_fields(o))
            self._send(conn, [53, 1])
        elif msg == 99:  # reqCompletedOrders
            for o in self.orders.values():
                if o.done:
                    self._send(conn, self._completed_order_fields(o))
            self._send(conn, [102])
        elif msg == 6:  # reqAccountUpdates
            acct = f[3] or self.accounts[0]
            if f[2] == "1":
                for key, value in self._account_values():
                    self._send(conn, [6, 2, key, value, "USD", acct])
                self._send(conn, [54, 1, acct])
        elif msg == 76:  # reqAccountUpdatesMulti
            multi_id, acct = f[2], f[3]
            for key, value in self._account_values():
                self._send(conn, [73, 1, multi_id, acct, "", key, value, "USD"])
            self._send(conn, [74, 1, multi_id])
        elif msg == 7:  # reqExecutions
            req_id = int(f[2])
            for ex in self.executions:
                if ex.order.client_id == int(f[3] or 0) or not f[3] or f[3] == "0":
                    self._send(conn, self._exec_fields(req_id, ex))
                    self._send(conn, self._commission_fields(ex))
            self._send(conn, [55, 1, req_id])
        elif msg == 3:  # placeOrder
            self._place(conn, f)
        elif msg == 4:  # cancelOrder
            self._cancel(conn, int(f[2]))
        elif msg == 58:  # reqGlobalCancel
            for o in list(self.orders.values()):
                if not o.done:
                    self._cancel(conn, o.order_id, any_client=True)
        elif msg == 8:  # reqIds
            self._send(conn, [9, 1, self._next_valid_id()])
        elif msg == 49:  # reqCurrentTime
            self._send(conn, [49, 1, int(time.time())])
        elif msg == 20:  # reqHistoricalData
            self._historical(conn, f)
        elif msg == 50:  # reqRealTimeBars
            conn.realtime[int(f[2])] = f[4]
        elif msg == 51:  # cancelRealTimeBars
            conn.realtime.pop(int(f[2]), None)

    def _next_valid_id(self) -> int:
        used = max(self.orders, default=0)
        return max(used + 1, self._min_order_id)

    def _account_values(self) -> list[tuple[str, str]]:
        cash = self.net_liquidation - sum(q * a for q, a in self.positions.values())
        return [
            ("NetLiquidation", _num(self.net_liquidation)),
            ("TotalCashValue", _num(round(cash, 2))),
            ("AccountType", "INDIVIDUAL"),
        ]

    def _plan_for(self, ref: str) -> Accept | RejectOrder | Swallow | FillAtMarket:
        for match, plan in self.plans:
            if match == "*" or match in ref:
                return plan
        return self.default_plan

    def _place(self, conn: _Conn, f: list[str]) -> None:
        order_id = int(f[1])
        contract = f[2:14]
        symbol, exchange, currency = contract[1], contract[7], contract[9]
        order = FakeOrder(
            order_id=order_id,
            client_id=conn.client_id,
            perm_id=self._next_perm,
            symbol=symbol,
            action=f[16],
            quantity=float(f[17]),
            order_type=f[18],
            lmt_price=f[19],
            tif=f[21],
            account=f[23] or self.accounts[0],
            order_ref=f[26],
        )
        self._next_perm += 1
        if order_id in self.orders:
            self._error(conn, order_id, 103, "Duplicate order id")
            return
        if exchange != "SMART" or currency != "USD" or contract[2] != "STK":
            self._error(conn, order_id, 200, "No security definition has been found")
            return
        plan = self._plan_for(order.order_ref)
        if isinstance(plan, Swallow):
            return
        self.orders[order_id] = order
        if isinstance(plan, RejectOrder):
            order.status = "Cancelled"
            self._error(conn, order_id, plan.code, plan.text)
            self._to_client(order.client_id, self._status_fields(order))
            return
        if isinstance(plan, FillAtMarket) or plan.pre_submitted:
            order.status = "PreSubmitted"
            self._to_client(order.client_id, self._open_order_fields(order))
            self._to_client(order.client_id, self._status_fields(order))
        order.status = "Submitted"
        self._to_client(order.client_id, self._open_order_fields(order))
        self._to_client(order.client_id, self._status_fields(order))
        if isinstance(plan, FillAtMarket):
            if order.order_type == "MKT":
                self._waiting.append(order)
                if self.replay_done:
                    self._fill_waiting(None)
            return
        fills = plan.fills
        if fills is None:
            return
        for shares, price in fills:
            self._fill(order, shares, price, plan)

    def _fill(
        self, order: FakeOrder, shares: float, price: float, plan: Accept | FillAtMarket
    ) -> None:
        order.avg_price = (order.avg_price * order.filled + price * shares) / (
            order.filled + shares
        )
        order.filled += shares
        order.last_fill = price
        if order.remaining <= 0:
            order.status = "Filled"
        commission = round(max(shares * plan.commission_per_share, plan.min_commission), 2)
        ex = FakeExecution(
            exec_id=f"0000e0d5.6{self._next_exec:07d}.01.01",
            order=order,
            shares=shares,
            price=price,
            cum_qty=order.filled,
            avg_price=order.avg_price,
            time=self.exchange_time,
            commission=commission,
        )
        self._next_exec += 1
        self.executions.append(ex)
        signed = shares if order.action == "BUY" else -shares
        qty, avg = self.positions.get(order.symbol, (0.0, 0.0))
        new = qty + signed
        if new == 0:
            avg = 0.0
        elif qty == 0 or (qty > 0) == (signed > 0):
            avg = (qty * avg + signed * price) / new
        self.positions[order.symbol] = (new, avg)
        self._to_client(order.client_id, self._exec_fields(-1, ex))
        self._to_client(order.client_id, self._status_fields(order))
        self._to_client(order.client_id, self._commission_fields(ex))
        if order.status == "Filled":
            self._to_client(order.client_id, self._open_order_fields(order))
        for c in self._conns:
            if c.positions_subscribed:
                self._send(c, self._position_fields(order.symbol, new, avg))

    def _cancel(self, conn: _Conn, order_id: int, any_client: bool = False) -> None:
        order = self.orders.get(order_id)
        if order is None or order.done:
            self._error(
                conn,
                order_id,
                10147,
                f"OrderId {order_id} that needs to be cancelled is not found.",
            )
            return
        if not any_client and order.client_id != conn.client_id:
            self._error(
                conn,
                order_id,
                10147,
                f"OrderId {order_id} that needs to be cancelled is not found.",
            )
            return
        order.status = "Cancelled"
        self._to_client(order.client_id, self._status_fields(order))
        for c in self._conns:
            if c.client_id == order.client_id:
                self._error(c, order_id, 202, "Order Canceled - reason:")

    def _historical(self, conn: _Conn, f: list[str]) -> None:
        self.history_requests.append(f)
        req_id = int(f[1])
        symbol = f[3]
        end_text, bar_size, duration, use_rth, what, fmt = f[15], f[16], f[17], f[18], f[19], f[20]
        if bar_size != "1 min" or what != "TRADES" or use_rth != "1" or duration != "1 D":
            self._error(conn, req_id, 321, "Error validating request: unsupported by the fake")
            return
        end = datetime.strptime(end_text, "%Y%m%d %H:%M:%S UTC").replace(tzinfo=UTC)
        day = end.astimezone(NY).date()
        rows = [
            r
            for r in self.history.get(symbol, [])
            if datetime.fromtimestamp(r[0], NY).date() == day and r[0] + 60 <= end.timestamp()
        ]
        out: list[Any] = [17, req_id, "", "", len(rows)]
        for row in rows:
            t, o, h, lo, c, v = row[:6]
            wap = row[6] if len(row) > 6 else round((h + lo + c) / 3, 4)
            stamp = (
                str(int(t))
                if fmt == "2"
                else datetime.fromtimestamp(t, NY).strftime("%Y%m%d %H:%M:%S America/New_York")
            )
            out += [
                stamp,
                _num(o),
                _num(h),
                _num(lo),
                _num(c),
                _num(v),
                _num(wap),
                10,
            ]
        self._send(conn, out)

    # message layouts (mirroring ib_async's decoder) -----------------------------------------

    def _contract(self, symbol: str) -> list[Any]:
        # conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange,
        # currency, localSymbol, tradingClass
        return [
            CON_IDS.get(symbol, 1),
            symbol,
            "STK",
            "",
            "0",
            "",
            "",
            "SMART",
            "USD",
            symbol,
            "NMS",
        ]

    def _position_fields(self, symbol: str, qty: float, avg: float) -> list[Any]:
        c = self._contract(symbol)
        return [61, 3, self.accounts[0], *c[:7], "NASDAQ", *c[8:], _num(qty), _num(avg)]

    def _status_fields(self, o: FakeOrder) -> list[Any]:
        return [
            3, o.order_id, o.status, _num(o.filled), _num(o.remaining), _num(o.avg_price),
            o.perm_id, 0, _num(o.last_fill), o.client_id, "", "",
        ]  # fmt: skip

    def _commission_fields(self, ex: FakeExecution) -> list[Any]:
        return [59, 1, ex.exec_id, _num(ex.commission), "USD", "", "", ""]

    def _exec_fields(self, req_id: int, ex: FakeExecution) -> list[Any]:
        o = ex.order
        c = self._contract(o.symbol)
        fields: list[Any] = [
            11, req_id, o.order_id, *c, ex.exec_id,
            ex.time.strftime("%Y%m%d %H:%M:%S") + " America/New_York",
            o.account, "ISLAND", "BOT" if o.action == "BUY" else "SLD", _num(ex.shares),
            _num(ex.price), o.perm_id, o.client_id, 0, _num(ex.cum_qty), _num(ex.avg_price),
            o.order_ref, "", "", "", 1,
        ]  # fmt: skip
        if self.server_version >= 178:
            fields.append(0)
        return fields

    def _open_order_fields(self, o: FakeOrder) -> list[Any]:
        sv = self.server_version
        f: list[Any] = [5, o.order_id, *self._contract(o.symbol)]
        f += [o.action, _num(o.quantity), o.order_type, o.lmt_price or "0", "0", o.tif, "",
              o.account, "O", 0, o.order_ref, o.client_id, o.perm_id, 0, 0, "0", "", "",
              "", "", ""]  # fmt: skip
        if sv < 177:
            f.append("")  # faProfile
        # modelCode .. deltaNeutralAuxPrice (29 fields)
        f += ["", "", "0", "", "", 0, "", -1, 0, "", "", "", "", "", 0, 0, 0, 0, "", 3, 0, 0,
              "", 0, 0, "", 0, "", ""]  # fmt: skip
        # continuousUpdate, referencePriceType, trailStopPrice, trailingPercent, basisPoints,
        # basisPointsType, comboLegsDescrip, legs, order legs, smart combo params
        f += [0, "", "", "", "", "", "", 0, 0, 0]
        f += ["", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        f += [""]  # hedgeType
        f += [0, "", "", 0, 0]  # optOutSmartRouting, clearingAccount/Intent, notHeld, dnc
        f += [""]  # algoStrategy
        f += [0, 0, o.status, "", "", "", "", "", "", "", "", "", "", "", "", "", "", 0, 0]
        f += [0]  # conditions
        f += ["", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0]
        if sv >= 159:
            f.append("")  # duration
        if sv >= 160:
            f.append("")  # postToAts
        if sv >= 162:
            f.append(0)  # autoCancelParent
        if sv >= 170:
            f += ["", "", "", "", ""]
        return f

    def _completed_order_fields(self, o: FakeOrder) -> list[Any]:
        sv = self.server_version
        c = self._contract(o.symbol)
        f: list[Any] = [101, *c]
        f += [o.action, _num(o.quantity), o.order_type, o.lmt_price or "0", "0", o.tif, "",
              o.account, "O", 0, o.order_ref, o.perm_id, 0, 0, "0", "", "", "", ""]  # fmt: skip
        if sv < 177:
            f.append("")
        # modelCode .. deltaNeutralAuxPrice (23 fields)
        f += ["", "", "0", "", "", 0, "", -1, "", "", "", "", "", 0, 0, 0, "", 3, 0, "", 0,
              "", ""]  # fmt: skip
        f += [0, "", "", "", "", 0, 0, 0]  # continuousUpdate .. comboLegsDescrip, 3 counts
        f += ["", "", ""]  # scale
        f += [""]  # hedgeType
        f += ["", "", 0, 0]  # clearingAccount, clearingIntent, notHeld, dnc
        f += [""]  # algoStrategy
        f += [0, o.status, 0, 0]
        f += [0]  # conditions
        f += [
            "",
            "",
            "",
            0,
            0,
            "",
            _num(o.filled),
            0,
            0,
            "",
            0,
            0,
            "",
            "20240304 10:00:00",
            o.status,
        ]
        if sv >= 170:
            f += ["", "", "", "", ""]
        return f
