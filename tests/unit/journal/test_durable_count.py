"""The journal's durability count: ``appended`` counts records appended (buffered or not),
``durable_through`` the records committed, in append order. The live loop's outbox sends an
order once ``durable_through`` reaches the count after its records (its ticket), so the count
must never run ahead of what a reader finds committed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.journal import GroupCommit, Journal, JournalLocation
from tests.unit.journal.helpers import KEY, events

NEVER = GroupCommit(max_delay_ms=1000.0, max_records=100_000)

# (operation, records): buffered append, durable append, flush
OPS = st.lists(
    st.tuples(st.sampled_from(["buffered", "durable", "flush"]), st.integers(1, 4)),
    min_size=1,
    max_size=25,
)


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_durable_through_counts_exactly_the_committed_records(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal.open(
            JournalLocation.sqlite(Path(tmp) / "j.sqlite"), KEY, group_commit=NEVER
        )
        try:
            appended = 0
            tickets: list[int] = []
            for op, n in ops:
                if op == "buffered":
                    journal.append_many(events(n, start=appended), durable=False)
                    appended += n
                    tickets.append(appended)
                elif op == "durable":
                    journal.append_many(events(n, start=appended))
                    appended += n
                else:
                    journal.flush()
                assert journal.appended == appended
                # never ahead of what is committed; a barrier makes everything durable
                assert journal.durable_through == journal.count()
                assert journal.durable_through == appended - journal.pending
                if op != "buffered":
                    assert journal.durable_through == appended
                    assert all(t <= journal.durable_through for t in tickets)
        finally:
            journal.close()
