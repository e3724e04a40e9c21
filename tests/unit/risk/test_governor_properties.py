"""Property tests: for any sequence of intents, prices, fills and time, the governor's bounds hold.

A small simulated account (positions, average costs, cash, fees, turnover, working orders) is
driven by generated steps: intents (targets or quantities, sometimes with a decision price),
price moves, partial and full fills, stale bars, time passing (through the windows before the
close and past it), slow decisions, operator halts and releases, and restarts of the governor
on the same journal and store. The test keeps its own books and its own drawdown figures and
checks every verdict against them:

- an approved order never takes a position past the position limit, gross exposure past the
  gross limit, or the day's P&L after the order's estimated costs past the loss limit, when it
  adds exposure (sizes halved from the 5% drawdown layer);
- every approved order keeps its notional within the order limit and the day's turnover
  (fills, working orders and the order) within the turnover limit;
- in reduce-only mode (8% drawdown, the windows before the close, stale bars) no approved order
  increases a position's size or flips it;
- an emergency stop stays in force (every intent refused, restarts included) until an operator
  releases it.

The default run generates 200 scenarios; the ``slow`` run generates at least 10,000 and prints
how many ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.data.calendar import sessions
from stairways.market.actions import is_multiple_of_step
from stairways.market.costs import fill_orders
from stairways.risk.governor import Governor
from stairways.risk.limits import RiskLimits, load_stage
from stairways.risk.operator import halt, resume
from stairways.risk.ports import InMemoryEventLog, InMemoryStateStore
from stairways.risk.state import Actor, TransitionError
from stairways.risk.types import (
    AccountState,
    Decision,
    FillReport,
    Intent,
    MarketMark,
    OpenOrder,
    Position,
    TradingState,
    Verdict,
)
from tests.unit.risk.helpers import NY, limits_with

SYMBOLS = ("NVDA", "MSFT")
TOL = 1e-6
DEFAULT_EXAMPLES = 200
SLOW_EXAMPLES = 10_000

# Stages under test: the shipped ones plus tight variants that make every limit bind often.
_STAGES = {
    "paper": load_stage("paper"),
    "scale_50": load_stage("scale_50"),
    "micro_10": load_stage("micro_10"),
    # micro_10's dollar limits in whole shares: only cheap shares trade at all
    "whole_micro_10": limits_with("micro_10", sizing__quantity_decimals=0),
    "tight_paper": limits_with(
        "paper",
        exposure__max_gross_exposure=6_000.0,
        exposure__max_daily_turnover=15_000.0,
        loss__intraday_loss_limit=400.0,
        order_flow__max_orders_per_minute=4,
        order_flow__max_messages_per_second=3,
    ),
}
# Price ranges per stage: the fractional micro-lot stages trade real prices; whole shares need
# cheap ones.
_PRICES = {"paper": (20.0, 500.0), "tight_paper": (20.0, 500.0), "scale_50": (1.0, 500.0)}
_PRICES["micro_10"] = (1.0, 500.0)
_PRICES["whole_micro_10"] = (1.0, 12.0)
# A regular session and a half day (13:00 close), with their open and close from the calendar.
_DAYS = (datetime(2024, 3, 5, tzinfo=NY), datetime(2023, 11, 24, tzinfo=NY))
_SESSION = {
    day: (
        sessions(day.date(), day.date()).opens[0].to_pydatetime().astimezone(NY),
        sessions(day.date(), day.date()).closes[0].to_pydatetime().astimezone(NY),
    )
    for day in _DAYS
}


@dataclass
class Books:
    """The test's own account: what a broker would report, kept independently of the governor."""

    capital: float
    shares: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SYMBOLS, 0.0))
    avg: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SYMBOLS, 0.0))
    cash: float = 0.0
    realised: float = 0.0
    fees: float = 0.0
    turnover: float = 0.0
    orders: dict[str, OpenOrder] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    bar_at: dict[str, datetime] = field(default_factory=dict)

    def fill(self, symbol: str, qty: float, price: float, commission: float) -> None:
        s, a = self.shares[symbol], self.avg[symbol]
        self.cash -= qty * price + commission
        self.fees += commission
        self.turnover += abs(qty) * price
        if s == 0.0 or (s > 0) == (qty > 0):
            self.avg[symbol] = (s * a + qty * price) / (s + qty)
        else:
            closed = min(abs(qty), abs(s))
            self.realised += (price - a) * closed * (1.0 if s > 0 else -1.0)
            if round(s + qty, 10) == 0.0:
                self.avg[symbol] = 0.0
            elif (s + qty > 0) != (s > 0):
                self.avg[symbol] = price
        self.shares[symbol] = round(s + qty, 10)  # a broker's position: steps, no float noise

    @property
    def unrealised(self) -> float:
        return sum(self.shares[s] * (self.marks[s] - self.avg[s]) for s in SYMBOLS)

    @property
    def day_pnl(self) -> float:
        return self.realised + self.unrealised - self.fees

    def state(self, now: datetime) -> AccountState:
        return AccountState(
            now=now,
            cash=self.cash,
            positions={s: Position(q, self.avg[s]) for s, q in self.shares.items() if q},
            open_orders=tuple(self.orders.values()),
            marks={
                s: MarketMark(self.marks[s], self.bar_at[s], bar_volume=2e5, bar_sigma=0.002)
                for s in SYMBOLS
            },
            realised_pnl=self.realised,
            unrealised_pnl=self.unrealised,
            fees=self.fees,
            day_turnover=self.turnover,
        )


