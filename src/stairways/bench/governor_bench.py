"""Latency of the risk governor's check (``stairways bench governor``).

Replays a year of real XNYS sessions (half days included) minute by minute on a random-walk
NVDA/MSFT market. On every bar a policy stand-in picks a grid9 action (held most of the time,
changed about every half hour), the market core turns it into target positions, and each
target that differs from the position becomes an intent, sent again on the next bar while it
is refused; now and then an intent is sent twice (a retry with the same id). Approved orders
fill at the next bar's open through the market core's cost model, and the governor's
``assess`` runs on every bar, so its memory, the session windows, close-outs, rate limits,
loss streaks and drawdown layers are all in play. ``--extra-intents`` adds random quantity
intents per bar for a heavier mix.

Every ``check`` is timed alone with ``time.perf_counter_ns`` (building the account state is
not timed); the first session is a warm-up and is not counted. Events are encoded as the
journal encodes them; start-up objects are frozen out of the garbage collector
(``gc.freeze``), as a long-running trader would do. Figures are wall clock on this machine:
other processes on a shared machine lengthen the tail, so the load average is printed with
them.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from stairways.clock import EXCHANGE_TZ
from stairways.data.calendar import Sessions, sessions
from stairways.errors import InputError
from stairways.market.actions import GRID9, apply_action, quantity_scale, target_quantity
from stairways.market.costs import fill_orders
from stairways.risk.governor import Governor
from stairways.risk.limits import RiskLimits, load_stage
from stairways.risk.ports import KIND_STATE, InMemoryEventLog, InMemoryStateStore, RecordedEvent
from stairways.risk.state import Actor
from stairways.risk.types import (
    AccountState,
    Decision,
    FillReport,
    Intent,
    MarketMark,
    OpenOrder,
    Position,
    TradingState,
)

__all__ = ["GOAL_P99_US", "GovernorBenchResult", "PathFigures", "run_governor_bench"]

GOAL_P99_US = 100.0
SYMBOLS = ("NVDA", "MSFT")


@dataclass(frozen=True)
class PathFigures:
    """Latency percentiles of one kind of call, in microseconds."""

    name: str
    count: int
    p50_us: float
    p99_us: float
    max_us: float


@dataclass(frozen=True)
class GovernorBenchResult:
    """What ``stairways bench governor`` prints."""

    stage: str
    sessions: int
    bars: int
    paths: tuple[PathFigures, ...]
    load: str

    def figure(self, name: str) -> PathFigures:
        """The figures of one path (``all``, ``approve``, ``reduce``, ``reject``, ...)."""
        for p in self.paths:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def meets_goal(self) -> bool:
        """Whether the p99 of all checks is under :data:`GOAL_P99_US`."""
        return self.figure("all").p99_us < GOAL_P99_US


class _EncodingLog(InMemoryEventLog):
    """A journal stand-in that encodes every event as the journal does (canonical JSON) but
    keeps only state transitions, so a year of verdicts does not pile up in memory (a real
    journal writes them to disk) and lengthen garbage collections."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded_bytes = 0

    def append(self, kind: str, payload: Mapping[str, Any], ts: datetime) -> RecordedEvent:
        """Encode the event; keep it only if it is a state transition."""
        encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        self.encoded_bytes += len(encoded)
        if kind == KIND_STATE:
            return super().append(kind, payload, ts)
        return RecordedEvent(0, kind, payload, ts)


def _figures(name: str, ns: list[int]) -> PathFigures:
    if not ns:
        return PathFigures(name, 0, float("nan"), float("nan"), float("nan"))
    a = np.asarray(ns, dtype=np.float64) / 1000.0
    return PathFigures(
        name, len(ns), float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())
    )


