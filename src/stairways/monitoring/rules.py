"""The alert conditions, once: the app's evaluator checks them on the journal's figures and
``deploy/prometheus/alerts.yml`` states the same ones in PromQL over the exported metrics.

A test reads both and checks they name the same alerts with the same severities and levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BROKER_DOWN_SECONDS",
    "DRAWDOWN_WARNING_FRACTION",
    "ERROR_WINDOW_SECONDS",
    "LATENCY_P99_LIMIT_MS",
    "MAX_ERRORS_IN_WINDOW",
    "RULES",
    "Firing",
    "Rule",
    "evaluate",
]

DRAWDOWN_WARNING_FRACTION = 0.8  # warning at 80% of the drawdown limit, critical at the limit
BROKER_DOWN_SECONDS = 60.0
LATENCY_P99_LIMIT_MS = 10.0
ERROR_WINDOW_SECONDS = 300.0
MAX_ERRORS_IN_WINDOW = 3  # system errors within the window that raise the error-rate alert


@dataclass(frozen=True)
class Rule:
    """One alert: its name (as in alerts.yml), severity and what it means."""

    name: str
    severity: str
    summary: str


RULES: tuple[Rule, ...] = (
    Rule("StairwaysDrawdownWarning", "warning", "drawdown at 80% of its limit"),
    Rule("StairwaysDrawdownCritical", "critical", "drawdown at its limit"),
    Rule("StairwaysDailyLossLimit", "critical", "the day's loss reached the loss limit"),
    Rule("StairwaysEmergencyStop", "critical", "the governor is in EMERGENCY_STOP"),
    Rule("StairwaysBrokerDisconnected", "critical", "broker disconnected for over 60 s"),
    Rule("StairwaysStaleFeed", "warning", "no new bar for longer than the stale-data limit"),
    Rule("StairwaysDecisionLatencyHigh", "warning", "decision latency p99 over 10 ms"),
    Rule("StairwaysErrorRate", "warning", "3 or more system errors within 5 minutes"),
)
_BY_NAME = {r.name: r for r in RULES}


@dataclass(frozen=True)
class Firing:
    """An alert whose condition holds, with the figures that made it hold."""

    rule: Rule
    message: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.rule.name, "severity": self.rule.severity, "message": self.message}


def _fire(name: str, message: str) -> Firing:
    return Firing(_BY_NAME[name], message)


def evaluate(f: Mapping[str, Any]) -> list[Firing]:
    """The alerts whose condition holds on the figures ``f`` (see ``Monitor.figures``).

    Keys read: drawdown, drawdown_limit, day_net_pnl, loss_limit, governor_state,
    broker_down_seconds, feed_age, feed_stale_seconds, session_open, latency_p99_ms,
    errors_in_window.
    """
    out: list[Firing] = []
    dd, dd_limit = f.get("drawdown"), f.get("drawdown_limit")
    if dd is not None and dd_limit:
        if dd >= dd_limit:
            out.append(
                _fire(
                    "StairwaysDrawdownCritical",
                    f"drawdown {dd:.2%} is at or past its limit {dd_limit:.2%}",
                )
            )
        elif dd >= DRAWDOWN_WARNING_FRACTION * dd_limit:
            out.append(
                _fire(
                    "StairwaysDrawdownWarning",
                    f"drawdown {dd:.2%} is past 80% of its limit {dd_limit:.2%}",
                )
            )
    pnl, loss_limit = f.get("day_net_pnl"), f.get("loss_limit")
    if pnl is not None and loss_limit and pnl <= -loss_limit:
        out.append(
            _fire(
                "StairwaysDailyLossLimit",
                f"the day's net P&L ${pnl:,.2f} reached the loss limit -${loss_limit:,.2f}",
            )
        )
    if f.get("governor_state") == "EMERGENCY_STOP":
        out.append(_fire("StairwaysEmergencyStop", f"emergency stop: {f.get('governor_why', '')}"))
    down = float(f.get("broker_down_seconds") or 0.0)
    if down > BROKER_DOWN_SECONDS:
        out.append(
            _fire("StairwaysBrokerDisconnected", f"the broker has been disconnected {down:.0f} s")
        )
    age, stale = f.get("feed_age"), f.get("feed_stale_seconds")
    if f.get("session_open") and age is not None and stale and age > stale:
        out.append(_fire("StairwaysStaleFeed", f"no new bar for {age:.0f} s (limit {stale:.0f} s)"))
    p99 = f.get("latency_p99_ms")
    if p99 is not None and p99 > LATENCY_P99_LIMIT_MS:
        out.append(
            _fire(
                "StairwaysDecisionLatencyHigh",
                f"decision latency p99 {p99:.2f} ms is over {LATENCY_P99_LIMIT_MS:g} ms",
            )
        )
    errors = int(f.get("errors_in_window") or 0)
    if errors >= MAX_ERRORS_IN_WINDOW:
        out.append(
            _fire(
                "StairwaysErrorRate",
                f"{errors} system errors in the last {ERROR_WINDOW_SECONDS / 60:.0f} minutes",
            )
        )
    return out
