"""Staged upserts ride the journal's commits: a row of another table of the journal's database
is written inside the next commit, with the records appended before it, or not at all; a later
upsert of the same row replaces an earlier one; ``hold`` keeps the flusher out."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.errors import InputError
from stairways.journal import (
    GroupCommit,
    Journal,
    JournalError,
    JournalLocation,
    JournalReader,
    StagedUpsert,
    store,
    verify_journal,
)
from tests.unit.journal.helpers import KEY, events

NEVER = GroupCommit(max_delay_ms=1000.0, max_records=100_000)
FAST = GroupCommit(max_delay_ms=5.0, max_records=100_000)


def _open(path: Path, group: GroupCommit | None = NEVER) -> Journal:
    journal = Journal.open(JournalLocation.sqlite(path), KEY, group_commit=group)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS memo (k TEXT PRIMARY KEY, doc TEXT NOT NULL)")
    return journal


def _memo(k: str, n: int) -> StagedUpsert:
    return StagedUpsert("memo", "k", {"k": k, "doc": json.dumps({"n": n})})


def _stored(path: Path) -> tuple[int, dict[str, int]]:
    """(records committed, memo documents' n by key), as another process reads them."""
    with sqlite3.connect(path) as db:
        records = db.execute("SELECT count(*) FROM journal_events").fetchone()[0]
        memo = {k: json.loads(d)["n"] for k, d in db.execute("SELECT k, doc FROM memo")}
    return int(records), memo


def test_a_staged_upsert_lands_with_the_next_durable_append_and_the_last_one_wins(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path)
    try:
        journal.stage(_memo("a", 1))
        journal.stage(_memo("a", 2))  # replaces the first
        journal.stage(_memo("b", 7))
        assert journal.staged == 2
        assert _stored(path) == (0, {})  # nothing committed yet
        journal.append_many(events(3), durable=False)
        assert _stored(path) == (0, {})
        journal.append_many(events(1, start=3))  # durable: one transaction for all of it
        assert journal.staged == 0 and journal.pending == 0
        assert _stored(path) == (4, {"a": 2, "b": 7})
        assert journal.commits == 1
    finally:
        journal.close()


def test_flush_close_and_the_flusher_commit_staged_upserts(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path)
    journal.stage(_memo("a", 1))
    journal.flush()  # a barrier commits a staged upsert without any record
    assert _stored(path) == (0, {"a": 1})
    journal.stage(_memo("a", 2))
    journal.close()
    assert _stored(path) == (0, {"a": 2})
    path2 = tmp_path / "k.sqlite"
    journal = _open(path2, FAST)
    try:
        journal.stage(_memo("a", 3))
        deadline = time.monotonic() + 30.0
        while journal.commits == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _stored(path2) == (0, {"a": 3})
    finally:
        journal.close()


def test_hold_keeps_the_flusher_out_until_released(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path, FAST)
    try:
        with journal.hold():
            journal.append_many(events(2), durable=False)
            time.sleep(0.1)  # twenty flusher delays: it waits for the hold
            assert journal.pending == 2
            journal.stage(_memo("a", 2))
        deadline = time.monotonic() + 30.0
        while journal.commits == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _stored(path) == (2, {"a": 2})
        assert journal.commits == 1  # records and the upsert in one commit
    finally:
        journal.close()


def test_the_holders_own_durable_append_commits_inside_the_hold(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path)
    done = threading.Event()
    try:
        with journal.hold():
            journal.stage(_memo("a", 1))
            journal.append_many(events(1))
            done.set()
        assert done.is_set()
        assert _stored(path) == (1, {"a": 1})
    finally:
        journal.close()


def test_a_failing_upsert_fails_the_whole_commit(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path)
    try:
        journal.stage(StagedUpsert("memo", "k", {"k": "a", "doc": None}))  # NOT NULL
        with pytest.raises(JournalError, match="NOT NULL"):
            journal.append_many(events(2))
        assert _stored(path) == (0, {})  # the records went down with it
        journal.append_many(events(2, start=2))
        assert _stored(path)[0] == 2
    finally:
        journal.close()
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        assert verify_journal(reader, KEY).ok


@pytest.mark.parametrize(
    ("table", "key", "row", "match"),
    [
        ("journal_events", "seq", {"seq": 1}, "append-only"),
        ("journal_meta", "name", {"name": "x"}, "append-only"),
        ("memo; DROP TABLE x", "k", {"k": "a"}, "plainly"),
        ("memo", "k", {"doc": "d"}, "needs its key"),
    ],
)
def test_staged_upserts_of_the_journals_tables_or_odd_names_are_refused(
    table: str, key: str, row: dict[str, object], match: str
) -> None:
    StagedUpsert("memo", "k", {"k": "a", "doc": "d"})  # a valid shape, remembered
    for _ in range(2):  # a refusal is not remembered as a pass
        with pytest.raises(InputError, match=match):
            StagedUpsert(table, key, row)


@pytest.mark.parametrize(
    "row", [{"k": "a"}, {"k": "a", "doc": "d"}, {"doc": "d", "k": "a", "n": 1}]
)
def test_the_sqlite_statement_of_a_staged_upsert_is_its_sql_with_question_marks(
    row: dict[str, object],
) -> None:
    upsert = StagedUpsert("memo", "k", row)
    expected = upsert.sql(lambda _column: "?")
    assert store._qmark_sql("memo", "k", tuple(row)) == expected
    assert expected.count("?") == len(row)


def test_the_writers_connection_is_wal_with_full_sync(tmp_path: Path) -> None:
    journal = _open(tmp_path / "j.sqlite")
    try:
        journal.append_many(events(1))
        conn = journal._write_raw
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # synchronous=FULL is 2: an acknowledged commit survives a power cut (the write-ahead
        # rule rests on it; NORMAL would not sync the WAL at each commit)
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        journal.close()


Op = tuple[str, int]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["fill", "decision", "flush", "stage_only"]), st.integers(1, 3)),
        min_size=1,
        max_size=14,
    )
)
def test_at_every_commit_the_memory_counts_exactly_the_records_committed(
    tmp_path_factory: pytest.TempPathFactory, ops: list[Op]
) -> None:
    """The live loop's two patterns: fills appended (buffered) then the memory that counts them
    staged; a decision's memory staged then the decision appended durably. Whatever commits,
    and whenever, the committed memory counts exactly the committed records: never ahead (it
    would refuse a re-decided intent), never behind (it would miss a fill)."""
    path = tmp_path_factory.mktemp("st") / "j.sqlite"
    journal = _open(path)
    n = 0
    try:
        for op, count in ops:
            with journal.hold():
                if op == "fill":
                    journal.append_many(events(count, start=n), durable=False)
                    n += count
                    journal.stage(_memo("m", n))
                elif op == "decision":
                    journal.stage(_memo("m", n + count))
                    journal.append_many(events(count, start=n))
                    n += count
                elif op == "stage_only":
                    journal.stage(_memo("m", n))
                else:
                    journal.flush()
            records, memo = _stored(path)
            assert memo.get("m", 0) == records, (op, records, memo)
    finally:
        journal.close()
    records, memo = _stored(path)
    assert records == n and memo.get("m", 0) == n
