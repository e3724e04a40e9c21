"""The state machine sees every transition of another connection or process at the very next
sync, whoever commits what in between."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.journal import GroupCommit, Journal, JournalLocation, JournalReader, MacKey
from stairways.risk.state import (
    Actor,
    TradingStateMachine,
    TransitionError,
    read_state,
)
from stairways.risk.types import TradingState
from tests.unit.risk.helpers import DAY, OPERATOR

KEY_TEXT = "state-probe-test-journal-mac-key-0123456789"
KEY = MacKey(KEY_TEXT.encode())


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
        TradingStateMachine(theirs).transition(TradingState.RUNNING, OPERATOR, "open", DAY)
        assert trader.sync().state is TradingState.RUNNING
        TradingStateMachine(theirs).transition(TradingState.PAUSED, OPERATOR, "pause", DAY)
        assert trader.sync().state is TradingState.PAUSED
