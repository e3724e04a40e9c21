"""The broker scenarios against the fake IB gateway with the real ib_async client.

``broker_disconnect_ibkr`` and ``order_burst_ibkr`` run the scenarios of
:mod:`stairways.stress.scenarios` through the IBKR session driver
(:func:`stairways.live.ibkr_session.run_ibkr_session`): the fake gateway
(:mod:`stairways.brokers.ibkr.fake_gateway`, loopback only) replays the stored session as 5-second
real-time bars in lockstep with the loop (the next minute once the loop has handled the last:
a replay that ran ahead while a busy machine kept the loop on a minute would fill its orders at
later prices and make it rebuild minutes without deciding, another session than the one meant),
orders go through the adapter over the TWS socket, fills come back from the gateway. The gates
are the sim scenarios' gates, from their own sections of ``config/stress/suite.yaml``.

- ``broker_disconnect_ibkr``: at bar ``at_bar`` the gateway cuts the client and refuses
  connections while it serves ``bars`` more minutes (the client reconnects with backoff,
  reconciles, and rebuilds the lost minutes from IB's historical bars); from
  ``latency_from_bar`` every call of the loop to the adapter takes ``added_latency_ms`` more
  (a real wait) for ``latency_bars`` bars. ``pause_flag_seconds`` and ``safe_state_seconds``
  are on the session's clock between the journal's disconnect alert and the governor's pause,
  as in the sim scenario; the wall-clock figures (``*_wall_ms``, from the cut) are the pause,
  the pause with no order working at the gateway, and the next connection.
- ``order_burst_ibkr``: ``changes`` consecutive decisions from ``at_bar`` that each change a
  position; fills and P&L are read from the gateway and the journal.

Short form (``--short``): the replay starts a few minutes before the fault and, some bars after
it, skips to the session's last minute (the loop rebuilds the skipped minutes from IB's
historical bars without deciding on them, then takes its closing step).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from stairways.brokers.ibkr.fake_gateway import FakeIBGateway, ReplayBar
from stairways.brokers.settings import BrokerConfig
from stairways.journal import JournalRecord
from stairways.live.ibkr_session import IbkrPlan, IbkrSessionResult, run_ibkr_session
from stairways.live.loop import LiveLoop
from stairways.live.session import load_session_bars
from stairways.risk.types import TradingState
from stairways.stress.results import ScenarioResult
from stairways.stress.scenarios import (
    SHORT_TAIL,
    BurstPolicy,
    LaggedBroker,
    ScenarioJournal,
    StressContext,
    burst_missed,
    check_gates,
    disconnect_figures,
    disconnect_missed,
    expected_pnl,
    fill_records,
    first_decision_ms,
    last_live_bar,
    latency_flatten,
)
from stairways.stress.settings import BrokerDisconnectConfig, OrderBurstConfig

__all__ = ["GATEWAY_SCENARIOS", "run_broker_disconnect_ibkr", "run_order_burst_ibkr"]

log = logging.getLogger(__name__)

# Short form: minutes replayed before the fault (after its window: SHORT_TAIL).
SHORT_LEAD = 5
# The longest the replay waits for the loop to handle a minute (a loop that hangs does not
# hold the day); far above a minute's handling even with the slow broker on a busy machine.
READY_TIMEOUT_SECONDS = 30.0


@dataclass
class _GatewayRun:
    result: IbkrSessionResult
    records: list[JournalRecord]
    breaches: int
    gateway_positions: dict[str, float]
    ordered: float
    filled: float
    orders: int
    loop: LiveLoop
    unwaited: int


class _Probe:
    """The loop as the driver builds it, the replay's lockstep, and wall-clock marks.

    Lockstep: the gateway serves the next minute once the loop has handled the last one
    (:meth:`ready`: its ``on_minute`` returned, whether it decided or not). The wait is bounded
    by :data:`READY_TIMEOUT_SECONDS`; a minute served without it is counted in ``unwaited``
    (the ``replay_minutes_unwaited`` figure), since a replay that runs ahead of the loop changes
    the session (fills at later prices, minutes rebuilt without a decision).
    """

    def __init__(self) -> None:
        self.loop: LiveLoop | None = None
        self.marks: dict[str, float] = {}
        self.handled = -1
        self.asked: dict[int, float] = {}
        self.unwaited: list[int] = []

    def attach(self, loop: LiveLoop) -> None:
        """Follow ``loop``: the last minute it has handled."""
        self.loop = loop
        inner = loop.on_minute

        def on_minute(*args: Any, **kwargs: Any) -> Any:
            try:
                return inner(*args, **kwargs)
            finally:
                self.handled = loop.last_bar

        loop.on_minute = on_minute  # type: ignore[method-assign]

    def ready(self, start: int) -> bool:
        """Whether the loop has handled the minute starting at ``start`` (epoch seconds); called
        on the gateway's thread."""
        loop = self.loop
        if loop is None:
            return False
        if loop.done:
            return True
        k = loop.observer.bar_index(datetime.fromtimestamp(start, UTC))
        if self.handled >= k:
            return True
        now = time.monotonic()
        first = self.asked.setdefault(start, now)
        if now - first > READY_TIMEOUT_SECONDS:
            log.warning(
                "the loop did not handle minute %d within %g s; the fake gateway goes on",
                k,
                READY_TIMEOUT_SECONDS,
            )
            self.unwaited.append(k)
            return True
        return False


