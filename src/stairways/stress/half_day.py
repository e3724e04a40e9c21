"""The half-day stress scenario: the end-of-day flatten on an early close (XNYS calendar).

The session replayed is a half day (13:00 close, such as the day after Thanksgiving), by
default the first one of the split. From ``hold_minutes_before_close`` before the close the
model is made to hold the largest position its action set allows (and to stay flat before,
so that no earlier rule ends its day), so the governor's
close-relative rules must act: no new exposure from ``session.no_new_exposure_before_close``
and every position closed by ``session.flatten_before_close`` seconds before the early close.
Fill times are the broker's: a market order fills at its bar's open (the bar's start), a close
at the last close at the session's close.

Decision latency is read on the session's clock here (zero): on a busy machine the stage's
latency guard would pause trading, and this scenario is about the close (latency has its own
gates in the flash crash and decision flood scenarios). The scenario has no shorter form: the
close is what it tests, and a half day is 210 bars.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from stairways.brokers.sim.broker import SimBroker
from stairways.clock import EXCHANGE_TZ, ManualClock
from stairways.data import calendar as cal
from stairways.data.splits import resolve_split
from stairways.errors import InputError
from stairways.live.loop import LiveLoop
from stairways.live.model import LivePolicy
from stairways.market.actions import apply_action, n_actions
from stairways.risk.limits import load_stage
from stairways.stress.results import ScenarioResult
from stairways.stress.scenarios import (
    FLAT,
    PolicyProxy,
    StressContext,
    check_gates,
    common_figures,
    rehearse_scenario,
)
from stairways.stress.settings import HalfDayConfig

__all__ = ["first_half_day", "run_half_day"]

log = logging.getLogger(__name__)

FULL_SESSION_MINUTES = 390
BAR = timedelta(minutes=1)


def first_half_day(start: date, end: date, calendar: str) -> date | None:
    """The first early-close session between ``start`` and ``end`` (None when there is none)."""
    s = cal.sessions(start, end, calendar)
    for d, minutes in zip(s.dates, s.minutes, strict=True):
        if int(minutes) < FULL_SESSION_MINUTES:
            return d.date()
    return None


class _HoldPolicy(PolicyProxy):
    """Before decision ``start`` the action that leaves the smallest gross target (flat), from
    it on the one that leaves the largest (the model's own action when it is as good)."""

    def __init__(self, inner: LivePolicy, start: int) -> None:
        super().__init__(inner)
        self.start = start
        self.k = 0
        self.loop: LiveLoop | None = None
        self.forced = 0

    def new_session(self) -> None:
        self._inner.new_session()
        self.k = 0

    def act(self, obs: np.ndarray) -> int:
        action = int(self._inner.act(obs))
        loop = self.loop
        if loop is not None:
            sign = 1.0 if self.k >= self.start else -1.0
            now = loop.targets.copy()
            out = now.copy()
            apply_action(loop.set_id, action, now, out)
            best, score = action, sign * float(np.abs(out).sum())
            for a in range(n_actions(loop.market.action_set, len(now))):
                out[:] = now
                apply_action(loop.set_id, a, now, out)
                g = sign * float(np.abs(out).sum())
                if g > score + 1e-12:
                    best, score = a, g
            if best != action:
                self.forced += 1
            action = best
        self.k += 1
        return action


def _flat_since(executions: list[Any], symbols: tuple[str, ...]) -> datetime | None:
    """When the account became flat for good (None: never held, or not flat at the end)."""
    pos = dict.fromkeys(symbols, 0.0)
    since: datetime | None = None
    for e in executions:
        pos[e.symbol] += float(e.quantity)
        flat = all(abs(q) <= FLAT for q in pos.values())
        since = (since or _fill_time(e)) if flat else None
    return since


def _fill_time(e: Any) -> datetime:
    t: datetime = e.time
    # the simulated broker's closing fills are at the last bar's close, stamped with its start
    return t + BAR if str(e.client_order_id).startswith("sw-flatten") else t


def run_half_day(ctx: StressContext, cfg: HalfDayConfig) -> ScenarioResult:
    """The half-day scenario (see the module docstring)."""
    data = ctx.policy.cfg.data
    split = cfg.split or ctx.split
    day = cfg.day
    if day is None:
        rng = resolve_split(data, split)
        day = first_half_day(rng.start, rng.end, data.calendar)
        if day is None:
            raise InputError(
                f"split {split!r} ({rng.start}..{rng.end}) has no early-close session; set "
                "half_day.day and half_day.split in the stress config"
            )
    s = cal.sessions(day, day, data.calendar)
    if len(s) == 0 or int(s.minutes[0]) >= FULL_SESSION_MINUTES:
        raise InputError(f"half_day.day {day} is not an early-close {data.calendar} session")
    risk_dir = cfg.risk_dir or ctx.risk_dir
    rules = load_stage(ctx.stage, risk_dir).session
    close = pd.Timestamp(s.closes[0]).to_pydatetime()
    window = close - timedelta(seconds=rules.no_new_exposure_before_close)
    hold_from = int(s.minutes[0]) - cfg.hold_minutes_before_close
    policy = _HoldPolicy(ctx.policy, hold_from)
    clocks: list[ManualClock] = []

    def capture(broker: SimBroker, clock: ManualClock) -> SimBroker:
        clocks.append(clock)
        return broker

    def attach(loop: LiveLoop) -> None:
        policy.loop = loop
        loop.stopwatch = clocks[0]

    sub = dataclasses.replace(ctx, day=day, split=split, risk_dir=risk_dir)
    run = rehearse_scenario(sub, "half_day", policy=policy, wrap_broker=capture, on_loop=attach)
    figures = common_figures(run)
    symbols = tuple(data.symbols)
    executions = sorted(run.result.executions, key=lambda e: (_fill_time(e), e.exec_id))
    flat = _flat_since(executions, symbols)
    pos = dict.fromkeys(symbols, 0.0)
    held_at_window = 0.0
    adding = 0
    for e in executions:
        before = pos[e.symbol]
        if _fill_time(e) >= window and held_at_window == 0.0:
            held_at_window = float(sum(abs(q) for q in pos.values()))
        pos[e.symbol] += float(e.quantity)
        if _fill_time(e) >= window and abs(pos[e.symbol]) > abs(before) + FLAT:
            adding += 1
    figures["session_minutes"] = float(s.minutes[0])
    figures["early_close"] = float(int(s.minutes[0]) < FULL_SESSION_MINUTES)
    figures["flatten_before_close_seconds"] = float(rules.flatten_before_close)
    figures["held_into_window"] = float(held_at_window > FLAT)
    figures["fills_adding_exposure_in_window"] = float(adding)
    figures["forced_actions"] = float(policy.forced)
    if flat is not None:
        before_close = (close - flat).total_seconds()
        figures["flat_seconds_before_close"] = before_close
        figures["flat_margin_seconds"] = before_close - rules.flatten_before_close
    res = ScenarioResult("half_day", "sim", figures, check_gates(figures, cfg.gates))
    res.notes.append(
        f"{day} closes at {close.astimezone(EXCHANGE_TZ):%H:%M} exchange time "
        f"({int(s.minutes[0])} minutes); the model stays flat, then holds its largest position "
        f"from bar {hold_from}; the stage ({ctx.stage}, {risk_dir}) flattens "
        f"{rules.flatten_before_close:g} s and stops new exposure "
        f"{rules.no_new_exposure_before_close:g} s before the close"
    )
    return res
