"""The journal on a real PostgreSQL server (the throwaway server of ``tests/pg.py``)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy.engine import make_url

from stairways.journal import (
    Journal,
    JournalIntegrityError,
    JournalKeyError,
    JournalLocation,
    JournalReader,
    verify_journal,
)
from tests.unit.journal.helpers import KEY, OTHER_KEY, T0, events, fill


def _dsn(url: str) -> str:
    parsed = make_url(url)
    return f"host={parsed.host} port={parsed.port} user={parsed.username} dbname={parsed.database}"


def _exec(url: str, *statements: str) -> None:
    with psycopg.connect(_dsn(url), autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


@pytest.fixture
def location(fresh_postgres_url: str) -> JournalLocation:
    # The plain scheme, as a user writes it: the psycopg 3 driver is chosen for it.
    plain = fresh_postgres_url.replace("postgresql+psycopg://", "postgresql://")
    return JournalLocation.parse(plain)


def test_append_read_and_verify_on_postgres(location: JournalLocation) -> None:
    assert location.url.drivername == "postgresql+psycopg"
    with Journal.open(location, KEY) as journal:
        first = journal.append("decision", {"observation_hash": "abc"}, T0)
        fill(journal, 20, start=1)
    with JournalReader.open(location) as reader:
        assert reader.count() == 21
        assert next(reader.records()) == first
        assert [r.seq for r in reader.tail(3, kinds=["fill"])] == [15, 18, 21]
        for kind in ("fill", "decision", "governor_state"):
            seqs = [r.seq for r in reader.records(kinds=[kind])]
            assert reader.last_seq(kind) == (seqs[-1] if seqs else 0)
        assert reader.last_seq("fill") == 21 and reader.last_seq("governor_state") == 0
        report = verify_journal(reader, KEY)
    assert report.ok
    assert report.records == 21
    assert report.missing_triggers == ()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_events SET payload = '{}' WHERE seq = 2",
        "DELETE FROM journal_events WHERE seq = 2",
        "TRUNCATE journal_events",
        "UPDATE journal_meta SET value = 'x'",
        "TRUNCATE journal_meta",
    ],
)
def test_postgres_triggers_refuse_update_delete_and_truncate(
    location: JournalLocation, fresh_postgres_url: str, statement: str
) -> None:
    with Journal.open(location, KEY) as journal:
        fill(journal, 3)
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        _exec(fresh_postgres_url, statement)
    with JournalReader.open(location) as reader:
        assert reader.count() == 3
        assert verify_journal(reader, KEY).ok


def test_postgres_edit_after_dropping_triggers_is_named(
    location: JournalLocation, fresh_postgres_url: str
) -> None:
    with Journal.open(location, KEY) as journal:
        fill(journal, 8)
    _exec(
        fresh_postgres_url,
        "DROP TRIGGER journal_events_no_update ON journal_events",
        "UPDATE journal_events SET payload = '{\"fee\":0}' WHERE seq = 5",
    )
    with JournalReader.open(location) as reader:
        report = verify_journal(reader, KEY)
    assert report.tamper is not None
    assert (report.tamper.what, report.tamper.seq) == ("edited", 5)
    assert report.missing_triggers == ("journal_events_no_update",)
    with pytest.raises(JournalIntegrityError, match="journal_events_no_update"):
        Journal.open(location, KEY)


def test_postgres_disabled_trigger_counts_as_missing(
    location: JournalLocation, fresh_postgres_url: str
) -> None:
    Journal.open(location, KEY).close()
    _exec(fresh_postgres_url, "ALTER TABLE journal_events DISABLE TRIGGER journal_events_no_delete")
    with JournalReader.open(location) as reader:
        assert reader.missing_triggers() == ["journal_events_no_delete"]


def test_two_writers_on_postgres_interleave_into_one_chain(location: JournalLocation) -> None:
    Journal.open(location, KEY).close()
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            with Journal.open(location, KEY) as journal:
                for kind, payload, ts in events(25, start=offset):
                    journal.append(kind, payload, ts)
        except Exception as err:  # noqa: BLE001 (reported by the test thread below)
            errors.append(err)

    threads = [threading.Thread(target=write, args=(k * 100,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    with JournalReader.open(location) as reader:
        assert [r.seq for r in reader.records()] == list(range(1, 51))
        assert verify_journal(reader, KEY).ok


def test_postgres_journal_refuses_another_key(location: JournalLocation) -> None:
    Journal.open(location, KEY).close()
    with pytest.raises(JournalKeyError):
        Journal.open(location, OTHER_KEY)
