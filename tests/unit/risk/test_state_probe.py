"""The state machine asks the journal for a transition only after a commit (PRAGMA data_version),
and still sees every transition of another connection or process at the very next sync."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.journal import GroupCommit, Journal, JournalLocation, JournalReader, MacKey
from stairways.risk.state import (
    Actor,
    CommitProbe,
    StateStoreError,
    TradingStateMachine,
    TransitionError,
    commit_probe,
    read_state,
)
from stairways.risk.types import TradingState
from tests.unit.risk.helpers import DAY, OPERATOR

KEY_TEXT = "state-probe-test-journal-mac-key-0123456789"
KEY = MacKey(KEY_TEXT.encode())


class _Lookups(Journal):
    """A journal that counts the state machine's ``last_seq`` lookups."""

    lookups = 0

    def last_seq(self, kind: str) -> int:
        type(self).lookups += 1
        return super().last_seq(kind)


def test_no_lookup_while_nothing_is_committed_and_one_after_any_commit(tmp_path: Path) -> None:
    location = JournalLocation.sqlite(tmp_path / "journal.sqlite")
    with _Lookups.open(location, KEY, group_commit=GroupCommit(max_delay_ms=1000.0)) as log:
        machine = TradingStateMachine(log)
        assert machine._commits is not None, "an SQLite journal gets a commit probe"
        machine.transition(TradingState.RUNNING, OPERATOR, "open", DAY)
        before = _Lookups.lookups
        for _ in range(10):
            assert machine.sync().state is TradingState.RUNNING
        assert _Lookups.lookups == before  # nothing committed: nothing looked up
        log.append("alert", {"n": 1}, DAY)  # a commit of another kind: one lookup, no replay
        assert machine.sync().state is TradingState.RUNNING
        assert machine.sync().state is TradingState.RUNNING
        assert _Lookups.lookups == before + 1
        log.append_many([("alert", {"n": 2}, DAY)], durable=False)  # buffered: not committed
        machine.sync()
        assert _Lookups.lookups == before + 1
        log.flush()  # the group commit
        machine.sync()
        assert _Lookups.lookups == before + 2
        machine.close()


