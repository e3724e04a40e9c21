"""The journal: one append-only, hash-chained event store for the live side.

:class:`Journal` appends (it needs the MAC key from the vault and refuses to open without one);
:class:`JournalReader` reads (the CLI, a dashboard, reports), needs no key and can run in
another process while the writer writes. Timestamps are exchange time supplied by the caller;
the sequence number increases by one per record, assigned inside the append transaction.

Durability. An append is durable by default: when ``append``/``append_many`` returns, the
records are committed (SQLite ``synchronous=FULL``: on disk) together with every record appended
before them. A journal opened with a :class:`GroupCommit` also takes *buffered* appends
(``append_many(..., durable=False)``): they are checked and encoded at once, kept in order in
memory, and committed together, in one transaction and in the order they were appended, when
the oldest has waited ``max_delay_ms`` (a background flusher), when ``max_records`` are pending,
at the next durable append or :meth:`Journal.flush` (a flush barrier), and at ``close``. A crash
loses at most the buffered records not yet committed, never a committed one, and never leaves a
gap or a torn record in the chain: sequence numbers and MACs are assigned at commit, inside the
transaction, exactly as for a durable append. A failed background commit is not swallowed: the
next append, flush or close raises :class:`JournalError` naming how many records were lost.

Staged writes. Another table of the journal's database can ride the journal's commits:
:meth:`Journal.stage` registers a :class:`StagedUpsert` (the governor's memory,
:class:`stairways.risk.store.SqlStateStore` bound to the journal) that runs inside the next
commit, after that commit's records, in the same transaction; a later upsert of the same row
(table and key) replaces it. So the write is durable exactly when the records appended before it
are, and a crash loses both or neither. Staged writes commit with the next append transaction,
the group commit's flusher (within ``max_delay_ms``), a flush barrier or ``close``.
:meth:`Journal.hold` keeps commits of other threads (the flusher) out while the caller stages
and appends what must land together (its own appends still commit).

SQLite writes go through one plain ``sqlite3`` connection of the writer (WAL,
``synchronous=FULL``, ``BEGIN IMMEDIATE``), a fraction of the cost of a pooled SQLAlchemy
transaction; PostgreSQL writes through SQLAlchemy.

The live loop's rule (:mod:`stairways.live.loop`): an order intent is durable *before* the
order exists. A decision with orders to send, and every record before a broker call that
places, cancels or flattens, is written durably (a flush barrier); a decision without orders,
and broker events (fills and statuses, which a restart recovers from the broker by client
order id), may ride the group commit.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import SQLAlchemyError

from stairways.errors import InputError, MissingResourceError, StairwaysError
from stairways.journal.chain import (
    FORMAT_VERSION,
    MacKey,
    encode_payload,
    from_us,
    genesis_mac,
    key_check,
    record_macs,
    to_us,
)
from stairways.journal.kinds import REQUIRED_KEYS, EventKind, check_payload_keys, parse_kind
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
    "GroupCommit",
    "Journal",
    "JournalError",
    "JournalIntegrityError",
    "JournalKeyError",
    "JournalNotFoundError",
    "JournalReader",
    "JournalRecord",
    "StagedUpsert",
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
class GroupCommit:
    """Buffered appends committed together (see the module docstring).

    :param max_delay_ms: the longest a buffered record waits for its commit
    :param max_records: pending records that trigger a commit without waiting
    """

    max_delay_ms: float = 20.0
    max_records: int = 512

    def __post_init__(self) -> None:
        if not (0.0 < self.max_delay_ms <= 1000.0):
            raise InputError(
                f"group commit max_delay_ms must be in (0, 1000], got {self.max_delay_ms}"
            )
        if self.max_records < 1:
            raise InputError(f"group commit max_records must be at least 1, got {self.max_records}")


# prepared event: (kind value, canonical payload JSON, ts in microseconds)
_Prepared = tuple[str, str, int]


@functools.lru_cache(maxsize=256)
def _check_upsert_shape(table: str, key: str, columns: tuple[str, ...]) -> None:
    """Refuse a staged upsert's table, key and columns unless plain and not the journal's own
    (remembered: a governor stages the same shape on every decision)."""
    names = [table, key, *columns]
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise InputError(f"a staged upsert names tables and columns plainly, got {bad}")
    if table in (EVENTS.name, META.name):
        raise InputError(f"the journal's own table {table} is append-only")
    if key not in columns:
        raise InputError(f"a staged upsert of {table} needs its key {key!r}")


@dataclass(frozen=True)
class StagedUpsert:
    """Insert or replace one row of a table of the journal's database (not the journal's own)
    inside the next commit (see the module docstring).

    :param table: the table (created by its owner)
    :param key: the primary-key column; a later upsert with the same key value replaces this
    :param row: column -> value, the key included
    """

    table: str
    key: str
    row: Mapping[str, Any]

    def __post_init__(self) -> None:
        _check_upsert_shape(self.table, self.key, tuple(self.row))

    @property
    def name(self) -> tuple[str, Any]:
        """What a later upsert of the same row replaces."""
        return (self.table, self.row[self.key])

    def sql(self, placeholder: Callable[[str], str]) -> str:
        """The statement, with ``placeholder(column)`` for each value."""
        cols = list(self.row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != self.key)
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        return (
            f"INSERT INTO {self.table} ({', '.join(cols)}) "
            f"VALUES ({', '.join(placeholder(c) for c in cols)}) "
            f"ON CONFLICT ({self.key}) {action}"
        )

    def run(self, conn: Connection) -> None:
        """Execute the upsert on a SQLAlchemy connection (inside the caller's transaction)."""
        conn.execute(text(self.sql(lambda c: f":{c}")), dict(self.row))


@functools.lru_cache(maxsize=256)
def _qmark_sql(table: str, key: str, columns: tuple[str, ...]) -> str:
    """:meth:`StagedUpsert.sql` with ``?`` placeholders, made once per shape (SQLite)."""
    return StagedUpsert(table, key, dict.fromkeys(columns)).sql(lambda _column: "?")


_EVENT_COLUMNS = ("seq", "ts_us", "kind", "payload", "prev_mac", "mac")
_INSERT_EVENTS = (
    f"INSERT INTO {EVENTS.name} ({', '.join(_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _EVENT_COLUMNS)})"
)
_LAST_EVENT = f"SELECT seq, mac FROM {EVENTS.name} ORDER BY seq DESC LIMIT 1"
_LAST_OF_KIND = f"SELECT max(seq) FROM {EVENTS.name} WHERE kind = ?"
# kind value -> (the kind, its value as plain text, the payload keys it requires): one lookup
# per appended record
_KIND_RULES: dict[str, tuple[EventKind, str, tuple[str, ...]]] = {
    kind.value: (kind, str(kind.value), REQUIRED_KEYS.get(kind, ())) for kind in EventKind
}


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
    return _record_of(row.seq, row.ts_us, row.kind, row.payload, row.prev_mac, row.mac)


def _record_of(
    seq: Any, ts_us: Any, kind: Any, payload_text: Any, prev_mac: Any, mac: Any
) -> JournalRecord:
    try:
        payload = json.loads(payload_text)
    except (TypeError, json.JSONDecodeError):
        payload = {"_unreadable_payload": str(payload_text)}
    return JournalRecord(
        seq=int(seq),
        ts=from_us(int(ts_us), EXCHANGE_TZ),
        kind=str(kind),
        payload=payload,
        payload_json=str(payload_text),
        prev_mac=str(prev_mac),
        mac=str(mac),
    )


class JournalReader:
    """Reads a journal; safe to use while another process appends.

    :param location: the journal (see :class:`JournalLocation`)
    """

    def __init__(self, location: JournalLocation, *, _writer: bool = False) -> None:
        self.location = location
        self._sqlite = location.is_sqlite
        if self._sqlite and not _writer:
            path = location.path
            if path is None or not path.is_file():
                raise JournalNotFoundError(
                    f"journal {location} does not exist: the live loop creates it on its first "
                    "event (or check journal.path / --journal)"
                )
        self._engine: Engine = make_engine(location, writer=_writer)
        # SQLite: record reads go through one plain connection per thread (autocommit, each
        # SELECT its own read snapshot), a tenth of the cost of a pooled SQLAlchemy
        # transaction; the live loop's governor reads the journal on every bar.
        self._local = threading.local()
        self._raw_conns: list[sqlite3.Connection] = []
        self._raw_lock = threading.Lock()
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
        with self._raw_lock:
            conns, self._raw_conns = self._raw_conns, []
        for conn in conns:
            conn.close()
        self._engine.dispose()

    def _raw(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            path = self.location.path
            assert path is not None
            conn = sqlite3.connect(
                str(path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn = conn
            with self._raw_lock:
                self._raw_conns.append(conn)
        return conn

    def _sqlite_records(
        self,
        after_seq: int,
        wanted: list[str] | None,
        start: datetime | None,
        end: datetime | None,
    ) -> Iterator[JournalRecord]:
        where = ["seq > ?"]
        params: list[Any] = []
        if wanted:
            where.append(f"kind IN ({', '.join('?' for _ in wanted)})")
            params.extend(wanted)
        if start is not None:
            where.append("ts_us >= ?")
            params.append(to_us(start))
        if end is not None:
            where.append("ts_us < ?")
            params.append(to_us(end))
        sql = (
            f"SELECT seq, ts_us, kind, payload, prev_mac, mac FROM {EVENTS.name} "
            f"WHERE {' AND '.join(where)} ORDER BY seq LIMIT {_BATCH}"
        )
        cursor = after_seq
        while True:
            try:
                rows = self._raw().execute(sql, [cursor, *params]).fetchall()
            except sqlite3.Error as err:
                raise JournalError(f"could not read journal {self.location}: {err}") from None
            for row in rows:
                yield _record_of(*row)
            if len(rows) < _BATCH:
                return
            cursor = int(rows[-1][0])

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
        if self.location.is_sqlite:
            yield from self._sqlite_records(after_seq, wanted, start, end)
            return
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

    def last_seq(self, kind: str) -> int:
        """The sequence number of the last record of ``kind`` (0 when there is none): one
        indexed lookup, so a reader can tell whether anything of that kind was appended since
        it last read (the governor's state machine asks on every bar)."""
        rule = _KIND_RULES.get(kind) if type(kind) is str else None
        value = rule[1] if rule is not None else parse_kind(kind).value
        if self._sqlite:
            try:
                row = self._raw().execute(_LAST_OF_KIND, (value,)).fetchone()
            except sqlite3.Error as err:
                raise JournalError(f"could not read journal {self.location}: {err}") from None
            return int(row[0] or 0)
        from sqlalchemy import func

        query = select(func.max(EVENTS.c.seq)).where(EVENTS.c.kind == value)
        with _database(self.location, "read"), self._engine.connect() as conn, conn.begin():
            return int(conn.execute(query).scalar_one_or_none() or 0)

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

    def __init__(
        self,
        location: JournalLocation,
        key: MacKey,
        *,
        create: bool = True,
        group_commit: GroupCommit | None = None,
    ) -> None:
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
        # _lock is held over every write transaction (commits happen in append order) and by
        # hold(); re-entrant, so the holder's own appends commit. _pending_lock only guards the
        # buffers, so a buffered append never waits for a disk.
        self._lock = threading.RLock()
        self._pending_lock = threading.Lock()
        self._pending: list[_Prepared] = []
        self._staged: dict[tuple[str, Any], StagedUpsert] = {}
        self._write_raw: sqlite3.Connection | None = None
        self._pending_since: float | None = None
        self._group = group_commit
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._closing = False
        self._failure: str | None = None
        self.commits = 0
        # Records appended (buffered or not) and records committed, in append order: record
        # number ``i`` (1-based, counted from this opening) is durable once ``durable_through``
        # reaches ``i``. A caller keeps ``appended`` after its append as its ticket.
        self.appended = 0
        self.durable_through = 0
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
        cls,
        location: JournalLocation,
        key: MacKey,
        *,
        create: bool = True,
        group_commit: GroupCommit | None = None,
    ) -> Journal:
        """Open (and by default create) a journal for appending; ``group_commit`` enables
        buffered appends (see the module docstring)."""
        return cls(location, key, create=create, group_commit=group_commit)

    @property
    def group_commit(self) -> GroupCommit | None:
        """The group commit settings (None: every append is durable)."""
        return self._group

    @property
    def pending(self) -> int:
        """Buffered records not committed yet."""
        with self._pending_lock:
            return len(self._pending)

    @property
    def staged(self) -> int:
        """Staged writes (:meth:`stage`) not committed yet."""
        with self._pending_lock:
            return len(self._staged)

    def stage(self, upsert: StagedUpsert) -> None:
        """Write ``upsert`` inside the next commit's transaction, after its records.

        A later upsert of the same row replaces this one. If it fails, the whole commit
        (records included) fails and is raised as :class:`JournalError`.
        """
        self._check_failure()
        if self._closing:
            raise JournalError(f"journal {self.location} is closed")
        with self._pending_lock:
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            self._staged[upsert.name] = upsert
        if self._group is not None and self._flusher is None:
            self._start_flusher()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """No other thread commits while this is held (the flusher waits); the holder's own
        appends and flushes commit as usual. What the holder stages and appends inside lands
        in the same commit, or the holder's own commits keep their order."""
        with self._lock:
            yield

    def close(self) -> None:
        """Commit every buffered record, stop the flusher and release the connections."""
        try:
            self._closing = True
            self._wake.set()
            if self._flusher is not None:
                self._flusher.join(timeout=60.0)
            if self._failure is None:
                self.flush()
            self._check_failure()
        finally:
            if self._write_raw is not None:
                self._write_raw.close()
                self._write_raw = None
            super().close()

    def flush(self) -> None:
        """Commit every buffered record now (a flush barrier); durable when it returns."""
        self._check_failure()
        with self._lock:
            batch, staged = self._take_pending()
            if batch or staged:
                self._write(batch, keep_from=len(batch), staged=staged)

    def _check_failure(self) -> None:
        if self._failure is not None:
            raise JournalError(self._failure)

    def _take_pending(self) -> tuple[list[_Prepared], list[StagedUpsert]]:
        with self._pending_lock:
            batch, self._pending = self._pending, []
            staged, self._staged = list(self._staged.values()), {}
            self._pending_since = None
        return batch, staged

    def _start_flusher(self) -> None:
        self._flusher = threading.Thread(
            target=self._flush_loop, name=f"journal-flusher-{self.journal_id[:8]}", daemon=True
        )
        self._flusher.start()

    def _flush_loop(self) -> None:
        assert self._group is not None
        delay = self._group.max_delay_ms / 1000.0
        while not self._closing:
            with self._pending_lock:
                since = self._pending_since
            wait = delay if since is None else since + delay - time.monotonic()
            if wait > 0.0 and self._wake.wait(wait):
                self._wake.clear()
            with self._pending_lock:
                since = self._pending_since
                due = since is not None and (
                    len(self._pending) >= self._group.max_records
                    or time.monotonic() - since >= delay
                )
            if not due or self._closing:
                continue
            with self._lock:
                batch, staged = self._take_pending()
                if not batch and not staged:
                    continue
                try:
                    self._write(batch, keep_from=len(batch), staged=staged)
                except Exception as err:  # noqa: BLE001 - raised to the writer at its next call
                    self._failure = (
                        f"a group commit of {len(batch)} buffered records and {len(staged)} "
                        f"staged writes to journal {self.location} failed, so they are not in "
                        f"the journal: {err}"
                    )
                    log.error("%s", self._failure)
                    return

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
        """Append one event durably and return the stored record.

        :param kind: an :class:`EventKind` value
        :param payload: JSON-like data (see :func:`~stairways.journal.chain.encode_payload`)
        :param ts: the event's exchange time, timezone-aware (from the clock, never ``now()``)
        """
        return self.append_many([(kind, payload, ts)])[0]

    def append_many(
        self,
        events: Iterable[tuple[str, Mapping[str, Any], datetime]],
        *,
        durable: bool = True,
        stored: bool = True,
    ) -> list[JournalRecord]:
        """Append several events in one transaction: all are stored, or none.

        Every event is checked before anything is written (see :meth:`append`). With
        ``durable=False`` on a journal with group commit the events are buffered (committed
        with the next group, see the module docstring) and nothing is returned; without group
        commit every append is durable. ``stored=False``: return nothing (the records are
        written all the same; the live loop does not read them back, and building them costs a
        parse of every payload).
        """
        prepared: list[_Prepared] = []
        last_ts: datetime | None = None
        ts_us = 0
        rules = _KIND_RULES
        for kind, payload, ts in events:
            rule = rules.get(kind) if type(kind) is str else None
            if rule is None:  # an EventKind, or no kind at all (InputError listing the kinds)
                rule = rules[parse_kind(kind).value]
            event_kind, value, required = rule
            if required:
                check_payload_keys(event_kind, payload)
            if ts is not last_ts:  # a batch's records mostly share one instant (one object)
                ts_us, last_ts = to_us(ts), ts
            prepared.append((value, encode_payload(payload), ts_us))
        self._check_failure()
        if not durable and self._group is not None:
            if self._closing:
                raise JournalError(f"journal {self.location} is closed")
            with self._pending_lock:
                if self._pending_since is None:
                    self._pending_since = time.monotonic()
                self._pending.extend(prepared)
                self.appended += len(prepared)
                n = len(self._pending)
            if self._flusher is None:
                self._start_flusher()
            if n >= self._group.max_records:
                self._wake.set()
            if n >= 8 * self._group.max_records:
                self.flush()  # the flusher fell behind: the writer waits (memory stays bounded)
            return []
        with self._lock:
            with self._pending_lock:
                self.appended += len(prepared)
            earlier, staged = self._take_pending()
            keep = len(earlier) if stored else len(earlier) + len(prepared)
            return self._write([*earlier, *prepared], keep_from=keep, staged=staged)

    def _write(
        self,
        prepared: list[_Prepared],
        keep_from: int = 0,
        staged: list[StagedUpsert] | None = None,
    ) -> list[JournalRecord]:
        """One transaction appending ``prepared`` in order, then running the ``staged`` writes
        (the caller holds ``_lock``); returns the stored records from index ``keep_from`` on."""
        stored: list[JournalRecord] = []
        if not prepared and not staged:
            return stored
        if self._sqlite:
            return self._write_sqlite(prepared, keep_from, staged or [])
        with (
            _database(self.location, "append to"),
            self._write_conn() as conn,
            conn.begin(),
        ):
            lock_for_append(conn)
            last = conn.execute(
                select(EVENTS.c.seq, EVENTS.c.mac).order_by(EVENTS.c.seq.desc()).limit(1)
            ).first()
            rows, stored = self._chain(
                prepared,
                keep_from,
                int(last.seq) if last is not None else 0,
                str(last.mac) if last is not None else self._genesis,
            )
            if rows:
                conn.execute(
                    EVENTS.insert(), [dict(zip(_EVENT_COLUMNS, r, strict=True)) for r in rows]
                )
            for upsert in staged or ():
                upsert.run(conn)
        self.commits += 1
        self.durable_through += len(prepared)
        return stored

    def _chain(
        self, prepared: list[_Prepared], keep_from: int, seq: int, prev: str
    ) -> tuple[list[tuple[int, int, str, str, str, str]], list[JournalRecord]]:
        """The rows that chain ``prepared`` after record ``seq`` (MAC ``prev``), as
        ``_EVENT_COLUMNS`` tuples, and the stored records from index ``keep_from`` on."""
        macs = record_macs(self._key, prepared, prev)
        prevs = [prev, *macs[:-1]] if macs else []
        rows = [
            (seq + i, ts_us, kind_value, payload_json, prev_mac, mac)
            for i, ((kind_value, payload_json, ts_us), prev_mac, mac) in enumerate(
                zip(prepared, prevs, macs, strict=True), 1
            )
        ]
        stored = [
            JournalRecord(
                seq=row_seq,
                ts=from_us(ts_us, EXCHANGE_TZ),
                kind=kind_value,
                payload=json.loads(payload_json),
                payload_json=payload_json,
                prev_mac=prev_mac,
                mac=mac,
            )
            for row_seq, ts_us, kind_value, payload_json, prev_mac, mac in rows[keep_from:]
        ]
        return rows, stored

    def _writer(self) -> sqlite3.Connection:
        conn = self._write_raw
        if conn is None:
            path = self.location.path
            assert path is not None
            conn = sqlite3.connect(
                str(path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            self._write_raw = conn
        return conn

    def _write_sqlite(
        self, prepared: list[_Prepared], keep_from: int, staged: list[StagedUpsert]
    ) -> list[JournalRecord]:
        """:meth:`_write` on the writer's own SQLite connection (one BEGIN IMMEDIATE .. COMMIT,
        durable at COMMIT under ``synchronous=FULL``)."""
        stored: list[JournalRecord] = []
        try:
            conn = self._writer()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise JournalError(f"could not append to journal {self.location}: {err}") from None
        try:
            if prepared:
                last = conn.execute(_LAST_EVENT).fetchone()
                rows, stored = self._chain(
                    prepared,
                    keep_from,
                    int(last[0]) if last is not None else 0,
                    str(last[1]) if last is not None else self._genesis,
                )
                conn.executemany(_INSERT_EVENTS, rows)
            for upsert in staged:
                sql = _qmark_sql(upsert.table, upsert.key, tuple(upsert.row))
                conn.execute(sql, tuple(upsert.row.values()))
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error as again:
                log.warning("rollback on journal %s failed too: %s", self.location, again)
            raise JournalError(f"could not append to journal {self.location}: {err}") from None
        self.commits += 1
        self.durable_through += len(prepared)
        return stored