class _Lagged(LaggedBroker):
    """The adapter as the loop sees it; while the loop's bar is in ``[start, end)`` every call
    the loop times (events, place, cancel, flatten) waits ``seconds`` more."""

    def __init__(self, inner: Any, probe: _Probe, start: int, end: int, seconds: float) -> None:
        super().__init__(inner)
        self._probe = probe
        self._start, self._end, self._seconds = start, end, seconds

    def _lag(self) -> None:
        loop = self._probe.loop
        if loop is not None and self._start <= loop.last_bar < self._end and not loop.done:
            time.sleep(self._seconds)

    def cancel(self, cid: str) -> Any:
        self._lag()
        return self._inner.cancel(cid)


def replay_minutes(
    store: Path, cfg_data: Any, symbols: tuple[str, ...], day: date, split: str | None
) -> list[dict[str, ReplayBar]]:
    """A stored session as the fake gateway replays it, minute by minute, each bar with its
    stored VWAP (the typical price where none is stored)."""
    _, minutes, vwaps = load_session_bars(store, cfg_data, symbols, day, split)
    return [
        {
            s: ReplayBar(
                start=int(b.start.timestamp()),
                open=b.open,
                high=b.high,
                low=b.low,
                close=b.close,
                volume=b.volume,
                vwap=vwap.get(s, (b.high + b.low + b.close) / 3.0),
            )
            for s, b in minute.items()
        }
        for minute, vwap in zip(minutes, vwaps, strict=True)
    ]


def _window(ctx: StressContext, n: int, first: int, last: int) -> list[int]:
    """The minutes the gateway serves live: all of them, or (short) around the fault plus the
    session's last minute."""
    if not getattr(ctx, "short", False):
        return list(range(n))
    lo = max(0, first - SHORT_LEAD)
    hi = min(n - 1, last + SHORT_TAIL)
    return [*range(lo, hi), n - 1]