def test_a_halt_by_another_process_is_seen_at_the_next_sync(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    location = JournalLocation.sqlite(path)
    with Journal.open(location, KEY) as log:
        trader = TradingStateMachine(log)
        trader.transition(TradingState.RUNNING, OPERATOR, "open", DAY)
        for _ in range(3):
            assert trader.sync().state is TradingState.RUNNING
        script = textwrap.dedent(
            f"""
            from datetime import datetime
            from zoneinfo import ZoneInfo
            from stairways.journal import Journal, JournalLocation, MacKey
            from stairways.risk.operator import halt
            at = datetime(2024, 3, 5, 11, 0, tzinfo=ZoneInfo("America/New_York"))
            key = MacKey({KEY_TEXT.encode()!r})
            with Journal.open(JournalLocation.sqlite({str(path)!r}), key) as log:
                halt(log, "bob", "halt from another process", at)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        record = trader.sync()
        assert record.state is TradingState.EMERGENCY_STOP
        assert (record.who, record.why) == ("bob", "halt from another process")
        trader.close()


_STATES = list(TradingState)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["own", "other", "own_alert", "other_alert", "buffered", "flush"]),
            st.sampled_from(_STATES),
        ),
        max_size=30,
    )
)
def test_every_sync_sees_exactly_the_journals_state(
    tmp_path: Path, steps: list[tuple[str, TradingState]]
) -> None:
    """Whoever commits what (this machine, another connection, transitions or other records,
    buffered or not), every sync returns the state a fresh read of the journal finds."""
    path = tmp_path / f"j{len(list(tmp_path.iterdir()))}.sqlite"
    location = JournalLocation.sqlite(path)
    group = GroupCommit(max_delay_ms=1000.0)
    with (
        Journal.open(location, KEY, group_commit=group) as mine,
        Journal.open(location, KEY) as theirs,
    ):
        trader = TradingStateMachine(mine)
        other = TradingStateMachine(theirs)
        for what, to in steps:
            if what in ("own", "other"):
                machine = trader if what == "own" else other
                actor = Actor.operator("alice") if what == "other" else Actor.governor("rule")
                with contextlib.suppress(TransitionError):  # a refused one leaves no record
                    machine.transition(to, actor, "step", DAY)
            elif what == "own_alert":
                mine.append("alert", {"n": 1}, DAY)
            elif what == "other_alert":
                theirs.append("alert", {"n": 1}, DAY)
            elif what == "buffered":
                mine.append_many([("alert", {"n": 1}, DAY)], durable=False)
            else:
                mine.flush()
            with JournalReader.open(location) as reader:
                expected = read_state(reader)
            assert trader.sync() == expected
        trader.close()
        other.close()


def test_no_probe_for_a_log_that_is_not_an_sqlite_file() -> None:
    from stairways.risk.ports import InMemoryEventLog

    assert commit_probe(InMemoryEventLog()) is None
    assert commit_probe(object()) is None
    machine: Any = TradingStateMachine(InMemoryEventLog())
    assert machine._commits is None


def _commit(path: Path, value: int) -> None:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("INSERT INTO t VALUES (?)", (value,))


def test_the_probe_reports_every_commit_of_other_connections_in_wal_and_rollback_modes(
    tmp_path: Path,
) -> None:
    for mode in ("wal", "delete"):
        path = tmp_path / f"{mode}.sqlite"
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute(f"PRAGMA journal_mode = {mode}")
            conn.execute("CREATE TABLE t (x INTEGER)")
        probe = CommitProbe(path)
        assert probe.changed()  # the first ask
        assert not probe.changed()
        # every writer closes after its commit: the probe's connection keeps the WAL index
        for value in range(3):
            _commit(path, value)
            assert probe.changed(), (mode, value)
            assert not probe.changed(), (mode, value)
        probe.forget()
        assert probe.changed()
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no commit: no change needed
            conn.execute("INSERT INTO t VALUES (9)")
        assert probe.changed()
        probe.close()


def test_a_probe_on_a_missing_journal_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match=r"missing\.sqlite"):
        CommitProbe(tmp_path / "missing.sqlite")


def test_a_journal_reached_through_a_symbolic_link_is_watched_all_the_same(
    tmp_path: Path,
) -> None:
    real = tmp_path / "real" / "journal.sqlite"
    real.parent.mkdir()
    with Journal.open(JournalLocation.sqlite(real), KEY) as created:
        created.append("alert", {"n": 0}, DAY)
    link = tmp_path / "link.sqlite"
    link.symlink_to(real)
    with (
        Journal.open(JournalLocation.sqlite(link), KEY) as mine,
        Journal.open(JournalLocation.sqlite(real), KEY) as theirs,
    ):
        trader = TradingStateMachine(mine)
        assert trader._commits is not None
        TradingStateMachine(theirs).transition(TradingState.RUNNING, OPERATOR, "open", DAY)
        assert trader.sync().state is TradingState.RUNNING
        assert not trader._commits.changed()
        theirs.append("alert", {"n": 1}, DAY)
        assert trader._commits.changed()
        trader.close()


_SHARED_INDEX = """
import sqlite3, subprocess, sys
from datetime import datetime
from zoneinfo import ZoneInfo
from stairways.journal import Journal, JournalLocation, MacKey
from stairways.risk.operator import halt, resume
from stairways.risk.state import TradingStateMachine
at = datetime(2024, 3, 5, 11, 0, tzinfo=ZoneInfo("America/New_York"))
path = sys.argv[1]
with Journal.open(JournalLocation.sqlite(path), MacKey(sys.argv[2].encode())) as log:
    trader = TradingStateMachine(log)
    for n in range(3):
        resume(log, "alice", f"open {n}", at)  # a machine of its own, opened and closed
        # another process opens the database, reads and closes
        code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        code += "c.execute('SELECT count(*) FROM sqlite_master').fetchone(); c.close()"
        subprocess.run([sys.executable, "-c", code, path], check=True)
        log.append("alert", {"n": n}, at)
        assert trader.sync().state.value == "RUNNING", trader.record
        halt(log, "alice", f"stop {n}", at)
        assert trader.sync().state.value == "EMERGENCY_STOP"
        resume(log, "alice", f"paused {n}", at)
print("ok")
"""


def test_machines_opened_and_closed_leave_this_process_s_sqlite_locks_alone(
    tmp_path: Path,
) -> None:
    """Machines come and go in one process while other processes open the journal: the
    process's own SQLite connections keep working (nothing resets the WAL index under them;
    a process that lost its locks would die of SIGBUS here or read a reset index)."""
    path = tmp_path / "journal.sqlite"
    done = subprocess.run(
        [sys.executable, "-c", _SHARED_INDEX, str(path), KEY_TEXT],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "ok"
