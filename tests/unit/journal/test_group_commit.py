"""Group commit: buffered appends are committed together, in order, with an intact chain; a
durable append or a flush is a barrier; nothing buffered is lost at close; a failed background
commit is raised to the writer."""

from __future__ import annotations

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
    verify_journal,
)
from tests.unit.journal.helpers import KEY, events

# A delay no test run reaches by accident: commits in these tests come from barriers.
NEVER = GroupCommit(max_delay_ms=1000.0, max_records=100_000)


def _open(path: Path, group: GroupCommit | None = NEVER) -> Journal:
    return Journal.open(JournalLocation.sqlite(path), KEY, group_commit=group)


def _stored(path: Path) -> list[str]:
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        return [r.payload_json for r in reader.records()]


def test_group_commit_defaults_are_pinned() -> None:
    assert GroupCommit() == GroupCommit(max_delay_ms=20.0, max_records=512)


@pytest.mark.parametrize(
    ("delay", "records", "match"),
    [(0.0, 10, "max_delay_ms"), (1500.0, 10, "max_delay_ms"), (5.0, 0, "max_records")],
)
def test_bad_group_commit_settings_are_refused(delay: float, records: int, match: str) -> None:
    with pytest.raises(InputError, match=match):
        GroupCommit(max_delay_ms=delay, max_records=records)


def test_buffered_appends_wait_for_the_barrier_and_keep_their_order(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path)
    try:
        assert journal.append_many(events(5), durable=False) == []
        assert journal.pending == 5
        assert journal.count() == 0  # not committed yet: another reader sees nothing
        stored = journal.append_many(events(2, start=5))  # durable: commits the five first
        assert [r.seq for r in stored] == [6, 7]
        assert journal.pending == 0
        assert journal.count() == 7
        journal.append_many(events(3, start=7), durable=False)
        journal.flush()
        assert journal.count() == 10
    finally:
        journal.close()
    expected = [r.payload_json for r in _reference(tmp_path / "ref.sqlite", events(10))]
    assert _stored(path) == expected
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        assert verify_journal(reader, KEY).ok


def _reference(path: Path, evs: list) -> list:  # type: ignore[type-arg]
    with Journal.open(JournalLocation.sqlite(path), KEY) as journal:
        return journal.append_many(evs)


def test_close_commits_what_is_buffered(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path)
    journal.append_many(events(4), durable=False)
    journal.close()
    assert len(_stored(path)) == 4


def test_the_flusher_commits_after_the_delay_without_a_barrier(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path, GroupCommit(max_delay_ms=5.0, max_records=10_000))
    try:
        journal.append_many(events(3), durable=False)
        deadline = time.monotonic() + 30.0
        while journal.count() < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert journal.count() == 3
        assert journal.pending == 0
        assert journal.commits == 1  # the three went in one transaction
    finally:
        journal.close()


def test_max_records_triggers_a_commit(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path, GroupCommit(max_delay_ms=1000.0, max_records=4))
    try:
        journal.append_many(events(4), durable=False)
        deadline = time.monotonic() + 30.0
        while journal.count() < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert journal.count() == 4
    finally:
        journal.close()


def test_without_group_commit_every_append_is_durable(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = _open(path, None)
    try:
        stored = journal.append_many(events(3), durable=False)
        assert [r.seq for r in stored] == [1, 2, 3]
        assert journal.count() == 3 and journal.pending == 0
    finally:
        journal.close()


def test_bad_events_are_refused_before_anything_is_buffered(tmp_path: Path) -> None:
    journal = _open(tmp_path / "j.sqlite")
    try:
        with pytest.raises(InputError, match="observation_hash"):
            journal.append_many([*events(2), ("decision", {}, events(1)[0][2])], durable=False)
        assert journal.pending == 0
    finally:
        journal.close()


def test_a_failed_background_commit_is_raised_at_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = _open(tmp_path / "j.sqlite", GroupCommit(max_delay_ms=5.0, max_records=10_000))

    def broken(*args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        raise JournalError("disk full")

    monkeypatch.setattr(journal, "_write", broken)
    journal.append_many(events(2), durable=False)
    deadline = time.monotonic() + 30.0
    while journal._failure is None and time.monotonic() < deadline:
        time.sleep(0.005)
    with pytest.raises(JournalError, match="2 buffered records"):
        journal.append_many(events(1, start=2))
    with pytest.raises(JournalError, match="disk full"):
        journal.close()


Op = tuple[str, int]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["buffered", "durable", "flush"]), st.integers(1, 4)),
        min_size=1,
        max_size=12,
    )
)
def test_any_mix_of_buffered_durable_and_flush_stores_every_event_in_order(
    tmp_path_factory: pytest.TempPathFactory, ops: list[Op]
) -> None:
    path = tmp_path_factory.mktemp("gc") / "j.sqlite"
    appended: list[dict[str, object]] = []
    journal = _open(path)
    n = 0
    try:
        for op, count in ops:
            if op == "flush":
                journal.flush()
                assert journal.pending == 0
                continue
            batch = events(count, start=n)
            n += count
            journal.append_many(batch, durable=op == "durable")
            appended.extend(e[1] for e in batch)
            if op == "durable":
                assert journal.pending == 0
                assert journal.count() == n
    finally:
        journal.close()
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        stored = list(reader.records())
        assert verify_journal(reader, KEY).ok
    assert [r.seq for r in stored] == list(range(1, n + 1))
    assert [dict(r.payload) for r in stored] == appended