@dataclass
class _Account:
    """The simulated broker account of one session (what the live loop would report)."""

    cash: float
    shares: np.ndarray
    avg: np.ndarray
    realised: float = 0.0
    fees: float = 0.0
    turnover: float = 0.0

    def fill(self, j: int, q: float, px: float, commission: float) -> None:
        s = self.shares[j]
        if s != 0 and (s > 0) != (q > 0):
            closed = min(abs(q), abs(s))
            self.realised += (px - self.avg[j]) * closed * np.sign(s)
            if abs(q) >= abs(s):
                self.avg[j] = px if abs(q) > abs(s) else 0.0
        else:
            self.avg[j] = (s * self.avg[j] + q * px) / (s + q)
        self.shares[j] = round(s + q, 8)  # a broker's position: on the step grid, no dust
        self.cash -= q * px + commission
        self.fees += commission
        self.turnover += abs(q) * px

    def state(
        self,
        at: datetime,
        marks: dict[str, MarketMark],
        prices: np.ndarray,
        working: dict[str, OpenOrder],
    ) -> AccountState:
        return AccountState(
            now=at,
            cash=self.cash,
            positions={
                sym: Position(float(self.shares[j]), float(self.avg[j]))
                for j, sym in enumerate(SYMBOLS)
                if self.shares[j]
            },
            open_orders=tuple(working.values()),
            marks=marks,
            realised_pnl=self.realised,
            unrealised_pnl=float(np.sum(self.shares * (prices - self.avg))),
            fees=self.fees,
            day_turnover=self.turnover,
        )


def run_governor_bench(
    sessions_count: int = 251,
    extra_intents: int = 0,
    stage: str = "paper",
    seed: int = 0,
    start: str = "2023-11-01",
) -> GovernorBenchResult:
    """Replay ``sessions_count`` sessions from ``start`` and time every governor call.

    :param sessions_count: sessions replayed (the first is a warm-up); 251 is a year
    :param extra_intents: random quantity intents per bar beyond the policy's (a stress mix)
    :param stage: risk stage whose limits are used
    :param seed: seed of prices and actions
    :param start: first session date (the default range includes the Thanksgiving half day)
    """
    if sessions_count < 2:
        raise InputError("the governor benchmark needs at least 2 sessions (one is a warm-up)")
    limits = load_stage(stage)
    first = date.fromisoformat(start)
    cal = sessions(first, first + timedelta(days=2 * sessions_count + 10))
    if len(cal) < sessions_count:
        raise InputError(f"only {len(cal)} sessions after {start}")
    rng = np.random.default_rng(seed)
    # The governor's alerts and stops are journaled (in memory here); their log lines would
    # only add terminal output to the timings.
    risk_log = logging.getLogger("stairways.risk")
    level = risk_log.level
    risk_log.setLevel(logging.ERROR)
    try:
        return _replay(limits, cal, sessions_count, extra_intents, rng)
    finally:
        gc.unfreeze()
        risk_log.setLevel(level)


