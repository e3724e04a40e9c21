"""A model's evidence in its ladder stage, computed from the journal (never typed in).

The ladder reads these journal records (written by the live loop, see
:mod:`stairways.live.records`, and by the governor, see :mod:`stairways.risk.ports`):

=================  ==========================  =============================================
kind               payload ``type``/keys       used for
=================  ==========================  =============================================
config             ``live_session``            a session's start: day, stage, model id,
                                               fingerprint, ``rehearsal``, broker, clock,
                                               capital
config             ``live_session_end``        its end: ``figures`` (pnl, fees,
                                               max_drawdown, equity), ``positions``
decision           ``latency_ms``              decision latency (bar to verdicts)
order              ``submitting``,             orders sent (the error rate's denominator),
                   ``close_out``, ``refused``  refusals by the broker (errors)
order_status       ``state`` rejected/refused  errors reported by the broker
fill               ``quantity``, ``price``,    cash flow and fees (gross and fee-adjusted
                   ``fee``                     P&L), checked against the end figures
alert              ``kind: stop``              a hard-limit breach: the governor's stop rules
                                               (intraday loss limit, drawdown halt layer)
governor_state     ``state: EMERGENCY_STOP``   an emergency stop during the session
=================  ==========================  =============================================

Records carrying ``session_id`` belong to that session; the governor's records (alerts,
verdicts, state) carry none and belong to the session open when they were written.

A session **counts** toward the stage only when it ended (its end record exists), is not a
rehearsal (``rehearsal`` false, broker not ``sim``, clock not ``manual``: any one of these marks
a rehearsal), ran the model's registered fingerprint at the stage, started after the model
entered the stage, and its fills agree with its end figures. Every excluded session is listed
with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from stairways.live.records import END_TYPE, SESSION_TYPE
from stairways.live.registry import RegisteredModel

__all__ = [
    "EVIDENCE_KINDS",
    "SessionEvidence",
    "StageEvidence",
    "collect_sessions",
    "stage_evidence",
]

EVIDENCE_KINDS = ("config", "decision", "order", "order_status", "fill", "alert", "governor_state")
EMERGENCY_STOP = "EMERGENCY_STOP"
# A cent: fills and end figures that differ by more than this are not the same session.
PNL_TOLERANCE = 0.01


class _Source(Protocol):
    def records(
        self, *, after_seq: int = 0, kinds: Iterable[str] | None = None
    ) -> Iterator[Any]: ...


@dataclass
class SessionEvidence:
    """One session's figures from its journal records."""

    session_id: str
    day: str
    stage: str
    model_id: str
    fingerprint: str
    rehearsal: bool
    broker: str
    clock: str
    capital: float
    start_seq: int
    end_seq: int = 0
    ended: bool = False
    end: dict[str, Any] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    orders: int = 0
    errors: int = 0
    cash_flow: float = 0.0
    fees: float = 0.0
    fills: int = 0
    breaches: list[str] = field(default_factory=list)
    emergency_stops: list[str] = field(default_factory=list)

    @property
    def is_rehearsal(self) -> bool:
        """Rehearsed on the controllable clock or the simulated broker (never counts)."""
        return self.rehearsal or self.broker == "sim" or self.clock == "manual"

    @property
    def flat_at_end(self) -> bool:
        """Whether the end record shows no position."""
        return all(abs(float(q)) < 1e-9 for q in dict(self.end.get("positions", {})).values())

    @property
    def net_pnl(self) -> float:
        """Fee-adjusted P&L: from the fills when flat at the end, else the end figures' mark."""
        if self.flat_at_end:
            return self.cash_flow - self.fees
        return float(dict(self.end.get("figures", {})).get("pnl", 0.0))

    @property
    def gross_pnl(self) -> float:
        """P&L before fees."""
        return self.net_pnl + self.fees

    @property
    def max_drawdown(self) -> float:
        """The session's worst drawdown from its own peak equity (fraction), from its end."""
        return float(dict(self.end.get("figures", {})).get("max_drawdown", 0.0))

    def inconsistency(self) -> str:
        """Why the fills disagree with the end figures ("" when they agree)."""
        figures = dict(self.end.get("figures", {}))
        if "pnl" not in figures or "fees" not in figures:
            return "its end record has no P&L and fee figures"
        if abs(float(figures["fees"]) - self.fees) > PNL_TOLERANCE:
            return (
                f"its fills' fees ${self.fees:,.2f} differ from its end figures' "
                f"${float(figures['fees']):,.2f}"
            )
        if self.flat_at_end and abs(float(figures["pnl"]) - self.net_pnl) > PNL_TOLERANCE:
            return (
                f"its fills give P&L ${self.net_pnl:,.2f} but its end figures say "
                f"${float(figures['pnl']):,.2f}"
            )
        return ""


