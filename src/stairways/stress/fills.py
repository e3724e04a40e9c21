"""Stress scenarios of the broker's answers: orders that fill in pieces, and orders it rejects.

- ``partial_fills``: the simulated broker fills every order (up to ``orders``) in chunks, one
  chunk per bar. After every bar the loop's session book (shares and cash) and the governor's
  own fill accounting are compared with the broker's account; no order may fill more than it
  asked; the session's P&L must equal the fills' cash flow less their fees.
- ``rejects``: the broker rejects the first ``count`` orders (IB error code ``code``); the
  model is made to change position on a few bars so that orders are certain to go out. Each
  reject must be journaled, no order is sent twice, the governor pauses trading at the stage's
  ``order_flow.max_consecutive_rejects`` and no decision sends an order after that.

Short forms (``--short``): partial fills closes the session after its first
:data:`SHORT_PARTIAL_BARS` bars plus the short tail, rejects the short tail after its forced
changes.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np

from stairways.brokers.orders import OrderState
from stairways.brokers.sim.broker import SimBroker
from stairways.brokers.sim.faults import FaultPlan, PartialFill, Reject
from stairways.clock import ManualClock
from stairways.live.loop import LiveLoop
from stairways.risk.limits import load_stage
from stairways.stress.results import ScenarioResult
from stairways.stress.scenarios import (
    FLAT,
    BurstPolicy,
    StressContext,
    _short,
    check_gates,
    common_figures,
    expected_pnl,
    fill_records,
    orders_submitted_after,
    pause_record,
    rehearse_scenario,
)
from stairways.stress.settings import PartialFillsConfig, RejectsConfig

__all__ = ["run_partial_fills", "run_rejects"]

log = logging.getLogger(__name__)

# The short form's fault window: every order of the session's first bars fills in pieces.
SHORT_PARTIAL_BARS = 30
# The rejects scenario makes the model change position on bars from this one on.
REJECTS_AT_BAR = 10


class _Reconciler:
    """After every bar: the loop's book and the governor's accounting against the broker."""

    def __init__(self) -> None:
        self.broker: SimBroker | None = None
        self.position_diff = 0.0
        self.cash_diff = 0.0
        self.governor_diff = 0.0
        self.checks = 0

    def wrap_broker(self, broker: SimBroker, clock: ManualClock) -> SimBroker:
        self.broker = broker
        return broker

    def attach(self, loop: LiveLoop) -> None:
        inner = loop.after_bar

        def after_bar(k: int) -> None:
            inner(k)
            self.check(loop)

        loop.after_bar = after_bar  # type: ignore[method-assign]

    def check(self, loop: LiveLoop) -> None:
        broker = self.broker
        if broker is None:
            raise RuntimeError("the reconciler was not given the simulated broker")
        held = np.array([float(x) for x in broker.portfolio.shares[0]])
        book = np.array([float(x) for x in loop.book.shares])
        gov = np.array([float(x) for x in loop.governor.mem.rt_shares])
        self.position_diff = max(self.position_diff, float(np.abs(book - held).max()))
        self.governor_diff = max(self.governor_diff, float(np.abs(gov - held).max()))
        cash = float(loop.book.figures()["cash"])
        self.cash_diff = max(self.cash_diff, abs(cash - float(broker.portfolio.cash[0])))
        self.checks += 1


def run_partial_fills(ctx: StressContext, cfg: PartialFillsConfig) -> ScenarioResult:
    """The partial fills scenario (see the module docstring)."""
    rec = _Reconciler()
    faults = FaultPlan(partial_fills=(PartialFill("*", cfg.fractions, cfg.orders),))
    run = rehearse_scenario(
        ctx,
        "partial_fills",
        faults=faults,
        wrap_broker=rec.wrap_broker,
        on_loop=rec.attach,
        last_bar=_short(ctx, SHORT_PARTIAL_BARS),
    )
    figures = common_figures(run)
    by_order: dict[str, list[float]] = defaultdict(list)
    for e in run.result.executions:
        by_order[e.client_order_id].append(float(e.quantity))
    over = 0
    for o in run.result.orders:
        got = sum(by_order.get(o.client_order_id, []))
        if abs(got) > abs(o.quantity) + FLAT or (got * o.quantity < 0.0):
            over += 1
    figures["overfilled_orders"] = float(over)
    figures["partially_filled_orders"] = float(sum(1 for v in by_order.values() if len(v) > 1))
    figures["position_difference"] = rec.position_diff
    figures["cash_difference"] = rec.cash_diff
    figures["governor_position_difference"] = rec.governor_diff
    figures["bars_reconciled"] = float(rec.checks)
    expected_pnl(figures, fill_records(run.records))
    res = ScenarioResult("partial_fills", "sim", figures, check_gates(figures, cfg.gates))
    res.notes.append(
        f"up to {cfg.orders} orders fill in chunks of "
        f"{', '.join(f'{f:.0%}' for f in cfg.fractions)} of their quantity, one chunk per bar; "
        "the loop's book and the governor's fill accounting are compared with the broker's "
        "account after every bar"
    )
    return res


def run_rejects(ctx: StressContext, cfg: RejectsConfig) -> ScenarioResult:
    """The rejects scenario (see the module docstring)."""
    limit = load_stage(ctx.stage, ctx.risk_dir).order_flow.max_consecutive_rejects
    faults = FaultPlan(rejects=(Reject("*", cfg.code, "Order rejected - stress suite", cfg.count),))
    at_bar = REJECTS_AT_BAR
    policy = BurstPolicy(ctx.policy, at_bar, cfg.count + 2)
    run = rehearse_scenario(
        ctx,
        "rejects",
        policy=policy,
        faults=faults,
        on_loop=policy.attach,
        last_bar=_short(ctx, at_bar + cfg.count + 2),
    )
    figures = common_figures(run)
    recs = run.records
    at_broker = {o.client_order_id for o in run.result.orders if o.state == OrderState.REJECTED}
    journaled = [
        r
        for r in recs
        if r.kind == "order_status"
        and r.payload.get("state") == "rejected"
        and "reason" in r.payload
    ]
    journaled_ids = {str(r.payload["client_order_id"]) for r in journaled}
    pause = pause_record(recs, "rejects")
    submitting: dict[str, int] = defaultdict(int)
    for r in recs:
        if r.kind == "order" and r.payload.get("type") == "submitting":
            submitting[str(r.payload["client_order_id"])] += 1
    figures["rejects"] = float(len(at_broker))
    figures["rejects_journaled"] = float(len(journaled_ids))
    figures["unjournaled_rejects"] = float(len(at_broker - journaled_ids))
    figures["resubmissions"] = float(sum(n - 1 for n in submitting.values() if n > 1))
    figures["reject_limit"] = float(limit)
    figures["reject_pause"] = float(pause is not None)
    if pause is not None:
        before = len({str(r.payload["client_order_id"]) for r in journaled if r.seq < pause.seq})
        figures["rejects_before_pause"] = float(before)
        figures["pause_at_limit"] = float(before == limit)
        figures["decision_orders_after_pause"] = float(orders_submitted_after(recs, pause.seq))
    res = ScenarioResult("rejects", "sim", figures, check_gates(figures, cfg.gates))
    res.notes.append(
        f"the broker rejects the first {cfg.count} orders (code {cfg.code}); decisions change "
        f"position on {cfg.count + 2} bars from bar {at_bar}; the stage pauses trading after "
        f"{limit} rejects in a row (order_flow.max_consecutive_rejects)"
    )
    return res