def _run(
    ctx: StressContext,
    name: str,
    *,
    fault_first: int,
    fault_last: int,
    policy: Any = None,
    probe: _Probe | None = None,
    wrap_broker: Callable[[Any], Any] | None = None,
    heartbeat: Callable[[FakeIBGateway, datetime], None] | None = None,
    on_loop: Callable[[LiveLoop], None] | None = None,
) -> _GatewayRun:
    sj = ScenarioJournal.open(ctx, name)
    probe = probe or _Probe()
    data = ctx.policy.cfg.data
    minutes = replay_minutes(ctx.store, data, tuple(data.symbols), ctx.day, ctx.split)
    served = _window(ctx, len(minutes), fault_first, fault_last)
    try:
        with FakeIBGateway(server_version=178) as gw:
            # IB knows the day's bars so far: historical bars are served only for minutes
            # that ended before the client's clock (the request's end)
            for minute in minutes:
                for s, b in minute.items():
                    gw.history.setdefault(s, []).append(
                        (b.start, b.open, b.high, b.low, b.close, b.volume, b.vwap)
                    )
            gw.start_replay(
                [minutes[k] for k in served],
                quiet_seconds=0.02,
                away_minutes=0,
                ready=probe.ready,
                # the probe gives up first, and counts it
                ready_timeout=READY_TIMEOUT_SECONDS + 5.0,
            )
            bcfg = BrokerConfig.model_validate(
                {
                    "kind": "ibkr",
                    "ibkr": {
                        "port": gw.port,
                        # a refused reconnect fails fast (ib_async otherwise waits for the
                        # handshake until this timeout)
                        "connect_timeout_seconds": 1.0,
                        "reconnect_initial_seconds": 0.25,
                        "reconnect_max_seconds": 1.0,
                    },
                }
            )

            def built(loop: LiveLoop) -> None:
                probe.attach(loop)
                if on_loop is not None:
                    on_loop(loop)

            def beat(at: datetime, session_id: str) -> None:
                if heartbeat is not None:
                    heartbeat(gw, at)

            result = run_ibkr_session(
                policy if policy is not None else ctx.policy,
                IbkrPlan(
                    stage=ctx.stage,
                    day=ctx.day,
                    split=ctx.split,
                    operator="stress-suite",
                    risk_dir=ctx.risk_dir,
                    max_wall_seconds=1800.0,
                    first_bar_seconds=60.0,
                ),
                bcfg,
                journal=sj.journal,
                store_state=sj.states,
                location=sj.location,
                bar_store=ctx.store,
                heartbeat=beat,
                on_loop=built,
                wrap_broker=wrap_broker,
            )
            positions = gw.run(lambda: {s: q for s, (q, _) in gw.positions.items() if q})
            ordered = gw.run(lambda: sum(o.quantity for o in gw.orders.values()))
            filled = gw.run(lambda: sum(e.shares for e in gw.executions))
            orders = gw.run(lambda: len(gw.orders))
    finally:
        sj.close()
    records, breaches = sj.read()
    assert probe.loop is not None
    return _GatewayRun(
        result=result,
        records=records,
        breaches=breaches,
        gateway_positions=positions,
        ordered=float(ordered),
        filled=float(filled),
        orders=int(orders),
        loop=probe.loop,
        unwaited=len(probe.unwaited),
    )


def _common(run: _GatewayRun) -> dict[str, float]:
    s = run.result.summary
    figures = dict(s.get("figures", {}))
    book = sum(abs(float(q)) for q in dict(s.get("positions", {})).values())
    at_gateway = sum(abs(q) for q in run.gateway_positions.values())
    return {
        "bars": float(run.result.live_minutes),
        "rebuilt_bars": float(run.result.rebuilt_minutes),
        "decisions": float(s.get("decisions", 0)),
        "orders_sent": float(s.get("orders_sent", 0)),
        "gateway_orders": float(run.orders),
        "max_drawdown": float(figures.get("max_drawdown", 0.0)),
        "net_pnl": float(figures.get("pnl", 0.0)),
        "limit_breaches": float(run.breaches),
        "open_position_at_end": max(book, at_gateway),
        "decision_p50_ms": float(s.get("latency_ms_p50", math.nan)),
        "decision_p99_ms": float(s.get("latency_ms_p99", math.nan)),
        "first_decision_ms": first_decision_ms(run.records),
        "last_live_bar": float(last_live_bar(run.records)),
        "replay_minutes_unwaited": float(run.unwaited),
    }