def _replay(
    limits: RiskLimits,
    cal: Sessions,
    sessions_count: int,
    extra_intents: int,
    rng: np.random.Generator,
) -> GovernorBenchResult:
    gov = Governor(limits, journal=_EncodingLog(), store=InMemoryStateStore())
    names = ("all", "approve", "reduce", "reject", "assess", "submit")
    timings: dict[str, list[int]] = {k: [] for k in names}
    prices = np.array([140.0, 380.0])
    # A full target as the live loop sizes it at this stage: the stage's notional lot in its
    # quantity steps (micro_10: $10 in 0.0001 shares), or the position limit in whole shares.
    max_position = limits.sizing.position_notional or limits.exposure.max_position_notional
    scale = quantity_scale(limits.sizing.quantity_decimals)
    bars = 0
    gc.collect()
    gc.freeze()  # start-up objects never need collecting again, as in a long-running trader
    for s in range(sessions_count):
        counted = s > 0
        open_ = cal.opens[s].to_pydatetime().astimezone(EXCHANGE_TZ)
        if gov.state is not TradingState.RUNNING:
            # a new session: an operator starts trading again after any pause of the last one
            gov.transition(TradingState.RUNNING, Actor.operator("bench"), "session start", open_)
        book = _Account(limits.allocated_capital, np.zeros(2), np.zeros(2))
        working: dict[str, OpenOrder] = {}
        targets = np.zeros(2)
        action = 4
        seq = 0
        marks: dict[str, MarketMark] = {}
        for m in range(int(cal.minutes[s])):
            now = open_ + timedelta(minutes=m, seconds=1)
            for j, sym in enumerate(SYMBOLS):  # last bar's orders fill at this bar's open
                order = working.pop(sym, None)
                if order is None:
                    continue
                f = fill_orders(order.quantity, prices[j], 0.0005, 5e4, limits.costs)
                book.fill(j, order.quantity, float(f.price), float(f.commission))
                gov.record_fill(
                    FillReport(
                        symbol=sym,
                        quantity=order.quantity,
                        price=float(f.price),
                        commission=float(f.commission),
                        at=now,
                    )
                )
            prices *= np.exp(rng.normal(0.0, 8e-4, 2))
            bar_at = now - timedelta(seconds=1)
            marks = {
                sym: MarketMark(float(prices[j]), bar_at, bar_volume=5e4, bar_sigma=0.0005)
                for j, sym in enumerate(SYMBOLS)
            }
            acct = book.state(now, marks, prices, working)
            t0 = time.perf_counter_ns()
            directive = gov.assess(acct)
            t1 = time.perf_counter_ns()
            if counted:
                timings["assess"].append(t1 - t0)
            if directive.cancel_all:
                working.clear()
            for c in directive.close_outs:
                working[c.symbol] = OpenOrder(
                    order_id=f"close-{s}-{m}-{c.symbol}", symbol=c.symbol, quantity=c.quantity
                )
            if rng.random() < 0.03:  # the policy changes its mind about every half hour
                action = int(rng.integers(0, 9))
            apply_action(GRID9, action, targets, targets)
            intents: list[Intent] = []
            for j, sym in enumerate(SYMBOLS):
                want = target_quantity(float(targets[j]), max_position, float(prices[j]), scale)
                if want != book.shares[j]:
                    seq += 1
                    intents.append(_intent(f"{s}-{m}-{seq}", sym, prices[j], target=want))
            if intents and rng.random() < 0.1:
                intents.append(intents[0])  # sent twice (a retry after a timeout): a duplicate
            for _ in range(extra_intents):
                seq += 1
                j = int(rng.integers(0, 2))
                qty = float(rng.integers(-20, 21)) or 1.0
                intents.append(_intent(f"{s}-{m}-{seq}", SYMBOLS[j], prices[j], quantity=qty))
            acct = book.state(now, marks, prices, working)
            for it in intents:
                t0 = time.perf_counter_ns()
                v = gov.check(it, acct)
                t1 = time.perf_counter_ns()
                if counted:
                    timings["all"].append(t1 - t0)
                    timings[v.decision.value].append(t1 - t0)
                if v.decision is not Decision.REJECT and it.symbol not in working:
                    working[it.symbol] = OpenOrder(
                        order_id=f"o-{it.intent_id}", symbol=it.symbol, quantity=v.approved
                    )
                    acct = book.state(now, marks, prices, working)
            if counted and m % 10 == 0:
                # the live loop's whole path: check, journal the verdict, save the memory
                j = m % 2
                it = _intent(f"{s}-{m}-submit", SYMBOLS[j], prices[j], quantity=1.0)
                t0 = time.perf_counter_ns()
                gov.submit(it, acct)
                timings["submit"].append(time.perf_counter_ns() - t0)
            if counted:
                bars += 1
        close = cal.closes[s].to_pydatetime().astimezone(EXCHANGE_TZ)
        gov.assess(book.state(close, marks, prices, working))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return GovernorBenchResult(
        stage=limits.stage,
        sessions=sessions_count - 1,
        bars=bars,
        paths=tuple(_figures(n, timings[n]) for n in names),
        load=f"load average {load} on {os.cpu_count()} CPUs",
    )


def _intent(
    ident: str,
    symbol: str,
    price: float,
    *,
    target: float | None = None,
    quantity: float | None = None,
) -> Intent:
    return Intent(
        intent_id=ident,
        decision_id=f"decision-{ident}",
        model_id="bench",
        symbol=symbol,
        reason="bench",
        target_shares=target,
        quantity=quantity,
        decision_price=float(price),
    )
