"""The journal: one append-only, hash-chained event store for the live side.

:class:`Journal` appends (it needs the MAC key from the vault and refuses to open without one);
:class:`JournalReader` reads (the CLI, a dashboard, reports), needs no key and can run in
another process while the writer writes. Timestamps are exchange time supplied by the caller;
the sequence number increases by one per record, assigned inside the append transaction.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from stairways.errors import InputError, MissingResourceError, StairwaysError
from stairways.journal.chain import (
    FORMAT_VERSION,
    MacKey,
    encode_payload,
    from_us,
    genesis_mac,
    key_check,
    record_mac,
    to_us,
)
from stairways.journal.kinds import EventKind, check_payload_keys, parse_kind
from stairways.journal.schema import (
    EVENTS,
    META,
    JournalLocation,
    create_schema,
    lock_for_append,
    make_engine,
    missing_triggers,
    table_exists,
)

__all__ = [
    "EXCHANGE_TZ",
    "Journal",
    "JournalError",
    "JournalIntegrityError",
    "JournalKeyError",
    "JournalNotFoundError",
    "JournalReader",
    "JournalRecord",
]

log = logging.getLogger(__name__)

EXCHANGE_TZ = ZoneInfo("America/New_York")
_BATCH = 1000


class JournalError(StairwaysError):
    """The journal database could not be read or written."""


class JournalNotFoundError(MissingResourceError):
    """The journal does not exist yet."""


class JournalKeyError(InputError):
    """The MAC key is not the key this journal was created with."""


class JournalIntegrityError(StairwaysError):
    """The journal's protections were removed; run ``stairways journal verify``."""


@dataclass(frozen=True)
class JournalRecord:
    """One stored event.

    :param seq: position in the journal, from 1
    :param ts: exchange time of the event (America/New_York)
    :param kind: an :class:`EventKind` value
    :param payload: the event's data
    :param payload_json: the payload exactly as stored (canonical JSON)
    :param prev_mac: MAC of the record before (or the journal's genesis value)
    :param mac: this record's HMAC-SHA256, hex
    """

    seq: int
    ts: datetime
    kind: str
    payload: Mapping[str, Any]
    payload_json: str
    prev_mac: str
    mac: str


