"""The governor on the real journal and its memory in the journal's database."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.errors import InputError
from stairways.journal import (
    EventKind,
    GroupCommit,
    Journal,
    JournalLocation,
    MacKey,
    verify_journal,
)
from stairways.risk import ports
from stairways.risk.governor import Governor, memory_key
from stairways.risk.limits import load_stage
from stairways.risk.operator import halt, resume
from stairways.risk.ports import InMemoryStateStore
from stairways.risk.state import StateStoreError, TradingStateMachine, TransitionError
from stairways.risk.store import SqlStateStore
from stairways.risk.types import Check, TradingState
from tests.unit.risk.helpers import DAY, OPERATOR, account, intent

KEY = MacKey(b"risk-store-test-journal-mac-key-0123456789")


def test_every_kind_the_governor_writes_is_a_journal_kind() -> None:
    kinds = {v for k, v in vars(ports).items() if k.startswith("KIND_")}
    assert kinds == {"governor_state", "verdict", "alert", "config", "operator_action"}
    assert kinds <= {k.value for k in EventKind}


def test_memory_round_trips_and_survives_reopening(tmp_path: Path) -> None:
    location = JournalLocation.sqlite(tmp_path / "journal.sqlite")
    store = SqlStateStore(location)
    assert store.load_state("risk.memory") is None
    store.save_state("risk.memory", {"peak_equity": 10_250.5, "accepted": ["a", "b"]}, DAY)
    store.save_state("risk.memory", {"peak_equity": 10_300.0, "accepted": ["a", "b", "c"]}, DAY)
    store.close()
    again = SqlStateStore(location)
    assert again.load_state("risk.memory") == {"peak_equity": 10_300.0, "accepted": ["a", "b", "c"]}
    again.close()


def test_a_damaged_memory_document_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    SqlStateStore(JournalLocation.sqlite(path)).save_state("risk.memory", {"x": 1}, DAY)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE risk_memory SET document = '{not json'")
    with pytest.raises(StateStoreError, match=r"risk\.memory.*not valid JSON"):
        SqlStateStore(JournalLocation.sqlite(path)).load_state("risk.memory")


def test_governor_on_the_journal_restarts_with_its_state_and_memory(tmp_path: Path) -> None:
    location = JournalLocation.sqlite(tmp_path / "journal.sqlite")
    limits = load_stage("paper")
    with Journal.open(location, KEY) as journal:
        store = SqlStateStore(location)
        gov = Governor(limits, journal=journal, store=store)
        gov.announce(DAY)
        gov.transition(TradingState.RUNNING, OPERATOR, "open", DAY)
        gov.submit(intent(target=10, intent_id="once"), account())
        gov.assess(account(realised=-600.0))  # 6% drawdown: sizes halve
        store.close()
    with Journal.open(location, KEY) as journal:
        store = SqlStateStore(location)
        gov = Governor(limits, journal=journal, store=store)
        assert gov.state is TradingState.RUNNING
        assert gov.mem.layer == 1 and gov.memory()["accepted"] == ["once"]
        v = gov.check(intent(target=10, intent_id="once"), account())
        assert Check.DUPLICATE_INTENT in {r.check for r in v.reasons}
        halt(journal, "alice", "end of test", DAY)
        assert store.load_state(memory_key("paper")) is not None
        report = verify_journal(journal, KEY)
        store.close()
    assert report.ok, report
    with Journal.open(location, KEY) as journal:
        kinds = [r.kind for r in journal.records()]
    assert kinds[:2] == ["config", "governor_state"]
    assert "verdict" in kinds and "alert" in kinds and kinds[-1] == "governor_state"


def test_operator_actions_refused_by_the_table_leave_no_operator_event() -> None:
    log = ports.InMemoryEventLog()
    resume(log, "alice", "open", DAY)  # PAUSED -> RUNNING
    n = len(log.events)
    with pytest.raises(TransitionError, match=r"already RUNNING.*nothing to resume"):
        resume(log, "alice", "again", DAY)
    assert len(log.events) == n
    halt(log, "alice", "stop", DAY)
    with pytest.raises(TransitionError, match="already EMERGENCY_STOP"):
        halt(log, "bob", "stop again", DAY)
    with pytest.raises(TransitionError, match="operator's name"):
        resume(log, " ", "nameless", DAY)
    assert [e.kind for e in log.events][-2:] == ["operator_action", "governor_state"]


def test_memory_in_postgresql(postgres_url: str) -> None:
    location = JournalLocation.postgres(postgres_url)
    store = SqlStateStore(location)
    store.save_state("risk.memory.test", {"layer": 2}, DAY)
    store.save_state("risk.memory.test", {"layer": 3}, DAY)
    assert SqlStateStore(location).load_state("risk.memory.test") == {"layer": 3}
    store.close()


def _committed(location: JournalLocation, key: str) -> dict[str, object] | None:
    """The memory as another process reads it (committed transactions only)."""
    other = SqlStateStore(location)
    try:
        return dict(other.load_state(key) or {}) or None
    finally:
        other.close()


def _bound_store_rides_the_journals_commits(location: JournalLocation) -> None:
    with Journal.open(location, KEY) as journal:
        store = SqlStateStore(location, journal=journal)
        assert store.commits_with_journal
        store.save_state("risk.memory.x", {"layer": 1}, DAY)
        store.save_state("risk.memory.x", {"layer": 2}, DAY)  # the later save replaces it
        assert journal.staged == 1
        assert _committed(location, "risk.memory.x") is None  # no commit of its own
        commits = journal.commits
        journal.append("decision", {"observation_hash": "h"}, DAY)
        assert journal.commits == commits + 1  # one commit for the record and the memory
        assert _committed(location, "risk.memory.x") == {"layer": 2}
        store.save_state("risk.memory.x", {"layer": 3}, DAY)
        assert store.load_state("risk.memory.x") == {"layer": 3}  # reads its own save
        store.close()


def test_a_store_bound_to_the_journal_saves_with_the_journals_next_commit(
    tmp_path: Path,
) -> None:
    _bound_store_rides_the_journals_commits(JournalLocation.sqlite(tmp_path / "journal.sqlite"))


def test_a_store_bound_to_the_journal_on_postgresql(fresh_postgres_url: str) -> None:
    _bound_store_rides_the_journals_commits(JournalLocation.postgres(fresh_postgres_url))


def test_a_store_is_bound_only_to_the_journal_of_its_own_database(tmp_path: Path) -> None:
    with (
        Journal.open(JournalLocation.sqlite(tmp_path / "a.sqlite"), KEY) as journal,
        pytest.raises(InputError, match=r"journal's own database.*b\.sqlite"),
    ):
        SqlStateStore(JournalLocation.sqlite(tmp_path / "b.sqlite"), journal=journal)
    assert not SqlStateStore(JournalLocation.sqlite(tmp_path / "c.sqlite")).commits_with_journal


def test_each_stage_keeps_its_own_memory() -> None:
    store = InMemoryStateStore()
    journal = ports.InMemoryEventLog()
    paper = Governor(load_stage("paper"), journal=journal, store=store)
    paper.assess(account(realised=-600.0))  # paper: 6% of $10,000 halves sizes
    micro = Governor(load_stage("micro_10"), journal=journal, store=store)
    assert micro.mem.layer == 0 and paper.mem.layer == 1
    assert set(store.documents) == {memory_key("paper")}


def test_a_naive_instant_in_an_account_state_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        account(datetime(2024, 3, 5, 11, 0))


_KINDS = ["governor_state", "alert", "fill", "decision"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(_KINDS), st.booleans()), min_size=0, max_size=25))
def test_last_seq_is_the_last_record_of_its_kind(
    tmp_path: Path, appends: list[tuple[str, bool]]
) -> None:
    path = tmp_path / f"j{len(list(tmp_path.iterdir()))}.sqlite"
    location = JournalLocation.sqlite(path)
    with Journal.open(location, KEY, group_commit=GroupCommit(max_delay_ms=1000.0)) as journal:
        for kind, durable in appends:
            payload = {"n": 1, "fee": 0.0, "observation_hash": "h"}
            journal.append_many([(kind, payload, DAY)], durable=durable)
        journal.flush()
        stored = list(journal.records())
        for kind in _KINDS:
            expected = max((r.seq for r in stored if r.kind == kind), default=0)
            assert journal.last_seq(kind) == expected
    with pytest.raises(InputError):
        journal.last_seq("no_such_kind")


class _CountingJournal(Journal):
    reads = 0

    def records(self, **kw: Any) -> Any:  # type: ignore[override]
        type(self).reads += 1
        return super().records(**kw)


def test_the_state_is_read_again_only_when_a_transition_was_appended(tmp_path: Path) -> None:
    location = JournalLocation.sqlite(tmp_path / "journal.sqlite")
    with _CountingJournal.open(location, KEY) as trader_log, Journal.open(location, KEY) as cli_log:
        trader = TradingStateMachine(trader_log)
        trader.transition(TradingState.RUNNING, OPERATOR, "open", DAY)
        reads = _CountingJournal.reads
        for _ in range(5):
            trader_log.append("alert", {"n": 1}, DAY)
            assert trader.sync().state is TradingState.RUNNING
        assert _CountingJournal.reads == reads  # nothing of its kind: nothing replayed
        # another process halts: the next sync reads it
        TradingStateMachine(cli_log).transition(TradingState.EMERGENCY_STOP, OPERATOR, "halt", DAY)
        assert trader.sync().state is TradingState.EMERGENCY_STOP
        assert _CountingJournal.reads == reads + 1
        assert trader.record.who == "alice" and trader.record.why == "halt"
