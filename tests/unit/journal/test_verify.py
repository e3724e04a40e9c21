"""``verify`` names the first record edited, deleted, inserted or reordered in an SQLite file
changed directly (triggers dropped first), and a wrong key is not mistaken for tampering."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.journal import (
    Journal,
    JournalKeyError,
    JournalLocation,
    JournalReader,
    VerifyReport,
    verify_journal,
)
from stairways.journal.verify import parse_head
from tests.unit.journal.helpers import (
    KEY,
    OTHER_KEY,
    T0,
    delete,
    edit,
    insert_forged,
    make_journal,
    swap,
    tampering,
)

N = 12


def _verify(path: Path, expect_head: tuple[int, str] | None = None) -> VerifyReport:
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        return verify_journal(reader, KEY, expect_head=expect_head)


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    return make_journal(tmp_path / "j.sqlite", N)


def test_intact_journal_verifies_and_reports_its_head(journal_file: Path) -> None:
    report = _verify(journal_file)
    assert report.ok
    assert report.records == N
    assert report.head_seq == N
    with JournalReader.open(JournalLocation.sqlite(journal_file)) as reader:
        last = reader.last()
    assert last is not None
    assert report.head_mac == last.mac
    assert report.missing_triggers == ()


def test_empty_journal_verifies(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal.open(JournalLocation.sqlite(path), KEY).close()
    report = _verify(path)
    assert report.ok
    assert (report.records, report.head_seq, report.head_mac) == (0, None, None)


def test_edited_record_is_named(journal_file: Path) -> None:
    edit(journal_file, 5)
    report = _verify(journal_file)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("edited", 5)
    assert report.records == 4
    assert "triggers" not in report.tamper.detail
    assert set(report.missing_triggers) >= {"journal_events_no_update"}


def test_deleted_record_is_named_by_its_neighbours(journal_file: Path) -> None:
    delete(journal_file, 5)
    report = _verify(journal_file)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("deleted", 6)
    assert "between seq 4 and seq 6" in report.tamper.detail


def test_deleting_the_first_record_is_caught(journal_file: Path) -> None:
    delete(journal_file, 1)
    report = _verify(journal_file)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("deleted", 2)


def test_inserted_record_is_named(journal_file: Path) -> None:
    insert_forged(journal_file, 5)
    report = _verify(journal_file)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("inserted", 5)
    assert "record seq 6 continues the chain from seq 4" in report.tamper.detail


def test_copied_record_appended_is_an_insertion(journal_file: Path) -> None:
    with tampering(journal_file) as conn:
        conn.execute(
            "INSERT INTO journal_events SELECT ?, ts_us, kind, payload, prev_mac, mac "
            "FROM journal_events WHERE seq = 3",
            (N + 1,),
        )
    report = _verify(journal_file)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("inserted", N + 1)
    assert "copy of seq 3" in report.tamper.detail


def test_reordered_records_are_named(journal_file: Path) -> None:
    swap(journal_file, 4, 9)
    report = _verify(journal_file)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("reordered", 4)
    assert "belongs after the record stored at seq 8" in report.tamper.detail


def test_renumbered_records_are_an_edit(journal_file: Path) -> None:
    with tampering(journal_file) as conn:
        conn.execute("UPDATE journal_events SET seq = seq + 100 WHERE seq >= 7")
    report = _verify(journal_file)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("edited", 107)
    assert "renumbered" in report.tamper.detail


def test_records_removed_from_the_end_are_caught_against_an_earlier_head(
    journal_file: Path,
) -> None:
    before = _verify(journal_file)
    assert before.head_seq is not None
    assert before.head_mac is not None
    head = parse_head(f"{before.head_seq}:{before.head_mac}")
    delete(journal_file, N)
    assert _verify(journal_file).tamper is None  # the chain alone cannot tell
    report = _verify(journal_file, expect_head=head)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("truncated", N)


def test_an_earlier_head_still_in_a_longer_chain_passes(journal_file: Path) -> None:
    before = _verify(journal_file)
    assert before.head_seq is not None and before.head_mac is not None
    with Journal.open(JournalLocation.sqlite(journal_file), KEY) as journal:
        journal.append("alert", {"level": "info"}, T0)
    assert _verify(journal_file, expect_head=(before.head_seq, before.head_mac)).ok


def test_dropped_triggers_alone_fail_verification(journal_file: Path) -> None:
    with tampering(journal_file):
        pass
    report = _verify(journal_file)
    assert report.tamper is None
    assert not report.ok
    assert len(report.missing_triggers) == 4


def test_a_wrong_key_is_a_key_error_not_tampering(journal_file: Path) -> None:
    with (
        JournalReader.open(JournalLocation.sqlite(journal_file)) as reader,
        pytest.raises(JournalKeyError),
    ):
        verify_journal(reader, OTHER_KEY)


def test_mangled_column_types_are_an_edit(journal_file: Path) -> None:
    with tampering(journal_file) as conn:
        conn.execute("UPDATE journal_events SET ts_us = 'yesterday' WHERE seq = 3")
    report = _verify(journal_file)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("edited", 3)


def test_parse_head_refuses_malformed_text() -> None:
    with pytest.raises(Exception, match="SEQ:MAC"):
        parse_head("12")
    with pytest.raises(Exception, match="SEQ:MAC"):
        parse_head("x:" + "a" * 64)


_tamper = st.one_of(
    st.tuples(st.just("edit"), st.integers(1, N)),
    st.tuples(st.just("delete"), st.integers(1, N - 1)),
    st.tuples(st.just("insert"), st.integers(2, N)),
    st.tuples(st.just("swap"), st.integers(1, N - 1), st.integers(1, N - 1)),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(change=_tamper)
def test_any_single_tampering_is_found_at_the_first_changed_position(
    tmp_path_factory: pytest.TempPathFactory, change: tuple[object, ...]
) -> None:
    path = make_journal(tmp_path_factory.mktemp("j") / "j.sqlite", N)
    action = change[0]
    before = -1
    if action == "edit":
        seq = int(change[1])  # type: ignore[call-overload]
        edit(path, seq)
        expected = ("edited", seq)
    elif action == "delete":
        seq = int(change[1])  # type: ignore[call-overload]
        delete(path, seq)
        expected = ("deleted", seq + 1)
        before = seq - 1
    elif action == "insert":
        seq = int(change[1])  # type: ignore[call-overload]
        insert_forged(path, seq)
        expected = ("inserted", seq)
    else:
        a = int(change[1])  # type: ignore[call-overload]
        b = a + int(change[2])  # type: ignore[call-overload]
        b = min(b, N)
        swap(path, a, b)
        expected = ("reordered", a)
    report = _verify(path)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == expected
    # The records before the break all verified.
    assert report.records == (before if before >= 0 else expected[1] - 1)


def test_tampering_never_touches_a_readers_view_of_a_journal_with_triggers(
    journal_file: Path,
) -> None:
    conn = sqlite3.connect(journal_file)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE journal_events SET seq = seq + 1")
    finally:
        conn.close()
    assert _verify(journal_file).ok