@contextlib.contextmanager
def _database(location: JournalLocation, action: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as err:
        reason = getattr(err, "orig", None) or err
        raise JournalError(f"could not {action} journal {location}: {reason}") from None


def _record(row: Any) -> JournalRecord:
    try:
        payload = json.loads(row.payload)
    except (TypeError, json.JSONDecodeError):
        payload = {"_unreadable_payload": str(row.payload)}
    return JournalRecord(
        seq=int(row.seq),
        ts=from_us(int(row.ts_us), EXCHANGE_TZ),
        kind=str(row.kind),
        payload=payload,
        payload_json=str(row.payload),
        prev_mac=str(row.prev_mac),
        mac=str(row.mac),
    )


class JournalReader:
    """Reads a journal; safe to use while another process appends.

    :param location: the journal (see :class:`JournalLocation`)
    """

    def __init__(self, location: JournalLocation, *, _writer: bool = False) -> None:
        self.location = location
        if location.is_sqlite and not _writer:
            path = location.path
            if path is None or not path.is_file():
                raise JournalNotFoundError(
                    f"journal {location} does not exist: the live loop creates it on its first "
                    "event (or check journal.path / --journal)"
                )
        self._engine: Engine = make_engine(location, writer=_writer)
        self._meta: dict[str, str] = {}
        if not _writer:
            try:
                self._meta = self._read_meta()
            except BaseException:
                self._engine.dispose()
                raise
            if not self._meta:
                self._engine.dispose()
                raise JournalNotFoundError(f"journal {location} has no journal tables")

    @classmethod
    def open(cls, location: JournalLocation) -> JournalReader:
        """Open an existing journal for reading."""
        return cls(location)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    @property
    def journal_id(self) -> str:
        """The journal's random id (part of its genesis value)."""
        return self._meta["journal_id"]

    @property
    def meta(self) -> Mapping[str, str]:
        """The journal's meta rows (format version, id, key check value)."""
        return dict(self._meta)

    def _read_meta(self) -> dict[str, str]:
        with _database(self.location, "read"), self._engine.connect() as conn, conn.begin():
            if not table_exists(conn, "journal_meta"):
                return {}
            return {row.name: row.value for row in conn.execute(select(META))}

    def _check_format(self) -> None:
        version = self._meta.get("format_version")
        if version != str(FORMAT_VERSION) or "journal_id" not in self._meta:
            raise JournalIntegrityError(
                f"journal {self.location} has format {version!r} or no id; this version of "
                f"Stairways reads format {FORMAT_VERSION}"
            )

    def missing_triggers(self) -> list[str]:
        """Names of append-only triggers that are missing or disabled (empty when intact)."""
        with _database(self.location, "read"), self._engine.connect() as conn, conn.begin():
            return list(missing_triggers(conn))

    def count(self) -> int:
        """Number of records."""
        from sqlalchemy import func

        with _database(self.location, "read"), self._engine.connect() as conn, conn.begin():
            return int(conn.execute(select(func.count()).select_from(EVENTS)).scalar_one())

    def last(self) -> JournalRecord | None:
        """The record with the highest sequence number, or None when the journal is empty."""
        records = self.tail(1)
        return records[0] if records else None

    def tail(self, n: int, kinds: Iterable[str] | None = None) -> list[JournalRecord]:
        """The last ``n`` records (of ``kinds``, if given), oldest first."""
        if n < 1:
            raise InputError(f"the number of records to show must be at least 1, got {n}")
        query = select(EVENTS).order_by(EVENTS.c.seq.desc()).limit(n)
        if kinds:
            query = query.where(EVENTS.c.kind.in_([parse_kind(k).value for k in kinds]))
        with _database(self.location, "read"), self._engine.connect() as conn, conn.begin():
            rows = conn.execute(query).all()
        return [_record(row) for row in reversed(rows)]

    def records(
        self,
        *,
        after_seq: int = 0,
        kinds: Iterable[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Iterator[JournalRecord]:
        """Records after ``after_seq`` in sequence order, optionally of ``kinds`` and with
        ``start <= ts < end``; read in batches, each in its own short transaction."""
        wanted = [parse_kind(k).value for k in kinds] if kinds else None
        cursor = after_seq
        while True:
            query = select(EVENTS).where(EVENTS.c.seq > cursor).order_by(EVENTS.c.seq)
            if wanted:
                query = query.where(EVENTS.c.kind.in_(wanted))
            if start is not None:
                query = query.where(EVENTS.c.ts_us >= to_us(start))
            if end is not None:
                query = query.where(EVENTS.c.ts_us < to_us(end))
            with _database(self.location, "read"), self._engine.connect() as conn, conn.begin():
                rows = conn.execute(query.limit(_BATCH)).all()
            for row in rows:
                yield _record(row)
            if len(rows) < _BATCH:
                return
            cursor = int(rows[-1].seq)

    def raw_rows(self, after_seq: int = 0) -> Iterator[tuple[Any, ...]]:
        """Stored columns (seq, ts_us, kind, payload, prev_mac, mac) as the database holds them,
        in sequence order: what verification reads, without interpreting anything."""
        cursor: Any = after_seq
        columns = (
            EVENTS.c.seq,
            EVENTS.c.ts_us,
            EVENTS.c.kind,
            EVENTS.c.payload,
            EVENTS.c.prev_mac,
            EVENTS.c.mac,
        )
        while True:
            query = select(*columns).where(EVENTS.c.seq > cursor).order_by(EVENTS.c.seq)
            with _database(self.location, "read"), self._engine.connect() as conn, conn.begin():
                rows = conn.execute(query.limit(_BATCH)).all()
            for row in rows:
                yield tuple(row)
            if len(rows) < _BATCH:
                return
            cursor = rows[-1][0]

    def seq_where(self, column: str, value: str, *, other_than: Any = None) -> Any:
        """The lowest seq whose ``column`` (``mac`` or ``prev_mac``) equals ``value``."""
        col = {"mac": EVENTS.c.mac, "prev_mac": EVENTS.c.prev_mac}[column]
        query = select(EVENTS.c.seq).where(col == value).order_by(EVENTS.c.seq)
        if other_than is not None:
            query = query.where(EVENTS.c.seq != other_than)
        with _database(self.location, "read"), self._engine.connect() as conn, conn.begin():
            return conn.execute(query.limit(1)).scalar_one_or_none()


class Journal(JournalReader):
    """The journal's writer: appends hash-chained records.

    Open it with :meth:`open`; it needs the journal's MAC key (from the vault) and refuses a key
    the journal was not created with, or a journal whose append-only triggers were removed.
    """

    def __init__(self, location: JournalLocation, key: MacKey, *, create: bool = True) -> None:
        if not isinstance(key, MacKey):
            raise InputError(
                "the journal needs its MAC key from the vault (a MacKey); there is no default key"
            )
        if location.is_sqlite and location.path is not None:
            path = location.path
            if not path.exists():
                if not create:
                    raise JournalNotFoundError(f"journal {location} does not exist")
                path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(location, _writer=True)
        self._key = key
        self._lock = threading.Lock()
        try:
            self._meta = self._open_or_create(create)
            self._check_format()
            if not hmac.compare_digest(self._meta["key_check"], key_check(key, self.journal_id)):
                raise JournalKeyError(
                    f"the MAC key does not match journal {location}: it was created with another "
                    "key (check journal.mac_key_secret and the vault), or its meta table was "
                    "altered"
                )
            missing = self.missing_triggers()
            if missing:
                raise JournalIntegrityError(
                    f"journal {location} lost its append-only triggers ({', '.join(missing)}); "
                    "refusing to write. Run `stairways journal verify` and investigate"
                )
        except BaseException:
            self._engine.dispose()
            raise
        self._genesis = genesis_mac(key, self.journal_id)

    @classmethod
    def open(  # type: ignore[override]
        cls, location: JournalLocation, key: MacKey, *, create: bool = True
    ) -> Journal:
        """Open (and by default create) a journal for appending."""
        return cls(location, key, create=create)

    def _write_conn(self) -> contextlib.AbstractContextManager[Connection]:
        return self._engine.connect().execution_options(journal_write=True)

    def _open_or_create(self, create: bool) -> dict[str, str]:
        with _database(self.location, "open"), self._write_conn() as conn, conn.begin():
            lock_for_append(conn)
            if not table_exists(conn, "journal_meta"):
                if not create:
                    raise JournalNotFoundError(f"journal {self.location} has no journal tables")
                journal_id = uuid.uuid4().hex
                meta = {
                    "format_version": str(FORMAT_VERSION),
                    "journal_id": journal_id,
                    "key_check": key_check(self._key, journal_id),
                }
                create_schema(conn, meta)
                log.info("created journal %s", self.location)
                return meta
            return {row.name: row.value for row in conn.execute(select(META))}

    def append(self, kind: str, payload: Mapping[str, Any], ts: datetime) -> JournalRecord:
        """Append one event and return the stored record.

        :param kind: an :class:`EventKind` value
        :param payload: JSON-like data (see :func:`~stairways.journal.chain.encode_payload`)
        :param ts: the event's exchange time, timezone-aware (from the clock, never ``now()``)
        """
        return self.append_many([(kind, payload, ts)])[0]

    def append_many(
        self, events: Iterable[tuple[str, Mapping[str, Any], datetime]]
    ) -> list[JournalRecord]:
        """Append several events in one transaction: all are stored, or none.

        Every event is checked before anything is written (see :meth:`append`).
        """
        prepared = []
        for kind, payload, ts in events:
            event_kind: EventKind = parse_kind(kind)
            check_payload_keys(event_kind, payload)
            prepared.append((event_kind.value, encode_payload(payload), to_us(ts)))
        stored: list[JournalRecord] = []
        with (
            self._lock,
            _database(self.location, "append to"),
            self._write_conn() as conn,
            conn.begin(),
        ):
            lock_for_append(conn)
            last = conn.execute(
                select(EVENTS.c.seq, EVENTS.c.mac).order_by(EVENTS.c.seq.desc()).limit(1)
            ).first()
            seq = int(last.seq) if last is not None else 0
            prev = str(last.mac) if last is not None else self._genesis
            rows = []
            for kind_value, payload_json, ts_us in prepared:
                seq += 1
                mac = record_mac(self._key, ts_us, kind_value, payload_json, prev)
                rows.append(
                    {
                        "seq": seq,
                        "ts_us": ts_us,
                        "kind": kind_value,
                        "payload": payload_json,
                        "prev_mac": prev,
                        "mac": mac,
                    }
                )
                stored.append(
                    JournalRecord(
                        seq=seq,
                        ts=from_us(ts_us, EXCHANGE_TZ),
                        kind=kind_value,
                        payload=json.loads(payload_json),
                        payload_json=payload_json,
                        prev_mac=prev,
                        mac=mac,
                    )
                )
                prev = mac
            if rows:
                conn.execute(EVENTS.insert(), rows)
        return stored
