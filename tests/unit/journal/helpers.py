"""Journals for tests, and tampering with an SQLite journal the way an intruder would.

An intruder with write access to the file drops the append-only triggers first; then edits,
deletes, inserts or reorders rows directly, without the MAC key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from stairways.journal import EXCHANGE_TZ, Journal, JournalLocation, MacKey

KEY = MacKey(b"unit-test-journal-mac-key-0123456789")
OTHER_KEY = MacKey(b"another-journal-mac-key-9876543210xx")
T0 = datetime(2025, 3, 3, 9, 30, tzinfo=EXCHANGE_TZ)
TRIGGERS = (
    "journal_events_no_update",
    "journal_events_no_delete",
    "journal_meta_no_update",
    "journal_meta_no_delete",
)


def events(n: int, start: int = 0) -> list[tuple[str, dict[str, object], datetime]]:
    """``n`` varied events, one second apart from 09:30 plus ``start`` seconds."""
    out: list[tuple[str, dict[str, object], datetime]] = []
    for i in range(start, start + n):
        ts = T0 + timedelta(seconds=i)
        if i % 3 == 0:
            out.append(("decision", {"observation_hash": f"obs{i:04d}", "action": i % 5}, ts))
        elif i % 3 == 1:
            out.append(("intent", {"intent_id": f"i{i}", "symbol": "NVDA", "qty": i}, ts))
        else:
            out.append(("fill", {"order_ref": f"o{i}", "fee": 0.35, "price": 101.5 + i}, ts))
    return out


def fill(journal: Journal, n: int, start: int = 0) -> None:
    """Append :func:`events` in one transaction."""
    journal.append_many(events(n, start))


def make_journal(path: Path, n: int) -> Path:
    """An SQLite journal at ``path`` holding ``n`` events."""
    with Journal.open(JournalLocation.sqlite(path), KEY) as journal:
        fill(journal, n)
    return path


@contextmanager
def tampering(path: Path) -> Iterator[sqlite3.Connection]:
    """A raw connection to the journal file with its append-only triggers dropped."""
    conn = sqlite3.connect(path)
    try:
        for name in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        yield conn
        conn.commit()
    finally:
        conn.close()


def edit(path: Path, seq: int) -> None:
    """Change one record's payload."""
    with tampering(path) as conn:
        conn.execute("UPDATE journal_events SET payload = '{\"fee\":0.0}' WHERE seq = ?", (seq,))


def delete(path: Path, seq: int) -> None:
    """Remove one record."""
    with tampering(path) as conn:
        conn.execute("DELETE FROM journal_events WHERE seq = ?", (seq,))


def swap(path: Path, a: int, b: int) -> None:
    """Exchange the positions of records ``a`` and ``b``."""
    with tampering(path) as conn:
        conn.execute("UPDATE journal_events SET seq = -1 WHERE seq = ?", (a,))
        conn.execute("UPDATE journal_events SET seq = ? WHERE seq = ?", (a, b))
        conn.execute("UPDATE journal_events SET seq = ? WHERE seq = -1", (b,))


def insert_forged(path: Path, seq: int) -> None:
    """Insert a forged record at ``seq``, shifting the later records up by one."""
    with tampering(path) as conn:
        rows = conn.execute(
            "SELECT seq FROM journal_events WHERE seq >= ? ORDER BY seq DESC", (seq,)
        ).fetchall()
        for (s,) in rows:
            conn.execute("UPDATE journal_events SET seq = ? WHERE seq = ?", (s + 1, s))
        prev = conn.execute("SELECT mac FROM journal_events WHERE seq = ?", (seq - 1,)).fetchone()
        conn.execute(
            "INSERT INTO journal_events (seq, ts_us, kind, payload, prev_mac, mac) "
            "VALUES (?, ?, 'fill', '{\"fee\":0.0,\"price\":1}', ?, ?)",
            (seq, 1_741_012_200_000_000, prev[0] if prev else "0" * 64, "f" * 64),
        )
