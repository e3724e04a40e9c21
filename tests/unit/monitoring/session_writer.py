"""Writes a live session to a journal the way the live loop and the governor write it.

The records are those of :mod:`stairways.live.records` (session start, decisions with their
bars and latency, intents, verdicts, orders, order statuses, fills, session end) and of the
governor (``risk_limits`` configuration, state transitions through the real operator
actions). Tests drive prices bar by bar, so a drawdown or a loss can be made to order; the
expected figures are computed independently with plain arithmetic.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from stairways.journal import Journal, JournalLocation, MacKey
from stairways.risk.limits import dump_limits, load_stage
from stairways.risk.operator import resume

KEY = MacKey(b"monitoring-tests-mac-key-0123456789")
T0 = datetime.fromisoformat("2024-01-03T09:31:00-05:00")
SYMBOLS = ("NVDA", "MSFT")


class SessionWriter:
    """One rehearsed session written record by record.

    :param journal: the journal writer
    :param capital: starting capital
    :param day: the session's trading day
    """

    def __init__(self, journal: Journal, capital: float = 10_000.0, day: date = date(2024, 1, 3)):
        self.journal = journal
        self.capital = capital
        self.day = day
        self.sid = f"R{day:%y%m%d}pabc123-1"
        self.k = 0
        self.at = T0.replace(year=day.year, month=day.month, day=day.day)
        self.orders = 0

    def start(self, *, operator: str = "alice", stage: str = "paper") -> None:
        """Session start, the limits in force, and the operator's resume to RUNNING."""
        base = {"session_id": self.sid, "rehearsal": True}
        self.journal.append(
            "config",
            {
                **base,
                "type": "live_session",
                "day": self.day.isoformat(),
                "stage": stage,
                "model_id": "m-test",
                "fingerprint": "abc123",
                "broker": "sim",
                "clock": "manual",
                "symbols": list(SYMBOLS),
                "capital": self.capital,
            },
            self.at,
        )
        self.journal.append(
            "config",
            {"type": "risk_limits", "stage": stage, "limits": dump_limits(load_stage(stage))},
            self.at,
        )
        if operator:
            resume(self.journal, operator, "start of rehearsal", self.at)

    def bar(
        self,
        closes: dict[str, float],
        *,
        trade: dict[str, float] | None = None,
        fee: float = 1.0,
        latency_ms: float = 0.8,
    ) -> None:
        """A bar closing at ``closes``: ``trade`` (the previous decision's orders) fills at those
        closes, then this bar's decision is journaled."""
        self.at = self.at + timedelta(minutes=1)
        did = f"{self.sid}-{self.k:03d}"
        prev = f"{self.sid}-{self.k - 1:03d}"
        bars = {s: [c, c, c, c, 1000.0] for s, c in closes.items()}
        records: list[tuple[str, dict[str, Any], datetime]] = []
        # As in the loop: the previous decision's orders fill at this bar (the broker's events
        # are drained first), then this bar's decision marks the book at its closes.
        for symbol, qty in (trade or {}).items():
            self.orders += 1
            oid = f"{prev}-{symbol}"
            base = {"session_id": self.sid, "rehearsal": True}
            records += [
                (
                    "verdict",
                    {
                        "type": "intent",
                        "decision": "approve",
                        "intent_id": f"{prev}-{symbol}-i",
                        "decision_id": prev,
                        "symbol": symbol,
                        "requested": qty,
                        "approved": qty,
                        "reasons": [],
                    },
                    self.at,
                ),
                (
                    "order",
                    {
                        **base,
                        "type": "submitting",
                        "client_order_id": oid,
                        "symbol": symbol,
                        "quantity": qty,
                    },
                    self.at,
                ),
                ("order", {**base, "type": "sent", "client_order_id": oid}, self.at),
                (
                    "fill",
                    {
                        **base,
                        "exec_id": f"x{self.orders}",
                        "client_order_id": oid,
                        "symbol": symbol,
                        "quantity": qty,
                        "price": closes[symbol],
                        "fee": fee,
                    },
                    self.at,
                ),
                (
                    "order_status",
                    {
                        **base,
                        "client_order_id": oid,
                        "state": "filled",
                        "filled": qty,
                        "remaining": 0.0,
                    },
                    self.at,
                ),
            ]
        records.append(
            (
                "decision",
                {
                    "session_id": self.sid,
                    "rehearsal": True,
                    "observation_hash": f"{self.k:016x}",
                    "decision_id": did,
                    "bar": self.k,
                    "bars": bars,
                    "action": 1,
                    "used": True,
                    "latency_ms": latency_ms,
                },
                self.at,
            )
        )
        self.journal.append_many(records)
        self.k += 1

    def end(self) -> None:
        """The session's end record."""
        self.journal.append(
            "config",
            {
                "session_id": self.sid,
                "rehearsal": True,
                "type": "live_session_end",
                "reason": "session closed",
            },
            self.at,
        )


def open_journal(path: Path) -> Journal:
    """A new journal writer at ``path`` with the tests' key."""
    return Journal.open(JournalLocation.sqlite(path), KEY)
