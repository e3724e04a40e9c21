"""The live side's journal: an append-only, hash-chained event store (SQLite or PostgreSQL).

Writers use :class:`Journal` (``append(kind, payload, ts)``), readers :class:`JournalReader`;
:func:`verify_journal` checks the chain. See :mod:`stairways.journal.store` and
:mod:`stairways.journal.verify`.
"""

from stairways.journal.chain import MacKey
from stairways.journal.kinds import EventKind
from stairways.journal.schema import JournalLocation
from stairways.journal.settings import JournalConfig
from stairways.journal.store import (
    EXCHANGE_TZ,
    GroupCommit,
    Journal,
    JournalError,
    JournalIntegrityError,
    JournalKeyError,
    JournalNotFoundError,
    JournalReader,
    JournalRecord,
    StagedUpsert,
)
from stairways.journal.verify import Tamper, VerifyReport, verify_journal

__all__ = [
    "EXCHANGE_TZ",
    "EventKind",
    "GroupCommit",
    "Journal",
    "JournalConfig",
    "JournalError",
    "JournalIntegrityError",
    "JournalKeyError",
    "JournalLocation",
    "JournalNotFoundError",
    "JournalReader",
    "JournalRecord",
    "MacKey",
    "StagedUpsert",
    "Tamper",
    "VerifyReport",
    "verify_journal",
]
