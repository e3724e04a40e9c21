"""Fills are accounted once per execution id: a restart replays the broker's executions into a
governor restored from any saved memory, and the memory ends exactly as if every fill had been
accounted once (loss streak, round trips, the lock), whichever save the crash came after."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.risk.ports import InMemoryEventLog, InMemoryStateStore
from stairways.risk.state import StateStoreError
from stairways.risk.types import FillReport
from tests.unit.risk.helpers import DAY, account, new_governor


def _fills(moves: list[tuple[int, float]]) -> list[FillReport]:
    """Round trips in NVDA: buy ``q`` at 100, sell at ``100 + d`` (a loss when d < 0)."""
    out: list[FillReport] = []
    for k, (q, d) in enumerate(moves):
        at = DAY + timedelta(minutes=2 * k)
        for side, price in ((1, 100.0), (-1, 100.0 + d)):
            out.append(
                FillReport(
                    symbol="NVDA",
                    quantity=float(side * q),
                    price=price,
                    commission=0.35,
                    at=at,
                    order_id=f"o{k}{side}",
                    exec_id=f"SIM-{len(out) + 1:08d}",
                )
            )
    return out


MOVES = st.lists(
    st.tuples(st.integers(1, 20), st.sampled_from([-2.0, -0.5, 0.5, 3.0])), min_size=1, max_size=8
)


class _Saves(InMemoryStateStore):
    """Keeps every saved document: a crash may come after any of them."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[dict[str, Any]] = []

    def save_state(self, key: str, value: Mapping[str, Any], ts: datetime) -> None:
        super().save_state(key, value, ts)
        self.history.append(copy.deepcopy(dict(value)))


@settings(max_examples=60, deadline=None)
@given(MOVES, st.data())
def test_replaying_every_execution_after_any_save_accounts_each_fill_once(
    moves: list[tuple[int, float]], data: st.DataObject
) -> None:
    fills = _fills(moves)
    saves = _Saves()
    journal = InMemoryEventLog()
    first = new_governor(journal=journal, store=saves)
    first.assess(account(DAY))
    for f in fills:
        assert first.record_fill(f)
        first.flush(f.at)
    reference = first.memory()
    # The crash came after any one of the saves; the restart finds that document.
    crash = data.draw(st.integers(0, len(saves.history) - 1), label="last save before the crash")
    store = InMemoryStateStore()
    store.documents[first.memory_key] = saves.history[crash]
    again = new_governor(journal=journal, store=store)
    known = set(saves.history[crash]["fills"])
    counted = [again.record_fill(f) for f in fills]
    assert counted == [f.exec_id not in known for f in fills]
    assert again.memory()["fills"] == sorted(f.exec_id for f in fills)
    mine = again.memory()
    for key in ("loss_streak", "lock_until", "rt_row", "rt_shares", "rt_avg", "rt_pnl"):
        assert mine[key] == reference[key], key


def test_a_replayed_fill_is_skipped_and_a_fill_without_an_id_always_counts() -> None:
    gov = new_governor()
    gov.assess(account(DAY))
    (buy, _sell) = _fills([(5, 1.0)])
    assert gov.record_fill(buy) is True
    assert gov.record_fill(buy) is False
    assert gov.memory()["rt_shares"][0] == 5.0
    anonymous = FillReport(
        symbol="NVDA", quantity=5.0, price=100.0, commission=0.0, at=DAY, order_id="x"
    )
    assert gov.record_fill(anonymous) is True
    assert gov.record_fill(anonymous) is True
    assert gov.memory()["rt_shares"][0] == 15.0


def test_a_new_session_forgets_the_previous_sessions_execution_ids() -> None:
    gov = new_governor()
    gov.assess(account(DAY))
    (buy, sell) = _fills([(5, 1.0)])
    gov.record_fill(buy)
    gov.record_fill(sell)
    assert len(gov.memory()["fills"]) == 2
    gov.assess(account(DAY + timedelta(days=1)))
    assert gov.memory()["fills"] == []


def _legacy_memory_after(fills: list[FillReport]) -> tuple[InMemoryStateStore, str]:
    """A store holding the memory a governor saved after ``fills``, as the version before
    fills were listed by execution id wrote it (no ``fills``, no ``fills_complete``)."""
    gov = new_governor()
    gov.assess(account(DAY))
    for f in fills:
        gov.record_fill(f)
    doc = gov.memory()
    del doc["fills"], doc["fills_complete"]
    store = InMemoryStateStore()
    store.documents[gov.memory_key] = doc
    return store, gov.memory_key


def test_a_memory_lists_its_fills_completely_unless_an_earlier_version_saved_it() -> None:
    gov = new_governor()
    assert gov.memory()["fills_complete"] is True
    store, _ = _legacy_memory_after(_fills([(5, -2.0)]))
    restored = new_governor(store=store)
    assert restored.memory()["fills_complete"] is False
    assert restored.memory()["fills"] == []


def test_resuming_into_an_earlier_versions_memory_of_the_same_day_is_refused() -> None:
    fills = _fills([(5, -2.0), (3, -0.5)])
    store, key = _legacy_memory_after(fills[:2])
    gov = new_governor(store=store)
    before = gov.memory()
    with pytest.raises(StateStoreError) as err:
        gov.replay_fills(fills, "R20250303p123456-1", DAY + timedelta(minutes=30))
    message = str(err.value)
    assert "session R20250303p123456-1 cannot resume" in message
    assert key in message and "SIM-00000001" in message
    assert "Finish this session with the Stairways version that started it" in message
    assert gov.memory() == before  # nothing counted


def test_an_earlier_versions_memory_of_another_day_or_with_nothing_unknown_goes_ahead() -> None:
    fills = _fills([(5, -2.0)])
    store, _ = _legacy_memory_after([])
    gov = new_governor(store=store)
    assert gov.memory()["fills_complete"] is False
    assert gov.replay_fills([], "S", DAY + timedelta(minutes=30)) == 0
    assert gov.memory()["fills_complete"] is True
    # complete from then on: a fill the memory now lists is skipped, a new one counts
    assert gov.replay_fills(fills[:1], "S", DAY + timedelta(minutes=31)) == 1
    assert gov.replay_fills(fills[:1], "S", DAY + timedelta(minutes=32)) == 0
    store, _ = _legacy_memory_after(fills)
    other_day = new_governor(store=store)
    later = DAY + timedelta(days=1)
    assert other_day.replay_fills(fills, "S2", later) == 2
    assert other_day.memory()["fills_complete"] is True
