"""The governor's broker-reject rule: ``order_flow.max_consecutive_rejects`` rejects in a row
(a fill between resets the count) pause a running governor, once, with an alert."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.risk.limits import load_stage
from stairways.risk.ports import InMemoryEventLog, InMemoryStateStore
from stairways.risk.types import FillReport, TradingState
from tests.unit.risk.helpers import DAY, limits_with, new_governor


def test_shipped_stages_pause_after_three_rejects_by_default() -> None:
    for stage in ("paper", "micro_10", "scale_50"):
        assert load_stage(stage).order_flow.max_consecutive_rejects == 3


def test_a_limit_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="max_consecutive_rejects"):
        limits_with("paper", order_flow__max_consecutive_rejects=0)


def _fill(k: int) -> FillReport:
    return FillReport(
        symbol="NVDA", quantity=1.0 if k % 2 == 0 else -1.0, price=100.0, commission=0.0,
        at=DAY + timedelta(seconds=k), order_id=f"o{k}",
    )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=5),
    events=st.lists(st.sampled_from(["reject", "fill"]), max_size=25),
)
def test_pause_comes_exactly_at_the_first_run_of_limit_rejects(
    limit: int, events: list[str]
) -> None:
    journal = InMemoryEventLog()
    gov = new_governor(
        limits_with("paper", order_flow__max_consecutive_rejects=limit),
        journal=journal,
        store=InMemoryStateStore(),
    )
    streak = runs = 0
    expected_at: int | None = None
    paused_at: int | None = None
    for k, ev in enumerate(events):
        at = DAY + timedelta(seconds=k)
        if ev == "fill":
            gov.record_fill(_fill(k))
            streak = 0
            continue
        streak += 1
        if streak == limit and expected_at is None:
            expected_at = k
        if gov.record_reject(f"o{k}", "rejected", at) and paused_at is None:
            paused_at = k
        if streak == limit:
            streak, runs = 0, runs + 1
    assert paused_at == expected_at
    state = TradingState.PAUSED if expected_at is not None else TradingState.RUNNING
    assert gov.sync() is state
    alerts = [e for e in journal.of_kind("alert") if e.payload.get("kind") == "rejects"]
    assert len(alerts) == runs


def test_the_streak_survives_a_restart_of_the_governor() -> None:
    journal, store = InMemoryEventLog(), InMemoryStateStore()
    gov = new_governor("paper", journal=journal, store=store)
    assert not gov.record_reject("o1", "no", DAY)
    assert not gov.record_reject("o2", "no", DAY)
    again = new_governor("paper", journal=journal, store=store)
    assert again.record_reject("o3", "no", DAY)
    assert again.sync() is TradingState.PAUSED