def _cost(limits: RiskLimits, qty: float, price: float) -> float:
    f = fill_orders(qty, price, 0.002, 2e5, limits.costs)
    return float(f.commission + f.spread_cost + f.impact_cost)


def _commission(limits: RiskLimits, qty: float, price: float) -> float:
    return float(fill_orders(qty, price, 0.002, 2e5, limits.costs).commission)


# --- steps -----------------------------------------------------------------------------------

_symbol = st.sampled_from(SYMBOLS)
_STEPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "intent": st.tuples(
        st.just("intent"),
        _symbol,
        st.sampled_from(("target", "qty")),
        st.one_of(st.integers(-5, 5), st.integers(-60, 60), st.integers(-400, 400)),
        st.sampled_from((None, None, None, 0.0, 0.01, 0.05)),
    ),
    "move": st.tuples(st.just("move"), _symbol, st.floats(-0.04, 0.04)),
    # a jump that makes drawdown layers and the loss limit reachable within a few steps
    "shock": st.tuples(st.just("move"), _symbol, st.sampled_from((-0.25, -0.12, 0.12))),
    "fill": st.tuples(st.just("fill"), _symbol, st.sampled_from((0.3, 1.0))),
    "advance": st.tuples(
        st.just("advance"), st.sampled_from((1.0, 7.0, 30.0, 61.0, 300.0, 1800.0))
    ),
    "assess": st.tuples(st.just("assess")),
    "stale": st.tuples(st.just("stale"), _symbol),
    "latency": st.tuples(st.just("latency"), st.sampled_from((0.002, 0.002, 0.012))),
    "halt": st.tuples(st.just("halt")),
    "release": st.tuples(st.just("release")),
    "restart": st.tuples(st.just("restart")),
}
# How often each kind of step is drawn: mostly trading, the rare events rare.
_WEIGHTS = {
    "intent": 12,
    "move": 5,
    "shock": 2,
    "fill": 6,
    "advance": 3,
    "assess": 3,
    "stale": 1,
    "latency": 2,
    "halt": 1,
    "release": 2,
    "restart": 1,
}
_step = st.sampled_from([k for k, w in _WEIGHTS.items() for _ in range(w)]).flatmap(
    lambda kind: _STEPS[kind]
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    stage = draw(st.sampled_from(sorted(_STAGES)))
    lo, hi = _PRICES[stage]
    fractional = _STAGES[stage].sizing.fractional
    return {
        "stage": stage,
        # intents in shares times this unit: fractional stages see fractional intents
        "unit": draw(st.sampled_from((0.0001, 0.001, 0.01, 1.0))) if fractional else 1.0,
        "day": draw(st.sampled_from(_DAYS)),
        "start_minutes": draw(st.sampled_from((5, 120, 200))),  # after the open
        "prices": {s: draw(st.floats(lo, hi)) for s in SYMBOLS},
        "steps": draw(st.lists(_step, min_size=10, max_size=60)),
    }


# --- the run ---------------------------------------------------------------------------------


class Run:
    """One scenario: the governor, the test's books and its own view of drawdown and state."""

    def __init__(self, sc: dict[str, Any], counts: dict[str, int]) -> None:
        self.limits = _STAGES[sc["stage"]]
        self.decimals = self.limits.sizing.quantity_decimals
        self.unit = sc["unit"]
        self.counts = counts
        self.open, self.close = _SESSION[sc["day"]]
        self.now = self.open + timedelta(minutes=sc["start_minutes"])
        self.books = Books(
            capital=self.limits.allocated_capital, cash=self.limits.allocated_capital
        )
        for sym, px in sc["prices"].items():
            self.books.marks[sym] = px
            self.books.bar_at[sym] = self.now
        self.journal = InMemoryEventLog()
        self.store = InMemoryStateStore()
        self.gov = Governor(self.limits, journal=self.journal, store=self.store)
        self.gov.transition(TradingState.RUNNING, Actor.operator("tester"), "start", self.now)
        self.halted = False
        self.stale: set[str] = set()
        self.peak = self.limits.allocated_capital
        self.layer = 0
        self.ids = 0

    # the test's own drawdown layer, observed whenever the governor observes the account
    def observe(self) -> None:
        equity = self.limits.allocated_capital + self.books.day_pnl
        self.peak = max(self.peak, equity)
        dd = 1.0 - equity / self.peak - 1e-9  # never above the governor's view
        d = self.limits.drawdown
        level = 3 if dd >= d.flatten_and_halt_at else 2 if dd >= d.reduce_only_at else 0
        if level == 0 and dd >= d.halve_sizes_at:
            level = 1
        if level > self.layer:
            self.counts[f"layer_{level}"] += 1
        self.layer = max(self.layer, level)

    def seconds_to_close(self) -> float:
        return (self.close - self.now).total_seconds()

    def step(self, st_: tuple[Any, ...]) -> None:
        kind = st_[0]
        if kind == "intent":
            self.intent(*st_[1:])
        elif kind == "move":
            sym, pct = st_[1], st_[2]
            self.books.marks[sym] = max(0.5, self.books.marks[sym] * (1.0 + pct))
            self.books.bar_at[sym] = self.now
            self.stale.discard(sym)
        elif kind == "fill":
            self.fill(st_[1], st_[2])
        elif kind == "advance":
            self.now += timedelta(seconds=st_[1])
            if self.now.date() != self.open.date():
                self.now = self.close + timedelta(minutes=30)  # stay on the session's day
            for sym in SYMBOLS:  # bars keep arriving unless a step made the feed stop
                if sym not in self.stale:
                    self.books.bar_at[sym] = self.now
        elif kind == "assess":
            self.assess()
        elif kind == "stale":
            self.books.bar_at[st_[1]] = self.now - timedelta(seconds=300)
            self.stale.add(st_[1])
        elif kind == "latency":
            self.gov.record_decision(st_[1], f"d{self.ids}", self.now)
        elif kind == "halt":
            self.halt()
        elif kind == "release":
            self.release()
        elif kind == "restart":
            self.gov = Governor(self.limits, journal=self.journal, store=self.store)
        if self.halted:
            assert self.gov.sync() is TradingState.EMERGENCY_STOP

    def halt(self) -> None:
        try:
            halt(self.journal, "tester", "property halt", self.now)
        except TransitionError:
            assert self.gov.sync() in (TradingState.EMERGENCY_STOP, TradingState.MAINTENANCE)
            return
        self.halted = True

    def release(self) -> None:
        for _ in range(2):
            if self.gov.sync() is TradingState.RUNNING:
                break
            resume(self.journal, "tester", "property release", self.now)
        self.halted = False

    def fill(self, sym: str, fraction: float) -> None:
        order = self.books.orders.get(sym)
        if order is None:
            return
        step = 10.0**-self.decimals
        part = math.floor(abs(order.quantity) * fraction / step + 1e-6) * step
        qty = math.copysign(round(min(max(step, part), abs(order.quantity)), 10), order.quantity)
        price = self.books.marks[sym]
        commission = _commission(self.limits, qty, price)
        self.books.fill(sym, qty, price, commission)
        self.gov.record_fill(
            FillReport(symbol=sym, quantity=qty, price=price, commission=commission, at=self.now)
        )
        left = round(order.quantity - qty, 10)
        if left == 0.0:
            del self.books.orders[sym]
        else:
            self.books.orders[sym] = OpenOrder(
                order_id=order.order_id, symbol=sym, quantity=left, intent_id=order.intent_id
            )

    def assess(self) -> None:
        self.observe()
        d = self.gov.assess(self.books.state(self.now))
        if self.halted:
            assert d.state is TradingState.EMERGENCY_STOP
        if d.cancel_all:
            self.books.orders.clear()
        for c in d.close_outs:
            if c.cancel_working:
                self.books.orders.pop(c.symbol, None)
            assert c.quantity == -self.books.shares[c.symbol], "a close-out brings it to flat"
            price = self.books.marks[c.symbol]
            self.books.fill(
                c.symbol, c.quantity, price, _commission(self.limits, c.quantity, price)
            )

    def intent(self, sym: str, kind: str, shares: int, decision_offset: float | None) -> None:
        self.ids += 1
        amount = round(shares * self.unit, 4)
        price = self.books.marks[sym]
        it = Intent(
            intent_id=f"i{self.ids}",
            decision_id=f"d{self.ids}",
            model_id="property",
            symbol=sym,
            reason="generated",
            target_shares=float(amount) if kind == "target" else None,
            quantity=float(amount) if kind == "qty" else None,
            decision_price=None if decision_offset is None else price * (1 + decision_offset),
        )
        acct = self.books.state(self.now)
        # figures before the check, from the test's own books
        turnover_used = self.books.turnover + sum(
            abs(o.quantity) * self.books.marks[o.symbol] for o in self.books.orders.values()
        )
        self.observe()
        verdict = self.gov.submit(it, acct)  # check, journal the verdict, save the memory
        self.counts["checks"] += 1
        self.verify(verdict, sym, price, turnover_used, acct)
        if verdict.decision is not Decision.REJECT:
            self.counts["approvals"] += 1
            self.books.orders[sym] = OpenOrder(
                order_id=f"o{self.ids}",
                symbol=sym,
                quantity=verdict.approved,
                intent_id=it.intent_id,
            )

    def verify(
        self, v: Verdict, sym: str, price: float, turnover_used: float, acct: AccountState
    ) -> None:
        lim = self.limits
        if self.halted:
            assert v.decision is Decision.REJECT and v.state is TradingState.EMERGENCY_STOP
        if v.decision is Decision.REJECT:
            assert v.approved == 0.0 and v.reasons
            return
        assert v.state is TradingState.RUNNING
        q = v.approved
        assert is_multiple_of_step(q, self.decimals) and q != 0.0
        assert q == round(q, self.decimals), "an approved quantity is its step's clean float"
        p = self.books.shares[sym]
        new = p + q
        factor = 0.5 if self.layer >= 1 else 1.0
        # every approved order: order size and turnover
        assert abs(q) * price <= lim.exposure.max_order_notional * factor + TOL
        assert turnover_used + abs(q) * price <= lim.exposure.max_daily_turnover + TOL
        increases = abs(new) > abs(p) or (p != 0.0 and new * p < 0.0)
        if not increases:
            return
        self.counts["increasing"] += 1
        # new exposure: position, gross exposure, loss limit after estimated costs
        assert abs(new) * price <= lim.exposure.max_position_notional * factor + TOL
        others = 0.0
        for s in SYMBOLS:
            if s == sym:
                continue
            o = self.books.orders[s].quantity if s in self.books.orders else 0.0
            held = self.books.shares[s]
            others += max(abs(held), abs(held + o)) * self.books.marks[s]
        assert others + abs(new) * price <= lim.exposure.max_gross_exposure * factor + TOL
        assert acct.day_pnl - _cost(lim, q, price) >= -lim.loss.intraday_loss_limit - TOL
        # reduce-only conditions: none may hold when exposure grows
        assert self.layer < 2, "reduce-only (8% drawdown) let exposure grow"
        assert self.seconds_to_close() > lim.session.no_new_exposure_before_close
        assert (self.now - self.books.bar_at[sym]).total_seconds() <= (
            lim.order_flow.stale_data_seconds
        )
        if not lim.exposure.allow_short:
            assert new >= 0.0


def _property_run(examples: int) -> dict[str, int]:
    counts = {"examples": 0, "steps": 0, "checks": 0, "approvals": 0, "increasing": 0}
    counts.update({"layer_1": 0, "layer_2": 0, "layer_3": 0})

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenarios())
    def run(sc: dict[str, Any]) -> None:
        counts["examples"] += 1
        r = Run(sc, counts)
        for s in sc["steps"]:
            counts["steps"] += 1
            r.step(s)

    run()
    return counts


