"""``/metrics``: the live side's figures as Prometheus metrics, all under ``stairways_``.

A custom collector reads the monitor's journal view at scrape time, so every value is the
journal's (counters are counts of journal records; they restart only with a new journal).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from stairways.risk.types import TradingState

if TYPE_CHECKING:
    from stairways.monitoring.service import Monitor

__all__ = ["LATENCY_BUCKETS_SECONDS", "StairwaysCollector", "registry_for"]

# Decision latency buckets (seconds): the governor's limit is 10 ms, the gate's p99 10 ms.
LATENCY_BUCKETS_SECONDS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


class StairwaysCollector(Collector):
    """Yields the ``stairways_`` metrics from a :class:`~stairways.monitoring.service.Monitor`."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        """Metric families from the journal (refreshed first)."""
        m = self.monitor
        with m.lock:
            m.refresh()
            yield from self._families()

    def _families(self) -> Iterator[Metric]:
        m = self.monitor
        v = m.view
        f = m.figures()

        hist = HistogramMetricFamily(
            "stairways_decision_latency_seconds",
            "Decision latency, bar to verdicts, from the journal's decision records",
        )
        lat = [x / 1000.0 for x in v.latencies_ms if not math.isnan(x)]
        buckets = [(str(b), float(sum(1 for x in lat if x <= b))) for b in LATENCY_BUCKETS_SECONDS]
        buckets.append(("+Inf", float(len(lat))))
        hist.add_metric([], buckets, sum_value=float(sum(lat)))
        yield hist

        ex = CounterMetricFamily(
            "stairways_order_executions",
            "Orders by final status (filled, cancelled, rejected, refused) per symbol",
            labels=["symbol", "status"],
        )
        for (symbol, status), n in sorted(v.executions.items()):
            ex.add_metric([symbol, status], float(n))
        yield ex

        pos = GaugeMetricFamily(
            "stairways_position_shares",
            "Shares held per symbol (current session)",
            labels=["symbol"],
        )
        if v.current is not None:
            for symbol, q in v.current.book.positions().items():
                pos.add_metric([symbol], q)
        yield pos

        def gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc)
            if value is not None:
                g.add_metric([], float(value))
            return g

        yield gauge(
            "stairways_daily_pnl_dollars", "Net P&L of the latest trading day", f["day_net_pnl"]
        )
        yield gauge(
            "stairways_daily_loss_limit_dollars",
            "The stage's intraday loss limit (risk_limits record)",
            f["loss_limit"],
        )
        yield gauge(
            "stairways_daily_turnover_dollars",
            "Traded notional of the latest trading day (fills)",
            f["day_turnover"],
        )
        yield gauge(
            "stairways_drawdown_ratio",
            "Drawdown of the current session from its peak equity (fraction)",
            f["drawdown"],
        )
        yield gauge(
            "stairways_drawdown_limit_ratio",
            "Drawdown at which the governor flattens and halts (fraction)",
            f["drawdown_limit"],
        )

        breaches = CounterMetricFamily(
            "stairways_hard_limit_breaches",
            "Governor stops on a hard limit (loss limit, drawdown halt, ...)",
            labels=["limit_type"],
        )
        for rule, n in sorted(v.breaches.items()):
            breaches.add_metric([rule], float(n))
        yield breaches

        errors = CounterMetricFamily(
            "stairways_system_errors", "Orders refused or rejected by the broker"
        )
        errors.add_metric([], float(v.errors))
        yield errors

        state = GaugeMetricFamily(
            "stairways_governor_state",
            "The governor's state: 1 for the state in force, 0 for the others",
            labels=["state"],
        )
        for s in TradingState:
            state.add_metric([s.value], 1.0 if v.governor.state is s else 0.0)
        yield state

        yield gauge(
            "stairways_broker_connected",
            "1 when the broker's last journaled connection event is a connect, 0 after a "
            "disconnect (absent before any)",
            None if v.broker_connected is None else float(v.broker_connected),
        )
        yield gauge(
            "stairways_feed_age_seconds",
            "Seconds since the newest bar was journaled",
            f["feed_age"],
        )
        yield gauge(
            "stairways_feed_stale_limit_seconds",
            "The stage's stale-data limit (order_flow.stale_data_seconds)",
            f["feed_stale_seconds"],
        )
        yield gauge(
            "stairways_session_open", "1 while a session is running, else 0", f["session_open"]
        )

        progress = GaugeMetricFamily(
            "stairways_gate_progress",
            "Share of the ladder stage's gates that pass on the figures so far (0 to 1)",
            labels=["model_id", "stage"],
        )
        value = GaugeMetricFamily(
            "stairways_gate_value",
            "A ladder gate's figure so far (days, dollars, fractions, milliseconds)",
            labels=["model_id", "stage", "gate"],
        )
        for st in m.ladder_rows():
            checks = st["checks"]
            if checks:
                passed = sum(1 for c in checks if c["passed"]) / len(checks)
                progress.add_metric([st["model_id"], st["stage"]], passed)
            for c in checks:
                if c["value"] is not None:
                    value.add_metric([st["model_id"], st["stage"], c["name"]], float(c["value"]))
        yield progress
        yield value


def registry_for(monitor: Monitor) -> CollectorRegistry:
    """A registry holding only the Stairways collector (no process metrics of the server)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StairwaysCollector(monitor))
    return reg
