"""Appending to and reading the SQLite journal; keys, triggers and refusals."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from stairways.errors import InputError
from stairways.journal import (
    EXCHANGE_TZ,
    EventKind,
    Journal,
    JournalIntegrityError,
    JournalKeyError,
    JournalLocation,
    JournalNotFoundError,
    JournalReader,
)
from tests.unit.journal.helpers import KEY, OTHER_KEY, T0, fill, make_journal, tampering


@pytest.fixture
def location(tmp_path: Path) -> JournalLocation:
    return JournalLocation.sqlite(tmp_path / "live" / "journal.sqlite")


def test_append_returns_the_stored_record_with_increasing_seq_and_chained_macs(
    location: JournalLocation,
) -> None:
    with Journal.open(location, KEY) as journal:
        first = journal.append("decision", {"observation_hash": "abc", "action": 2}, T0)
        second = journal.append("fill", {"fee": 0.35, "qty": 1}, T0 + timedelta(seconds=1))
        assert (first.seq, second.seq) == (1, 2)
        assert second.prev_mac == first.mac
        assert first.ts == T0
        assert first.ts.tzinfo == EXCHANGE_TZ
        assert first.kind == EventKind.DECISION == "decision"
        assert dict(first.payload) == {"observation_hash": "abc", "action": 2}
        assert journal.count() == 2
        assert journal.last() == second
        assert list(journal.records()) == [first, second]


def test_reopening_continues_the_chain(location: JournalLocation) -> None:
    with Journal.open(location, KEY) as journal:
        fill(journal, 3)
        last = journal.last()
    with Journal.open(location, KEY) as journal:
        record = journal.append("alert", {"level": "warn"}, T0)
    assert last is not None
    assert record.seq == 4
    assert record.prev_mac == last.mac


def test_sqlite_journal_is_in_wal_mode_with_full_sync(location: JournalLocation) -> None:
    with Journal.open(location, KEY) as journal:
        fill(journal, 1)
        with journal._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            # synchronous=FULL is 2: a committed record survives a power cut.
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_there_is_no_default_key(location: JournalLocation) -> None:
    with pytest.raises(InputError, match="no default key"):
        Journal(location, None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no default key"):
        Journal(location, b"k" * 32)  # type: ignore[arg-type]
    assert location.path is not None
    assert not location.path.exists()


def test_a_different_key_is_refused(location: JournalLocation) -> None:
    Journal.open(location, KEY).close()
    with pytest.raises(JournalKeyError, match="does not match"):
        Journal.open(location, OTHER_KEY)


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("trade", {"x": 1}, "unknown journal event kind 'trade'"),
        ("decision", {"action": 1}, "observation_hash"),
        ("fill", {"qty": 1}, "fee"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_written(
    location: JournalLocation, kind: str, payload: dict[str, object], message: str
) -> None:
    with Journal.open(location, KEY) as journal:
        with pytest.raises(InputError, match=message):
            journal.append(kind, payload, T0)
        with pytest.raises(InputError, match="no timezone"):
            journal.append("alert", {}, T0.replace(tzinfo=None))
        assert journal.count() == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_events SET payload = '{}' WHERE seq = 2",
        "DELETE FROM journal_events WHERE seq = 2",
        "DELETE FROM journal_events",
        "UPDATE journal_meta SET value = 'x' WHERE name = 'journal_id'",
        "DELETE FROM journal_meta",
    ],
)
def test_triggers_refuse_update_and_delete(tmp_path: Path, statement: str) -> None:
    path = make_journal(tmp_path / "j.sqlite", 3)
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    finally:
        conn.close()
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        assert reader.count() == 3


def test_writer_refuses_a_journal_whose_triggers_were_dropped(tmp_path: Path) -> None:
    path = make_journal(tmp_path / "j.sqlite", 2)
    with tampering(path):
        pass
    with pytest.raises(JournalIntegrityError, match="journal_events_no_update"):
        Journal.open(JournalLocation.sqlite(path), KEY)


def test_reader_of_a_missing_journal_says_so_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nope.sqlite"
    with pytest.raises(JournalNotFoundError, match=str(path)):
        JournalReader.open(JournalLocation.sqlite(path))
    assert not path.exists()
    with pytest.raises(JournalNotFoundError):
        Journal.open(JournalLocation.sqlite(path), KEY, create=False)


def test_records_filter_by_kind_and_exchange_time_and_tail_keeps_order(tmp_path: Path) -> None:
    path = make_journal(tmp_path / "j.sqlite", 30)
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        fills = list(reader.records(kinds=["fill"]))
        assert [r.seq for r in fills] == list(range(3, 31, 3))
        window = list(
            reader.records(start=T0 + timedelta(seconds=10), end=T0 + timedelta(seconds=13))
        )
        assert [r.seq for r in window] == [11, 12, 13]
        assert [r.seq for r in reader.tail(4)] == [27, 28, 29, 30]
        assert [r.seq for r in reader.tail(2, kinds=["decision"])] == [25, 28]
        assert [r.seq for r in reader.records(after_seq=28)] == [29, 30]
        with pytest.raises(InputError, match="unknown journal event kind"):
            reader.tail(2, kinds=["trades"])


def test_append_many_stores_all_or_nothing_and_chains_like_append(
    location: JournalLocation,
) -> None:
    with Journal.open(location, KEY) as journal:
        one = journal.append("alert", {"level": "warn"}, T0)
        bad = [("alert", {"n": 1}, T0), ("fill", {"qty": 1}, T0), ("alert", {"n": 2}, T0)]
        with pytest.raises(InputError, match="fee"):
            journal.append_many(bad)
        assert journal.count() == 1
        many = journal.append_many([("alert", {"n": 1}, T0), ("alert", {"n": 2}, T0)])
        assert [r.seq for r in many] == [2, 3]
        assert many[0].prev_mac == one.mac
        assert many[1].prev_mac == many[0].mac
        assert list(journal.records(after_seq=1)) == many
        assert journal.append_many([]) == []


def test_records_read_in_batches_see_every_record_once(tmp_path: Path) -> None:
    path = make_journal(tmp_path / "j.sqlite", 2500)
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        seqs = [r.seq for r in reader.records()]
    assert seqs == list(range(1, 2501))


def test_append_many_without_stored_records_writes_the_same_chain(tmp_path: Path) -> None:
    events = [
        ("decision", {"observation_hash": "abc", "action": 2}, T0),
        ("fill", {"fee": 0.35, "qty": 1.5, "note": "caf\u00e9"}, T0 + timedelta(seconds=1)),
    ]
    texts = []
    for name, stored in (("a", True), ("b", False)):
        with Journal.open(JournalLocation.sqlite(tmp_path / f"{name}.sqlite"), KEY) as journal:
            returned = journal.append_many(events, stored=stored)
            assert len(returned) == (2 if stored else 0)
            records = list(journal.records())
            assert [(r.seq, r.kind, dict(r.payload)) for r in records] == [
                (1, "decision", {"action": 2, "observation_hash": "abc"}),
                (2, "fill", {"fee": 0.35, "note": "caf\u00e9", "qty": 1.5}),
            ]
            if stored:
                assert returned == records
            texts.append([(r.ts, r.payload_json) for r in records])
    assert texts[0] == texts[1]


@pytest.mark.parametrize("kind", list(EventKind))
def test_a_kind_given_as_text_or_as_an_eventkind_is_stored_and_found_alike(
    tmp_path: Path, kind: EventKind
) -> None:
    payload = {"observation_hash": "h", "fee": 0.0}
    with Journal.open(JournalLocation.sqlite(tmp_path / "j.sqlite"), KEY) as journal:
        journal.append_many([(kind.value, payload, T0), (kind, payload, T0)])
        stored = [(r.seq, r.kind, type(r.kind)) for r in journal.records()]
        assert stored == [(1, kind.value, str), (2, kind.value, str)]
        assert journal.last_seq(kind.value) == journal.last_seq(kind) == 2
        other = next(k for k in EventKind if k is not kind)
        assert journal.last_seq(other.value) == 0


@pytest.mark.parametrize("kind", ["trade", "Decision", "", None, 3, ["decision"]])
def test_anything_but_a_kind_is_refused_by_append_and_last_seq(
    tmp_path: Path, kind: object
) -> None:
    with Journal.open(JournalLocation.sqlite(tmp_path / "j.sqlite"), KEY) as journal:
        with pytest.raises(InputError, match="unknown journal event kind"):
            journal.append(kind, {}, T0)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="unknown journal event kind"):
            journal.last_seq(kind)  # type: ignore[arg-type]
        assert journal.count() == 0


def test_chaining_no_records_gives_no_rows(tmp_path: Path) -> None:
    """A commit of staged writes only (PostgreSQL chains it all the same)."""
    with Journal.open(JournalLocation.sqlite(tmp_path / "j.sqlite"), KEY) as journal:
        assert journal._chain([], 0, 7, "ab" * 32) == ([], [])
        rows, stored = journal._chain([("alert", "{}", 5), ("fill", '{"fee":0}', 6)], 1, 7, "ab")
        assert [r[0] for r in rows] == [8, 9] and rows[0][4] == "ab" and rows[1][4] == rows[0][5]
        assert [(r.seq, r.prev_mac, r.mac) for r in stored] == [(9, rows[0][5], rows[1][5])]