def run_broker_disconnect_ibkr(ctx: StressContext, cfg: BrokerDisconnectConfig) -> ScenarioResult:
    """The broker disconnect and latency scenario against the fake gateway."""
    probe = _Probe()
    marks = probe.marks
    seconds = cfg.added_latency_ms / 1000.0

    def beat(gw: FakeIBGateway, at: datetime) -> None:
        loop = probe.loop
        if loop is None:
            return
        now = time.perf_counter()
        if "cut" not in marks and loop.last_bar >= cfg.at_bar:
            marks["cut"] = now
            gw.outage(cfg.bars)
            return
        if "cut" not in marks:
            return
        if "paused" not in marks and loop.governor.state is not TradingState.RUNNING:
            marks["paused"] = now
        if "safe" not in marks and "paused" in marks and not gw.run(_working(gw)):
            marks["safe"] = now
        adapter: Any = loop.broker  # the lagged IBKR adapter
        if "reconnected" not in marks and adapter.connected and adapter.connects > 1:
            marks["reconnected"] = now

    lag_end = cfg.latency_from_bar + cfg.latency_bars
    run = _run(
        ctx,
        "broker_disconnect_ibkr",
        fault_first=cfg.at_bar,
        fault_last=lag_end,
        probe=probe,
        wrap_broker=lambda b: _Lagged(b, probe, cfg.latency_from_bar, lag_end, seconds),
        heartbeat=beat,
    )
    figures = _common(run)
    notes: list[str] = []
    cut = marks.get("cut")
    if cut is not None:
        for mark in ("paused", "safe", "reconnected"):
            figures[f"{mark}_wall_ms"] = 1000.0 * (marks.get(mark, math.inf) - cut)
    recs = run.records
    notes.extend(disconnect_figures(recs, figures))
    figures["reconciliations"] = float(
        sum(1 for r in recs if r.payload.get("type") == "reconciled")
    )
    figures["latency_flatten"] = latency_flatten(recs, figures)
    res = ScenarioResult(
        "broker_disconnect_ibkr",
        "ibkr (fake gateway)",
        figures,
        check_gates(figures, cfg.gates),
        error=disconnect_missed(recs, cfg),
    )
    res.notes.extend(notes)
    res.notes.append(
        f"the gateway cut the client at bar {cfg.at_bar} and refused connections for "
        f"{cfg.bars} minutes; adapter calls +{cfg.added_latency_ms:g} ms for {cfg.latency_bars} "
        f"bars from bar {cfg.latency_from_bar}; wall-clock figures (*_wall_ms) from the cut"
    )
    return res


def _working(gw: FakeIBGateway) -> Callable[[], bool]:
    return lambda: any(not o.done for o in gw.orders.values())


def run_order_burst_ibkr(ctx: StressContext, cfg: OrderBurstConfig) -> ScenarioResult:
    """The order burst scenario against the fake gateway."""
    policy = BurstPolicy(ctx.policy, cfg.at_bar, cfg.changes)
    run = _run(
        ctx,
        "order_burst_ibkr",
        fault_first=cfg.at_bar,
        fault_last=cfg.at_bar + cfg.changes,
        policy=policy,
        on_loop=policy.attach,
    )
    figures = _common(run)
    figures["position_changes"] = float(policy.forced)
    figures["filled_share"] = run.filled / run.ordered if run.ordered else 0.0
    expected_pnl(figures, fill_records(run.records))
    ms = np.asarray(run.loop.latencies_ms) if run.loop.latencies_ms else np.zeros(1)
    figures["decision_max_ms"] = float(ms.max())
    res = ScenarioResult(
        "order_burst_ibkr",
        "ibkr (fake gateway)",
        figures,
        check_gates(figures, cfg.gates),
        error=burst_missed(run.records, cfg),
    )
    res.notes.append(
        f"{policy.forced} forced position changes from bar {cfg.at_bar} through the adapter "
        "and the fake gateway; expected P&L is the fills' cash flow less their fees"
    )
    return res


GATEWAY_SCENARIOS: dict[str, Callable[[StressContext, Any], ScenarioResult]] = {
    "broker_disconnect_ibkr": run_broker_disconnect_ibkr,
    "order_burst_ibkr": run_order_burst_ibkr,
}