def test_governor_bounds_hold_for_generated_sequences() -> None:
    counts = _property_run(DEFAULT_EXAMPLES)
    print(f"risk property cases: {counts}")
    assert counts["examples"] >= DEFAULT_EXAMPLES
    assert counts["approvals"] > 0 and counts["increasing"] > 0  # the bounds were exercised


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 4 CPU minutes; more wall time on a shared machine
def test_governor_bounds_hold_for_ten_thousand_generated_sequences() -> None:
    counts = _property_run(SLOW_EXAMPLES)
    print(f"risk property cases: {counts}")
    assert counts["examples"] >= SLOW_EXAMPLES
    assert counts["approvals"] > 1_000


# --- the state machine against a model -------------------------------------------------------

_attempt = st.tuples(
    st.sampled_from(list(TradingState)),
    st.sampled_from(("operator", "governor")),
    st.booleans(),  # restart before the attempt
)


@settings(max_examples=DEFAULT_EXAMPLES, deadline=None, database=None)
@given(st.lists(_attempt, min_size=1, max_size=30))
def test_state_machine_follows_the_table_and_the_stop_stays_latched(
    attempts: list[tuple[TradingState, str, bool]],
) -> None:
    from stairways.risk.state import TRANSITIONS, TradingStateMachine

    log = InMemoryEventLog()
    machine = TradingStateMachine(log)
    model = TradingState.PAUSED
    at = datetime(2024, 3, 5, 11, 0, tzinfo=NY)
    for to, role, restart in attempts:
        if restart:
            machine = TradingStateMachine(log)
        actor = Actor.operator("op") if role == "operator" else Actor.governor("rule")
        allowed = to in TRANSITIONS[model] and not (
            model is TradingState.EMERGENCY_STOP and role != "operator"
        )
        try:
            machine.transition(to, actor, "generated", at)
        except TransitionError:
            assert not allowed
        else:
            assert allowed
            model = to
        assert machine.state is model
        if model is TradingState.EMERGENCY_STOP:
            assert TradingStateMachine(log).state is TradingState.EMERGENCY_STOP
        at += timedelta(seconds=1)
