"""The governor's memory of the day in the journal's database (SQLite in WAL mode or PostgreSQL).

One small table, ``risk_memory`` (key, JSON document, time of the save), next to the journal's
tables and through the journal's engine settings: a committed save survives a crash of the
process or the machine (``synchronous=FULL``), and a second process can read it while the
trader writes. The table holds current values only; their history is in the journal (alerts,
verdicts, state transitions), which is what an audit reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from stairways.journal.chain import to_us
from stairways.journal.schema import JournalLocation, make_engine
from stairways.risk.state import StateStoreError

__all__ = ["RISK_MEMORY", "SqlStateStore"]

_metadata = MetaData()

RISK_MEMORY = Table(
    "risk_memory",
    _metadata,
    Column("key", String(64), primary_key=True),
    Column("document", Text, nullable=False),
    Column("ts_us", BigInteger, nullable=False),
)


class SqlStateStore:
    """A :class:`~stairways.risk.ports.StateStore` in the journal's database.

    :param location: the journal's location (``journal.path`` or ``journal.url``)
    """

    def __init__(self, location: JournalLocation) -> None:
        self.location = location
        self._engine = make_engine(location, writer=True)
        try:
            with self._engine.connect() as conn, conn.begin():
                _metadata.create_all(conn)
        except SQLAlchemyError as err:
            self._engine.dispose()
            raise StateStoreError(
                f"could not open the governor's memory in {location}: {_reason(err)}"
            ) from None

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def load_state(self, key: str) -> Mapping[str, Any] | None:
        """The document saved under ``key``, or None."""
        try:
            with self._engine.connect() as conn, conn.begin():
                row = conn.execute(
                    select(RISK_MEMORY.c.document).where(RISK_MEMORY.c.key == key)
                ).first()
        except SQLAlchemyError as err:
            raise StateStoreError(
                f"could not read {key} from {self.location}: {_reason(err)}"
            ) from None
        if row is None:
            return None
        try:
            doc = json.loads(row.document)
        except json.JSONDecodeError as err:
            raise StateStoreError(
                f"{key} in {self.location} is not valid JSON ({err}); inspect the table "
                "risk_memory and the journal"
            ) from None
        if not isinstance(doc, dict):
            raise StateStoreError(f"{key} in {self.location} is not a JSON object")
        return doc

    def save_state(self, key: str, value: Mapping[str, Any], ts: datetime) -> None:
        """Insert or replace the document under ``key`` in one committed transaction."""
        document = json.dumps(dict(value), sort_keys=True, allow_nan=False)
        row = {"key": key, "document": document, "ts_us": to_us(ts)}
        try:
            with (
                self._engine.connect().execution_options(journal_write=True) as conn,
                conn.begin(),
            ):
                insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
                stmt = insert(RISK_MEMORY).values(**row)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[RISK_MEMORY.c.key],
                    set_={"document": row["document"], "ts_us": row["ts_us"]},
                )
                conn.execute(stmt)
        except SQLAlchemyError as err:
            raise StateStoreError(
                f"could not save {key} to {self.location}: {_reason(err)}"
            ) from None


def _reason(err: SQLAlchemyError) -> str:
    return str(getattr(err, "orig", None) or err)