def collect_sessions(
    source: _Source, after_seq: int = 0, *, figures: bool = True
) -> list[SessionEvidence]:
    """Every live session started after ``after_seq``, with its figures, in start order.

    :param figures: read decisions, orders, fills, alerts and governor states too; False reads
        only the start and end records (which sessions exist and which ended: fast)
    """
    sessions: dict[str, SessionEvidence] = {}
    current: SessionEvidence | None = None
    kinds = EVIDENCE_KINDS if figures else ("config",)
    for rec in source.records(after_seq=after_seq, kinds=kinds):
        p: Mapping[str, Any] = rec.payload
        kind = rec.kind
        typ = p.get("type")
        if kind == "config" and typ == SESSION_TYPE:
            sid = str(p["session_id"])
            if sid not in sessions:  # a resumed session writes its start again; the first stands
                sessions[sid] = SessionEvidence(
                    session_id=sid,
                    day=str(p["day"]),
                    stage=str(p["stage"]),
                    model_id=str(p["model_id"]),
                    fingerprint=str(p["fingerprint"]),
                    rehearsal=bool(p.get("rehearsal", True)),
                    broker=str(p.get("broker", "")),
                    clock=str(p.get("clock", "")),
                    capital=float(p.get("capital") or 0.0),
                    start_seq=int(rec.seq),
                )
            current = sessions[sid]
            continue
        sid_value = p.get("session_id")
        s = sessions.get(str(sid_value)) if sid_value is not None else current
        if s is None:
            continue
        if kind == "config" and typ == END_TYPE:
            s.ended = True
            s.end_seq = int(rec.seq)
            s.end = dict(p)
            if current is s:
                current = None
        elif kind == "decision":
            if p.get("latency_ms") is not None:
                s.latencies_ms.append(float(p["latency_ms"]))
        elif kind == "order":
            if typ in ("submitting", "close_out"):
                s.orders += 1
            elif typ == "refused":
                s.errors += 1
        elif kind == "order_status":
            if p.get("state") in ("rejected", "refused"):
                s.errors += 1
        elif kind == "fill":
            q, px = float(p.get("quantity", 0.0)), float(p.get("price", 0.0))
            s.cash_flow -= q * px
            s.fees += float(p["fee"])
            s.fills += 1
        elif kind == "alert":
            if p.get("kind") == "stop":
                s.breaches.append(f"{p.get('rule', 'stop')}: {p.get('message', '')}")
        elif kind == "governor_state" and p.get("state") == EMERGENCY_STOP:
            s.emergency_stops.append(f"by {p.get('who', '?')}: {p.get('why', '')}")
    return list(sessions.values())


