"""Tables, append-only triggers and engines of the journal (SQLite in WAL mode, PostgreSQL).

SQLite runs in WAL mode with ``synchronous=FULL``: readers (CLI, dashboard) read a consistent
snapshot while the writer writes, and a committed record survives a crash of the process or
of the machine. Appends take the write lock up front (``BEGIN IMMEDIATE``) so two writers queue
instead of failing. PostgreSQL serialises appends with a transaction-scoped advisory lock.
Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on both tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import URL, make_url

from stairways.errors import InputError
from stairways.security.secret import Secret

__all__ = [
    "ADVISORY_LOCK_ID",
    "EVENTS",
    "META",
    "JournalLocation",
    "create_schema",
    "lock_for_append",
    "make_engine",
    "missing_triggers",
    "table_exists",
]

metadata = MetaData()

EVENTS = Table(
    "journal_events",
    metadata,
    # INTEGER (not BIGINT) on SQLite so that seq is the rowid: appends stay in key order.
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("ts_us", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_mac", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
)
Index("ix_journal_events_ts_us", EVENTS.c.ts_us)
Index("ix_journal_events_kind_seq", EVENTS.c.kind, EVENTS.c.seq)

META = Table(
    "journal_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

TABLES = ("journal_events", "journal_meta")
# A constant key for pg_advisory_xact_lock ("stairway" in ASCII).
ADVISORY_LOCK_ID = 0x7374616972776179

_SQLITE_TRIGGERS = {
    f"{table}_no_{op.lower()}": (
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
    )
    for table in TABLES
    for op in ("UPDATE", "DELETE")
}

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused';
END
$$
"""

_PG_TRIGGERS = {
    **{
        f"{table}_no_{op.lower()}": (
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION journal_refuse_change()"
        )
        for table in TABLES
        for op in ("UPDATE", "DELETE")
    },
    **{
        f"{table}_no_truncate": (
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change()"
        )
        for table in TABLES
    },
}


@dataclass(frozen=True)
class JournalLocation:
    """Where a journal is: an SQLite file or a PostgreSQL database."""

    url: URL

    @classmethod
    def sqlite(cls, path: Path | str) -> JournalLocation:
        """An SQLite journal file."""
        return cls(URL.create("sqlite", database=str(Path(path).expanduser())))

    @classmethod
    def postgres(cls, url: str, password: Secret | None = None) -> JournalLocation:
        """A PostgreSQL database (``postgresql://user@host:port/db``; psycopg 3 by default)."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise InputError(f"not a PostgreSQL URL: {parsed.render_as_string()}")
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if password is not None:
            parsed = parsed.set(password=password.reveal())
        return cls(parsed)

    @classmethod
    def parse(cls, text_: str, password: Secret | None = None) -> JournalLocation:
        """A PostgreSQL URL (anything with ``://``) or an SQLite file path."""
        if "://" in text_:
            return cls.postgres(text_, password)
        return cls.sqlite(text_)

    @property
    def is_sqlite(self) -> bool:
        """Whether this is an SQLite file."""
        return self.url.get_backend_name() == "sqlite"

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL."""
        return Path(self.url.database or "") if self.is_sqlite else None

    def __str__(self) -> str:
        if self.is_sqlite:
            return str(self.path)
        return self.url.render_as_string(hide_password=True)


def make_engine(location: JournalLocation, *, writer: bool) -> Engine:
    """An engine for the journal. Writers put SQLite in WAL mode; see the module docstring."""
    if not location.is_sqlite:
        return create_engine(location.url, pool_pre_ping=True)
    engine = create_engine(location.url, connect_args={"timeout": 30.0})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, decides when transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout = 30000")
            if writer:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("journal_write", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def lock_for_append(conn: Connection) -> None:
    """Serialise appends (SQLite already holds its write lock from BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_ID})


def table_exists(conn: Connection, name: str) -> bool:
    """Whether the table ``name`` exists."""
    return conn.dialect.has_table(conn, name)


def create_schema(conn: Connection, meta_rows: dict[str, str]) -> None:
    """Create tables, indexes and triggers and write the meta rows (in the caller's transaction)."""
    metadata.create_all(conn)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_FUNCTION)
        for ddl in _PG_TRIGGERS.values():
            conn.exec_driver_sql(ddl)
    else:
        for ddl in _SQLITE_TRIGGERS.values():
            conn.exec_driver_sql(ddl)
    conn.execute(META.insert(), [{"name": k, "value": v} for k, v in meta_rows.items()])


def missing_triggers(conn: Connection) -> Sequence[str]:
    """The append-only triggers that are missing (or disabled, on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text(
                "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND pg_table_is_visible(c.oid) "
                "AND c.relname IN ('journal_events', 'journal_meta')"
            )
        )
        expected = _PG_TRIGGERS
    else:
        rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        expected = _SQLITE_TRIGGERS
    present = {row[0] for row in rows}
    return sorted(name for name in expected if name not in present)
