"""A journal writer process for the two-process and SIGKILL tests.

``python -m tests.integration.journal_writer PATH COUNT PACE [group]`` appends COUNT events to
the SQLite journal at PATH (``COUNT`` 0: until killed), sleeping PACE seconds between appends,
and prints ``ready`` once the journal is open and then each committed seq on its own line
(flushed), so the parent knows what was acknowledged before it kills the process. With
``group`` the journal has group commit: appends are buffered, every fifth is durable (a flush
barrier, as before an order) and only those are acknowledged. The MAC key comes from
``$JOURNAL_TEST_KEY``. Every fifth append is a batch of three events in one transaction, and
every seventh carries a large payload, so a kill often lands inside a multi-page write.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from stairways.journal import GroupCommit, Journal, JournalLocation, MacKey

T0 = datetime(2025, 3, 3, 9, 30, tzinfo=ZoneInfo("America/New_York"))


def main() -> None:
    path, count, pace = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    group = len(sys.argv) > 4 and sys.argv[4] == "group"
    key = MacKey(os.environ["JOURNAL_TEST_KEY"].encode())
    gc = GroupCommit(max_delay_ms=5.0, max_records=64) if group else None
    with Journal.open(JournalLocation.sqlite(path), key, group_commit=gc) as journal:
        print("ready", flush=True)
        steps = itertools.count() if count == 0 else range(count)
        for i in steps:
            ts = T0 + timedelta(milliseconds=i)
            payload: dict[str, object] = {"observation_hash": f"{i:08x}", "i": i}
            if i % 7 == 3:
                payload["blob"] = "x" * 60_000
            if group:
                batch = [("decision", payload, ts), ("alert", {"i": i}, ts)]
                stored = journal.append_many(batch, durable=i % 5 == 4)
                if stored:
                    print(stored[-1].seq, flush=True)
                if pace:
                    time.sleep(pace)
                continue
            if i % 5 == 4:
                records = journal.append_many(
                    [("decision", payload, ts), ("intent", {"i": i}, ts), ("alert", {"i": i}, ts)]
                )
                last = records[-1].seq
            else:
                last = journal.append("decision", payload, ts).seq
            print(last, flush=True)
            if pace:
                time.sleep(pace)
    print("done", flush=True)


if __name__ == "__main__":
    main()
