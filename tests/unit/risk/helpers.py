"""Builders shared by the risk tests: a governor on an in-memory journal and account states."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from stairways.risk.governor import Governor
from stairways.risk.limits import RiskLimits, load_stage
from stairways.risk.ports import InMemoryEventLog, InMemoryStateStore
from stairways.risk.state import Actor
from stairways.risk.types import (
    AccountState,
    Intent,
    MarketMark,
    OpenOrder,
    Position,
    TradingState,
)

NY = ZoneInfo("America/New_York")
# A regular Tuesday session (09:30-16:00) and a half day (the day after Thanksgiving, 13:00).
DAY = datetime(2024, 3, 5, 11, 0, tzinfo=NY)
HALF_DAY = datetime(2023, 11, 24, 11, 0, tzinfo=NY)
CLOSE = datetime(2024, 3, 5, 16, 0, tzinfo=NY)
OPERATOR = Actor.operator("alice")

_ids = itertools.count()


def new_governor(
    stage: str | RiskLimits = "paper",
    *,
    journal: InMemoryEventLog | None = None,
    store: InMemoryStateStore | None = None,
    running: bool = True,
    at: datetime = DAY,
) -> Governor:
    """A governor for ``stage`` on in-memory ports, RUNNING unless asked otherwise."""
    limits = load_stage(stage) if isinstance(stage, str) else stage
    gov = Governor(
        limits,
        journal=journal if journal is not None else InMemoryEventLog(),
        store=store if store is not None else InMemoryStateStore(),
    )
    if running and gov.state is not TradingState.RUNNING:
        gov.transition(TradingState.RUNNING, OPERATOR, "start trading", at)
    return gov


def limits_with(stage: str, **changes: Any) -> RiskLimits:
    """The stage's limits with keys replaced; key paths use ``__`` (``exposure__allow_short``)."""
    data = load_stage(stage).model_dump()
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return RiskLimits.model_validate(data)


def account(
    now: datetime = DAY,
    *,
    positions: Mapping[str, float] | None = None,
    prices: Mapping[str, float] | None = None,
    bar_age: float = 30.0,
    open_orders: tuple[OpenOrder, ...] = (),
    realised: float = 0.0,
    unrealised: float = 0.0,
    fees: float = 0.0,
    turnover: float = 0.0,
    cash: float = 10_000.0,
) -> AccountState:
    """An account at ``now`` with last bars ``bar_age`` seconds old."""
    px = {"NVDA": 100.0, "MSFT": 400.0} if prices is None else dict(prices)
    at = now - timedelta(seconds=bar_age)
    return AccountState(
        now=now,
        cash=cash,
        positions={s: Position(q, px.get(s, 0.0)) for s, q in (positions or {}).items()},
        open_orders=open_orders,
        marks={s: MarketMark(p, at, bar_volume=1e6, bar_sigma=0.001) for s, p in px.items()},
        realised_pnl=realised,
        unrealised_pnl=unrealised,
        fees=fees,
        day_turnover=turnover,
    )


def intent(
    symbol: str = "NVDA",
    *,
    target: float | None = None,
    qty: float | None = None,
    intent_id: str | None = None,
    limit_price: float | None = None,
    decision_price: float | None = None,
) -> Intent:
    """An intent with a fresh id unless one is given."""
    return Intent(
        intent_id=intent_id or f"intent-{next(_ids)}",
        decision_id="decision-1",
        model_id="model-test",
        symbol=symbol,
        reason="test",
        target_shares=target,
        quantity=qty,
        limit_price=limit_price,
        decision_price=decision_price,
    )
