"""The governor's memory of the day in the journal's database (SQLite in WAL mode or PostgreSQL).

One small table, ``risk_memory`` (key, JSON document, time of the save), next to the journal's
tables and through the journal's engine settings: a committed save survives a crash of the
process or the machine (``synchronous=FULL``), and a second process can read it while the
trader writes. The table holds current values only; their history is in the journal (alerts,
verdicts, state transitions), which is what an audit reads.

Bound to the journal (``SqlStateStore(location, journal=journal)``, what every live session
does), a save does not commit on its own: it is staged (:meth:`stairways.journal.Journal.stage`)
and written inside the journal's next commit, in the same transaction as the records appended
before it. The memory then costs no durable commit of its own, and after a crash it is exactly
as old as the journal: never ahead of a record it reflects (an accepted intent whose decision
was lost would refuse the re-decided intent as a duplicate). The live loop stages the memory
of a decision's verdicts before writing the decision (:meth:`Journal.hold` keeps the flusher out
between the two), so the decision, its verdicts, its ``submitting`` orders and the memory that
accepted them are one transaction. Unbound, every save is its own committed transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, select
from sqlalchemy.exc import SQLAlchemyError

from stairways.errors import InputError
from stairways.journal.chain import to_us
from stairways.journal.schema import JournalLocation, make_engine
from stairways.journal.store import Journal, StagedUpsert
from stairways.risk.ports import EncodedDocument
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


# json.dumps(value, sort_keys=True, allow_nan=False), its encoder made once
_DOCUMENT = json.JSONEncoder(sort_keys=True, allow_nan=False).encode


class SqlStateStore:
    """A :class:`~stairways.risk.ports.StateStore` in the journal's database.

    :param location: the journal's location (``journal.path`` or ``journal.url``)
    :param journal: the journal writing to that database: saves ride its commits (see the
        module docstring); None: every save commits on its own
    """

    def __init__(self, location: JournalLocation, *, journal: Journal | None = None) -> None:
        if journal is not None and str(journal.location) != str(location):
            raise InputError(
                f"the governor's memory rides the journal's commits only in the journal's own "
                f"database: the journal is {journal.location}, the memory {location}"
            )
        self.location = location
        self.journal = journal
        self._engine = make_engine(location, writer=True)
        try:
            with self._engine.connect() as conn, conn.begin():
                _metadata.create_all(conn)
        except SQLAlchemyError as err:
            self._engine.dispose()
            raise StateStoreError(
                f"could not open the governor's memory in {location}: {_reason(err)}"
            ) from None

    @property
    def commits_with_journal(self) -> bool:
        """Whether saves ride the journal's commits (staged, not committed on their own)."""
        return self.journal is not None

    @property
    def takes_encoded(self) -> bool:
        """True: :meth:`save_state` writes an :class:`EncodedDocument`'s text as it is."""
        return True

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def load_state(self, key: str) -> Mapping[str, Any] | None:
        """The document saved under ``key``, or None (a staged save is committed first)."""
        if self.journal is not None:
            self.journal.flush()
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
        """Insert or replace the document under ``key``: in one committed transaction, or,
        bound to the journal, staged into the journal's next commit. An
        :class:`EncodedDocument` is written as its text (already the canonical encoding)."""
        document = value.text if isinstance(value, EncodedDocument) else _DOCUMENT(dict(value))
        row = {"key": key, "document": document, "ts_us": to_us(ts)}
        upsert = StagedUpsert(RISK_MEMORY.name, RISK_MEMORY.c.key.name, row)
        if self.journal is not None:
            self.journal.stage(upsert)
            return
        try:
            with (
                self._engine.connect().execution_options(journal_write=True) as conn,
                conn.begin(),
            ):
                upsert.run(conn)
        except SQLAlchemyError as err:
            raise StateStoreError(
                f"could not save {key} to {self.location}: {_reason(err)}"
            ) from None


def _reason(err: SQLAlchemyError) -> str:
    return str(getattr(err, "orig", None) or err)
