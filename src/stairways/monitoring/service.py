"""The monitor: one journal view, the ladder's gate figures, the alert evaluator and the
operator controls, behind a lock (the web app's requests and its refresh task share it)."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stairways.clock import Clock
from stairways.errors import InputError
from stairways.journal import Journal, JournalReader
from stairways.live.ladder import Ladder
from stairways.live.ladder_config import LadderConfig
from stairways.monitoring.alerts import AlertEvaluator
from stairways.monitoring.rules import ERROR_WINDOW_SECONDS, evaluate
from stairways.monitoring.view import DEFAULT_FEED_STALE_SECONDS, JournalView
from stairways.risk.operator import halt, resume
from stairways.risk.state import TransitionError
from stairways.security.secret import Secret

__all__ = ["ControlRefusedError", "ControlResult", "Monitor"]

log = logging.getLogger(__name__)

# The ladder's figures read the whole journal; recompute them at most this often.
_LADDER_EVERY_SECONDS = 5.0


class ControlRefusedError(InputError):
    """An operator control was refused (no token, wrong token, no reason, not confirmed)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ControlResult:
    """What an accepted control did."""

    action: str
    before: str
    after: str
    operator: str
    reason: str


class Monitor:
    """Everything the dashboard, ``/metrics`` and the alerts read.

    :param reader: the journal, read-only (safe beside the trader)
    :param clock: exchange time
    :param writer: the journal writer (MAC key from the vault): controls and alert records;
        None for a read-only monitor (controls are then refused)
    :param operator_token: the vault's operator token; None disables the controls
    :param ladder_config: the promotion ladder (gate figures); None hides them
    :param registry: the journal holding the model registry (default: ``reader``)
    :param evaluator: the alert evaluator (None: alerts are shown, never sent)
    :param monotonic: wall seconds (tests pass a controllable one)
    """

    def __init__(
        self,
        reader: JournalReader,
        clock: Clock,
        *,
        writer: Journal | None = None,
        operator_token: Secret | None = None,
        ladder_config: LadderConfig | None = None,
        registry: JournalReader | None = None,
        evaluator: AlertEvaluator | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.clock = clock
        self.writer = writer
        self.token = operator_token
        self.ladder_config = ladder_config
        self.registry = registry or reader
        self.evaluator = evaluator
        self.monotonic = monotonic
        self.lock = threading.RLock()
        self.view = JournalView(reader, clock, monotonic)
        self._ladder: list[dict[str, Any]] = []
        self._ladder_at: float | None = None
        self._ladder_cursor = -1
        self._errors: deque[tuple[float, int]] = deque()
        self.version = 0

    # ------------------------------------------------------------------------------------
    # reading

    def refresh(self) -> bool:
        """Read new journal records, update alerts; True when the journal grew."""
        with self.lock:
            changed = self.view.refresh()
            if changed:
                self.version += 1
            now = self.monotonic()
            self._errors.append((now, self.view.errors))
            while self._errors and now - self._errors[0][0] > ERROR_WINDOW_SECONDS:
                self._errors.popleft()
            if self.evaluator is not None:
                before = len(self.evaluator.active)
                self.evaluator.update(evaluate(self.figures()), self.clock.now())
                if self.view.refresh():  # the evaluator's own records
                    self.version += 1
                changed = changed or len(self.evaluator.active) != before
            return changed

    def ladder_rows(self) -> list[dict[str, Any]]:
        """Every registered model's stage and gate figures so far (cached a few seconds)."""
        if self.ladder_config is None:
            return []
        now = self.monotonic()
        fresh = self._ladder_at is not None and now - self._ladder_at < _LADDER_EVERY_SECONDS
        if fresh and self._ladder_cursor == self.view.cursor:
            return self._ladder
        ladder = Ladder(self.registry, self.ladder_config, self.clock)  # type: ignore[arg-type]
        rows = []
        for st in ladder.status():
            ev = st.evidence
            rows.append(
                {
                    "model_id": st.model.model_id,
                    "stage": st.stage,
                    "next_stage": st.next_stage,
                    "trading_days": ev.trading_days if ev is not None else None,
                    "checks": [c.as_dict() for c in st.checks],
                }
            )
        self._ladder, self._ladder_at, self._ladder_cursor = rows, now, self.view.cursor
        return rows

    def figures(self) -> dict[str, Any]:
        """The figures the alert rules and the metrics read (see rules.evaluate)."""
        v = self.view
        day, today, _ = v.day_sessions()
        pnl = v.pnl(today)
        p50, p99 = v.latency_quantiles()
        stale = v.limit("order_flow", "stale_data_seconds") or DEFAULT_FEED_STALE_SECONDS
        errors_in_window = self.view.errors - self._errors[0][1] if self._errors else 0
        cur = v.current
        return {
            "day": day.isoformat() if day else None,
            "drawdown": cur.book.drawdown if cur is not None else None,
            "drawdown_limit": v.limit("drawdown", "flatten_and_halt_at"),
            "day_net_pnl": pnl["net"] if today else None,
            "day_turnover": sum(s.turnover for s in today) if today else None,
            "loss_limit": v.limit("loss", "intraday_loss_limit"),
            "governor_state": v.governor.state.value,
            "governor_why": v.governor.why,
            "broker_down_seconds": v.broker_down_for(),
            "feed_age": v.feed_age(),
            "feed_stale_seconds": stale,
            "session_open": 1.0 if cur is not None and not cur.ended else 0.0,
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "errors_in_window": errors_in_window,
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything the dashboard page shows, JSON-ready."""
        with self.lock:
            v = self.view
            f = self.figures()
            day, today, week = v.day_sessions()
            cur = v.current
            gov = v.governor
            return {
                "version": self.version,
                "journal_seq": v.cursor,
                "empty": v.cursor == 0,
                "now": self.clock.now().isoformat(),
                "governor": {
                    "state": gov.state.value,
                    "since": gov.since,
                    "who": gov.who,
                    "why": gov.why,
                    "journaled": gov.seq > 0,
                },
                "session": None
                if cur is None
                else {
                    "session_id": cur.session_id,
                    "day": cur.day.isoformat(),
                    "stage": cur.stage,
                    "model_id": cur.model_id,
                    "rehearsal": cur.rehearsal,
                    "ended": cur.ended,
                    "end_reason": cur.end_reason,
                    "capital": cur.capital,
                    "equity": cur.equity,
                    "fills": cur.fills,
                },
                "pnl": {
                    "day": day.isoformat() if day else None,
                    "today": v.pnl(today) if today else None,
                    "week": v.pnl(week) if week else None,
                    "week_sessions": len(week),
                },
                "curve": list(cur.curve) if cur is not None else [],
                "limits": {
                    "stage": v.limits_stage,
                    "drawdown": {
                        "halve_sizes_at": v.limit("drawdown", "halve_sizes_at"),
                        "reduce_only_at": v.limit("drawdown", "reduce_only_at"),
                        "flatten_and_halt_at": v.limit("drawdown", "flatten_and_halt_at"),
                    },
                    "loss_limit": f["loss_limit"],
                    "gate_max_drawdown": self.ladder_config.gates.max_drawdown
                    if self.ladder_config is not None
                    else None,
                },
                "drawdown": f["drawdown"],
                "positions": cur.book.positions() if cur is not None else {},
                "open_orders": list(v.orders.values()),
                "decisions": list(reversed(v.decisions))[:15],
                "fills": list(reversed(v.fills))[:15],
                "latency": {
                    "p50_ms": f["latency_p50_ms"],
                    "p99_ms": f["latency_p99_ms"],
                    "decisions": len(v.latencies_ms),
                },
                "broker": {
                    "connected": v.broker_connected,
                    "since": v.broker_changed_at.isoformat() if v.broker_changed_at else None,
                },
                "feed_age_seconds": f["feed_age"],
                "feed_stale_seconds": f["feed_stale_seconds"],
                "ladder": self.ladder_rows(),
                "alerts": {
                    "active": self.evaluator.firing()
                    if self.evaluator is not None
                    else [fi.as_dict() for fi in evaluate(f)],
                    "journal": list(reversed(v.alerts))[:10],
                },
                "operator_actions": list(reversed(v.operator_actions))[:10],
                "controls": self.writer is not None and self.token is not None,
            }

    # ------------------------------------------------------------------------------------
    # controls

    def _refuse(self, action: str, operator: str, why: str, status: int, at: datetime) -> None:
        if self.writer is not None:
            self.writer.append(
                "operator_action",
                {
                    "action": "refused",
                    "requested": action,
                    "operator": operator or "(not given)",
                    "reason": why,
                    "via": "dashboard",
                },
                at,
            )
        log.warning("dashboard %s refused: %s", action, why)
        raise ControlRefusedError(why, status)

    def control(
        self, action: str, *, operator: str, reason: str, token: str, confirmed: bool
    ) -> ControlResult:
        """Emergency stop (``halt``) or ``resume`` from the dashboard; refusals are journaled.

        The token must equal the vault's operator token; the action must be confirmed and
        carry the operator's name and a reason.
        """
        if action not in ("halt", "resume"):
            raise ControlRefusedError(f"unknown control {action!r}: use halt or resume", 404)
        with self.lock:
            at = self.clock.now()
            if self.writer is None or self.token is None:
                raise ControlRefusedError(
                    "controls are off: start `stairways monitor serve` without --read-only and "
                    "with the operator token in the vault (`stairways secrets set "
                    "operator_token --generate`)",
                    503,
                )
            if not token:
                self._refuse(action, operator, "no operator token given", 401, at)
            if not hmac.compare_digest(token.encode("utf-8"), self.token.reveal().encode("utf-8")):
                self._refuse(action, operator, "the operator token is wrong", 403, at)
            if not confirmed:
                self._refuse(action, operator, "the action was not confirmed", 400, at)
            if not operator.strip():
                self._refuse(action, operator, "the operator's name is missing", 400, at)
            if not reason.strip():
                self._refuse(action, operator, "the reason is missing", 400, at)
            act = halt if action == "halt" else resume
            try:
                result = act(self.writer, operator.strip(), reason.strip(), at)
            except TransitionError as err:
                self._refuse(action, operator, str(err), 409, at)
                raise  # unreachable: _refuse raises
            self.refresh()
            return ControlResult(
                action=action,
                before=result.before.value,
                after=result.record.state.value,
                operator=operator.strip(),
                reason=reason.strip(),
            )