@dataclass
class StageEvidence:
    """What a model showed in its stage: counted sessions and the gate figures.

    Drawdowns are fractions of the capital; P&L in dollars. ``max_drawdown`` is the larger of
    the worst intraday drawdown and the fall of the cumulative daily P&L from its peak.
    """

    model_id: str
    stage: str
    since_seq: int
    counted: list[SessionEvidence]
    excluded: list[tuple[SessionEvidence, str]]
    unfinished: list[SessionEvidence]
    trading_days: int = 0
    gross_pnl: float = 0.0
    net_pnl: float = 0.0
    fees: float = 0.0
    max_drawdown: float = 0.0
    worst_daily_drawdown: float = 0.0
    latency_p99_ms: float | None = None
    decisions: int = 0
    orders: int = 0
    errors: int = 0
    breaches: list[str] = field(default_factory=list)
    emergency_stops: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        """Errors per order sent (0 without orders)."""
        return self.errors / self.orders if self.orders else 0.0

    @property
    def fee_share_of_gross(self) -> float | None:
        """Fees over gross P&L; None when gross P&L is not positive."""
        return self.fees / self.gross_pnl if self.gross_pnl > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """The figures for a journal record or a JSON report."""
        return {
            "trading_days": self.trading_days,
            "sessions_counted": [s.session_id for s in self.counted],
            "sessions_excluded": {s.session_id: why for s, why in self.excluded},
            "gross_pnl": round(self.gross_pnl, 6),
            "net_pnl": round(self.net_pnl, 6),
            "fees": round(self.fees, 6),
            "max_drawdown": self.max_drawdown,
            "worst_daily_drawdown": self.worst_daily_drawdown,
            "latency_p99_ms": self.latency_p99_ms,
            "decisions": self.decisions,
            "orders": self.orders,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "fee_share_of_gross": self.fee_share_of_gross,
            "hard_limit_breaches": len(self.breaches),
            "emergency_stops": len(self.emergency_stops),
        }


def _exclusion(s: SessionEvidence, model: RegisteredModel, stage: str) -> str:
    if s.model_id != model.model_id:
        return ""  # another model's session: not listed at all
    if s.is_rehearsal:
        return (
            f"a rehearsal (rehearsal={str(s.rehearsal).lower()}, broker {s.broker}, clock "
            f"{s.clock}): rehearsals never count toward a stage"
        )
    if s.stage != stage:
        return f"ran at stage {s.stage}, not {stage}"
    if s.fingerprint != model.fingerprint:
        return f"ran fingerprint {s.fingerprint[:16]}, not the registered {model.fingerprint[:16]}"
    if s.capital <= 0:
        return "its start record has no capital"
    return s.inconsistency()


def stage_evidence(
    source: _Source, model: RegisteredModel, stage: str, since_seq: int
) -> StageEvidence:
    """The evidence of ``model`` in ``stage`` from its sessions started after ``since_seq``."""
    counted: list[SessionEvidence] = []
    excluded: list[tuple[SessionEvidence, str]] = []
    unfinished: list[SessionEvidence] = []
    for s in collect_sessions(source, since_seq):
        if s.model_id != model.model_id:
            continue
        why = _exclusion(s, model, stage)
        if s.is_rehearsal or s.stage != stage or s.fingerprint != model.fingerprint:
            excluded.append((s, why))
        elif not s.ended:
            unfinished.append(s)
        elif why:
            excluded.append((s, why))
        else:
            counted.append(s)
    ev = StageEvidence(model.model_id, stage, since_seq, counted, excluded, unfinished)
    # Breaches and stops of an unfinished (running or crashed) session count already.
    live = counted + unfinished
    ev.breaches = [f"{s.session_id} {b}" for s in live for b in s.breaches]
    ev.emergency_stops = [f"{s.session_id} {e}" for s in live for e in s.emergency_stops]
    if not counted:
        return ev
    by_day: dict[str, list[SessionEvidence]] = {}
    for s in counted:
        by_day.setdefault(s.day, []).append(s)
    ev.trading_days = len(by_day)
    ev.fees = sum(s.fees for s in counted)
    ev.net_pnl = sum(s.net_pnl for s in counted)
    ev.gross_pnl = ev.net_pnl + ev.fees
    ev.worst_daily_drawdown = max(s.max_drawdown for s in counted)
    capital = max(s.capital for s in counted)
    cumulative, peak, fall = 0.0, 0.0, 0.0
    for day in sorted(by_day):
        cumulative += sum(s.net_pnl for s in by_day[day])
        peak = max(peak, cumulative)
        fall = max(fall, (peak - cumulative) / capital)
    ev.max_drawdown = max(fall, ev.worst_daily_drawdown)
    latencies = [x for s in counted for x in s.latencies_ms]
    ev.decisions = len(latencies)
    ev.latency_p99_ms = float(np.percentile(latencies, 99)) if latencies else None
    ev.orders = sum(s.orders for s in counted)
    ev.errors = sum(s.errors for s in counted)
    return ev
