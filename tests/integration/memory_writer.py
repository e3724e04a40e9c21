"""A live-loop-shaped writer for the SIGKILL test of the governor's memory riding the journal.

``python -m tests.integration.memory_writer PATH`` (MAC key from ``$JOURNAL_TEST_KEY``) opens
the SQLite journal at PATH with group commit and a :class:`SqlStateStore` bound to it, prints
``ready``, then until killed repeats the live loop's two patterns under ``Journal.hold``:

- fills: a fill record appended (buffered), then the memory that counts it saved (staged);
- a decision with an order: the memory that accepted its intent saved (staged), then the
  decision and its ``submitting`` record appended durably; the seq is printed (acknowledged).

The memory document holds ``records``: how many records it has seen appended. After a kill,
the committed memory must count exactly the committed records.
"""

from __future__ import annotations

import itertools
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from stairways.journal import GroupCommit, Journal, JournalLocation, MacKey
from stairways.risk.store import SqlStateStore

T0 = datetime(2025, 3, 3, 9, 30, tzinfo=ZoneInfo("America/New_York"))
MEMORY_KEY = "risk.memory.paper.kill-test"


def main() -> None:
    location = JournalLocation.sqlite(Path(sys.argv[1]))
    key = MacKey(os.environ["JOURNAL_TEST_KEY"].encode())
    journal = Journal.open(location, key, group_commit=GroupCommit(max_delay_ms=2.0))
    store = SqlStateStore(location, journal=journal)
    doc = store.load_state(MEMORY_KEY)
    with journal.hold():  # what a restart finds: the memory counts what the journal holds
        n = journal.count()
    if (doc or {}).get("records", 0) != n:
        sys.stderr.write(f"memory {doc} does not count the journal's {n} records\n")
        sys.exit(3)
    print("ready", flush=True)
    for i in itertools.count():
        ts = T0 + timedelta(milliseconds=i)
        with journal.hold():
            if i % 3 == 2:
                store.save_state(MEMORY_KEY, {"records": n + 2, "accepted": [f"d{i}"]}, ts)
                stored = journal.append_many(
                    [
                        (
                            "decision",
                            {"observation_hash": f"{i:08x}", "blob": "x" * (i % 5000)},
                            ts,
                        ),
                        ("order", {"type": "submitting", "client_order_id": f"c{i}"}, ts),
                    ]
                )
                n += 2
                print(stored[-1].seq, flush=True)
            else:
                journal.append_many(
                    [("fill", {"exec_id": f"e{i}", "fee": 0.35}, ts)], durable=False
                )
                n += 1
                store.save_state(MEMORY_KEY, {"records": n, "accepted": []}, ts)


if __name__ == "__main__":
    main()
