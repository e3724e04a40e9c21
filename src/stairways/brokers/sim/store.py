"""The simulated broker's persisted state: one SQLite file of orders, executions and account.

Every change is written in one transaction, so a process that dies mid-session and starts
again finds exactly the orders, fills and positions it left, like a real broker would show
them. The file also records the configuration it was made with (symbols, capital, costs); a
restart with a different configuration is refused instead of mixing two accounts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stairways.brokers.errors import BrokerStateError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    exec_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    body TEXT NOT NULL
);
"""


class SimStore:
    """Read and write the simulated broker's state in a SQLite file (or in memory).

    :param path: the file (created when missing); None keeps the state in memory
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        target = ":memory:" if path is None else str(path)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(target, isolation_level=None)
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise BrokerStateError(
                f"simulated broker state {target} cannot be opened: {err}; move the file "
                "away to start a fresh account"
            ) from None

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything in it is written, or nothing."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def get_meta(self, key: str) -> Any:
        """A stored value, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    @staticmethod
    def put_meta(db: sqlite3.Connection, key: str, value: Any) -> None:
        """Store a JSON value under ``key`` (inside a transaction)."""
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )

    @staticmethod
    def put_order(
        db: sqlite3.Connection, client_order_id: str, seq: int, body: dict[str, Any]
    ) -> None:
        """Insert or update one order (inside a transaction)."""
        db.execute(
            "INSERT INTO orders (client_order_id, seq, body) VALUES (?, ?, ?) "
            "ON CONFLICT(client_order_id) DO UPDATE SET body = excluded.body",
            (client_order_id, seq, json.dumps(body, sort_keys=True)),
        )

    @staticmethod
    def put_execution(db: sqlite3.Connection, exec_id: str, seq: int, body: dict[str, Any]) -> None:
        """Insert one execution (inside a transaction); executions never change."""
        db.execute(
            "INSERT OR IGNORE INTO executions (exec_id, seq, body) VALUES (?, ?, ?)",
            (exec_id, seq, json.dumps(body, sort_keys=True)),
        )

    def orders(self) -> list[dict[str, Any]]:
        """Every order, in the order they were placed."""
        rows = self._db.execute("SELECT body FROM orders ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def executions(self) -> list[dict[str, Any]]:
        """Every execution, in the order they happened."""
        rows = self._db.execute("SELECT body FROM executions ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def check_identity(self, identity: dict[str, Any]) -> bool:
        """Whether the file is new (False) or made with ``identity`` (True); else an error."""
        stored = self.get_meta("identity")
        if stored is None:
            return False
        if stored != json.loads(json.dumps(identity, sort_keys=True)):
            raise BrokerStateError(
                f"simulated broker state {self.path} was made with a different configuration "
                f"({stored}); use another state_path or move the file away"
            )
        return True
