"""What the dashboard, the metrics and the alerts show, folded from the journal as it grows.

:class:`JournalView` reads the journal's new records since its last read (a reader that runs
beside the trader) and keeps the figures of the live side: the governor's state (the chain of
``governor_state`` events, read by :func:`stairways.risk.state.replay`), each session's book
(fills applied and positions marked at the decision bars' closes with the live loop's own
:class:`~stairways.live.observe.SessionBook`, so equity and drawdown are the loop's arithmetic),
the limits in force (the governor's ``risk_limits`` record), orders, decisions with their
verdicts, alerts and operator actions. :meth:`JournalView.snapshot` turns that into plain data.
Nothing is invented: an empty journal gives a snapshot that says no trading happened yet.

Payloads read are those documented in :mod:`stairways.live.records` and
:mod:`stairways.risk.ports`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np
import yaml

from stairways.live.observe import SessionBook
from stairways.live.records import END_TYPE, SESSION_TYPE
from stairways.risk.state import INITIAL, StateRecord, replay

__all__ = ["DEFAULT_FEED_STALE_SECONDS", "JournalView", "SessionFigures"]

log = logging.getLogger(__name__)

# Without a risk_limits record, the feed counts as stale after this long (the paper stage's
# order_flow.stale_data_seconds); the record's value is used when there is one.
DEFAULT_FEED_STALE_SECONDS = 120.0
_RECENT = 50
_TERMINAL = {"filled", "cancelled", "canceled", "rejected", "refused", "inactive", "expired"}


class _Source(Protocol):
    def records(self, *, after_seq: int = 0, kinds: Iterable[str] | None = None) -> Iterator[Any]:
        """Records after ``after_seq`` in sequence order."""
        ...


class _Clock(Protocol):
    def now(self) -> datetime:
        """Current exchange time."""
        ...


@dataclass
class SessionFigures:
    """One live session as the journal tells it, with its book."""

    session_id: str
    day: date
    stage: str
    model_id: str
    rehearsal: bool
    capital: float
    book: SessionBook
    ended: bool = False
    end_reason: str = ""
    curve: list[dict[str, Any]] = field(default_factory=list)
    turnover: float = 0.0
    fills: int = 0
    closes: np.ndarray | None = None

    @property
    def equity(self) -> float:
        """Cash plus the shares held at the latest closes.

        A fill changes cash and shares at once, while the book's equity moves only when it
        is marked (at a bar, as the loop marks it): the closing step's fills come after the
        last bar's mark, so this reads the cash, never a stale mark. The book's peak and
        drawdown stay the loop's (they change only at marks).
        """
        if self.closes is None:
            return self.book.equity
        cash = float(self.book.figures()["cash"])
        return cash + float(np.dot(self.book.shares, self.closes))

    @property
    def net_pnl(self) -> float:
        """Equity minus the starting capital (after fees)."""
        return self.equity - self.capital

    @property
    def fees(self) -> float:
        """Commissions paid."""
        return float(self.book.figures()["fees"])


def _float(value: Any, default: float = math.nan) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out


class JournalView:
    """The live side's figures from one journal, updated by :meth:`refresh`.

    :param source: a journal reader (anything with ``records(after_seq=, kinds=)``)
    :param clock: exchange time (feed age, broker disconnection age)
    :param monotonic: wall seconds (when the monitor saw the newest bar; see ``feed_age``)
    """

    def __init__(self, source: _Source, clock: _Clock, monotonic: Any) -> None:
        self.source = source
        self.clock = clock
        self.monotonic = monotonic
        self.cursor = 0
        self.governor: StateRecord = INITIAL
        self._gov_cursor = 0
        self.sessions: dict[str, SessionFigures] = {}
        self.current: SessionFigures | None = None
        self.limits: dict[str, Any] = {}
        self.limits_stage = ""
        self.latencies_ms: list[float] = []
        self.decisions: deque[dict[str, Any]] = deque(maxlen=_RECENT)
        self._decision_index: dict[str, dict[str, Any]] = {}
        self.fills: deque[dict[str, Any]] = deque(maxlen=_RECENT)
        self.alerts: deque[dict[str, Any]] = deque(maxlen=_RECENT)
        self.operator_actions: deque[dict[str, Any]] = deque(maxlen=_RECENT)
        self.orders: dict[str, dict[str, Any]] = {}
        self.executions: Counter[tuple[str, str]] = Counter()
        self.breaches: Counter[str] = Counter()
        self.errors = 0
        self.orders_sent = 0
        self.broker_connected: bool | None = None
        self.broker_changed_at: datetime | None = None
        self.last_bar_at: datetime | None = None
        self._last_bar_seen_wall: float | None = None

    # ------------------------------------------------------------------------------------
    # reading

    def refresh(self) -> bool:
        """Read the records appended since the last call; True when there were any."""
        self.governor, self._gov_cursor, _ = replay(self.source, self.governor, self._gov_cursor)
        changed = False
        for rec in self.source.records(after_seq=self.cursor):
            self.cursor = int(rec.seq)
            changed = True
            self._apply(rec.kind, rec.payload, rec.ts)
        return changed

    def _session_of(self, p: Mapping[str, Any]) -> SessionFigures | None:
        sid = p.get("session_id")
        if sid is None:
            return self.current
        return self.sessions.get(str(sid))

    def _apply(self, kind: str, p: Mapping[str, Any], ts: datetime) -> None:
        typ = p.get("type")
        if kind == "config":
            self._config(typ, p, ts)
        elif kind == "decision":
            self._decision(p, ts)
        elif kind == "verdict" and typ == "intent":
            self._verdict(p)
        elif kind == "order":
            self._order(typ, p)
        elif kind == "order_status":
            self._order_status(p)
        elif kind == "fill":
            self._fill(p, ts)
        elif kind == "alert":
            self._alert(p, ts)
        elif kind == "operator_action":
            self.operator_actions.append({"at": ts.isoformat(), **dict(p)})

    def _config(self, typ: Any, p: Mapping[str, Any], ts: datetime) -> None:
        if typ == SESSION_TYPE:
            sid = str(p["session_id"])
            if sid not in self.sessions:
                symbols = [str(s) for s in p.get("symbols") or []]
                capital = _float(p.get("capital"), 0.0)
                self.sessions[sid] = SessionFigures(
                    session_id=sid,
                    day=date.fromisoformat(str(p["day"])),
                    stage=str(p.get("stage", "")),
                    model_id=str(p.get("model_id", "")),
                    rehearsal=bool(p.get("rehearsal", True)),
                    capital=capital,
                    book=SessionBook(symbols, capital),
                )
            self.current = self.sessions[sid]
        elif typ == END_TYPE:
            s = self._session_of(p)
            if s is not None:
                s.ended = True
                s.end_reason = str(p.get("reason", ""))
                if s.closes is not None:
                    # The loop marks its book after the closing step's fills, then ends.
                    s.book.mark(s.closes)
                    s.curve.append(
                        {"t": ts.isoformat(), "equity": s.book.equity, "drawdown": s.book.drawdown}
                    )
        elif typ == "risk_limits":
            try:
                limits = yaml.safe_load(str(p.get("limits", "")))
            except yaml.YAMLError as err:
                log.warning("a risk_limits record does not hold YAML (%s); limits not shown", err)
                return
            if isinstance(limits, dict):
                self.limits = limits
                self.limits_stage = str(p.get("stage", ""))

    def _decision(self, p: Mapping[str, Any], ts: datetime) -> None:
        s = self._session_of(p)
        latency = p.get("latency_ms")
        if latency is not None:
            self.latencies_ms.append(_float(latency))
        bars = p.get("bars") or {}
        if s is not None and bars:
            closes = [bars.get(sym) for sym in s.book.symbols]
            if all(isinstance(b, list) and len(b) >= 4 for b in closes):
                s.closes = np.array([float(b[3]) for b in closes], dtype=np.float64)  # type: ignore[index]
                s.book.mark(s.closes)
                s.curve.append(
                    {
                        "t": ts.isoformat(),
                        "equity": s.book.equity,
                        "drawdown": s.book.drawdown,
                    }
                )
            self.last_bar_at = ts
            self._last_bar_seen_wall = float(self.monotonic())
        entry: dict[str, Any] = {
            "at": ts.isoformat(),
            "session_id": str(p.get("session_id", "")),
            "decision_id": str(p.get("decision_id", "")),
            "bar": p.get("bar"),
            "action": p.get("action"),
            "used": bool(p.get("used", True)),
            "latency_ms": latency,
            "verdicts": [],
        }
        self.decisions.append(entry)
        self._decision_index[entry["decision_id"]] = entry
        if len(self._decision_index) > 4 * _RECENT:
            keep = {d["decision_id"] for d in self.decisions}
            self._decision_index = {k: v for k, v in self._decision_index.items() if k in keep}

    def _verdict(self, p: Mapping[str, Any]) -> None:
        entry = self._decision_index.get(str(p.get("decision_id", "")))
        if entry is None:
            return
        reasons = [str(r.get("detail", "")) for r in p.get("reasons") or [] if isinstance(r, dict)]
        entry["verdicts"].append(
            {
                "symbol": p.get("symbol"),
                "decision": p.get("decision"),
                "requested": p.get("requested"),
                "approved": p.get("approved"),
                "reasons": reasons,
            }
        )

    def _order(self, typ: Any, p: Mapping[str, Any]) -> None:
        oid = p.get("client_order_id")
        if typ == "close_out":
            self.orders_sent += len(p.get("orders") or [])
            return
        if oid is None:
            return
        oid = str(oid)
        if typ == "submitting":
            self.orders_sent += 1
            self.orders[oid] = {
                "client_order_id": oid,
                "symbol": str(p.get("symbol", "")),
                "quantity": _float(p.get("quantity")),
                "status": "submitting",
                "session_id": str(p.get("session_id", "")),
            }
        elif typ in ("sent", "recovered") and oid in self.orders:
            self.orders[oid]["status"] = "sent"
        elif typ in ("refused", "abandoned"):
            if typ == "refused":
                self.errors += 1
                symbol = self.orders.get(oid, {}).get("symbol", str(p.get("symbol", "")))
                self.executions[(symbol, "refused")] += 1
            self.orders.pop(oid, None)

    def _order_status(self, p: Mapping[str, Any]) -> None:
        oid = str(p.get("client_order_id", ""))
        state = str(p.get("state", "")).lower()
        order = self.orders.get(oid)
        symbol = order["symbol"] if order is not None else str(p.get("symbol", ""))
        if state in ("rejected", "refused"):
            self.errors += 1
        if state in _TERMINAL:
            self.executions[(symbol, state)] += 1
            self.orders.pop(oid, None)
        elif order is not None:
            order["status"] = state
            if p.get("remaining") is not None:
                order["remaining"] = _float(p.get("remaining"))

    def _fill(self, p: Mapping[str, Any], ts: datetime) -> None:
        s = self._session_of(p)
        qty, price, fee = _float(p.get("quantity")), _float(p.get("price")), _float(p.get("fee"))
        symbol = str(p.get("symbol", ""))
        if s is not None and symbol in s.book.symbols:
            s.book.fill(symbol, qty, price, fee)
            s.turnover += abs(qty * price)
            s.fills += 1
        self.fills.append(
            {
                "at": ts.isoformat(),
                "symbol": symbol,
                "quantity": qty,
                "price": price,
                "fee": fee,
                "client_order_id": p.get("client_order_id"),
            }
        )

    def _alert(self, p: Mapping[str, Any], ts: datetime) -> None:
        typ, kind = p.get("type"), p.get("kind")
        if typ == "broker_disconnect":
            self.broker_connected, self.broker_changed_at = False, ts
        elif typ == "broker_connected":
            self.broker_connected, self.broker_changed_at = True, ts
        if kind == "stop":
            self.breaches[str(p.get("rule", "stop"))] += 1
        if typ == "monitor_alert":
            return  # the monitor's own alerts are listed by its evaluator
        message = p.get("message") or p.get("why") or ""
        self.alerts.append(
            {"at": ts.isoformat(), "kind": str(kind or typ or "alert"), "message": str(message)}
        )

    # ------------------------------------------------------------------------------------
    # figures

    def limit(self, *path: str) -> float | None:
        """A limit in force from the ``risk_limits`` record (None without one)."""
        node: Any = self.limits
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        value = _float(node)
        return None if math.isnan(value) else value

    def feed_age(self) -> float | None:
        """Seconds since the newest bar: the smaller of its age in exchange time and the time
        since this monitor first read it (a rehearsal replays a past day: its bars carry that
        day's times, so their exchange-time age says nothing about a live feed)."""
        if self.last_bar_at is None or self._last_bar_seen_wall is None:
            return None
        by_clock = (self.clock.now() - self.last_bar_at).total_seconds()
        by_wall = float(self.monotonic()) - self._last_bar_seen_wall
        return max(0.0, min(by_clock, by_wall))

    def broker_down_for(self) -> float:
        """Seconds the broker has been disconnected (0 when connected or unknown)."""
        if self.broker_connected is not False or self.broker_changed_at is None:
            return 0.0
        return max(0.0, (self.clock.now() - self.broker_changed_at).total_seconds())

    def latency_quantiles(self) -> tuple[float | None, float | None]:
        """Decision latency p50 and p99 in milliseconds over the journal's decisions."""
        lat = [x for x in self.latencies_ms if not math.isnan(x)]
        if not lat:
            return None, None
        arr = np.asarray(lat)
        return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))

    def pnl(self, sessions: list[SessionFigures]) -> dict[str, float]:
        """Gross, fees and net P&L summed over ``sessions``."""
        net = sum(s.net_pnl for s in sessions)
        fees = sum(s.fees for s in sessions)
        return {"gross": net + fees, "fees": fees, "net": net}

    def day_sessions(self) -> tuple[date | None, list[SessionFigures], list[SessionFigures]]:
        """The latest session's trading day, its sessions and the sessions of its week."""
        if self.current is None:
            return None, [], []
        day = self.current.day
        week = day.isocalendar()[:2]
        all_s = list(self.sessions.values())
        today = [s for s in all_s if s.day == day]
        this_week = [s for s in all_s if s.day.isocalendar()[:2] == week and s.day <= day]
        return day, today, this_week
