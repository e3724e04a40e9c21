"""Fixtures of the monitoring tests: a journal written as the live loop writes, a monitor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stairways.clock import ManualClock
from stairways.journal import Journal, JournalLocation, JournalReader
from stairways.live.ladder_config import load_ladder_config
from stairways.monitoring.service import Monitor
from stairways.security.secret import Secret
from tests.unit.monitoring.session_writer import T0, SessionWriter, open_journal

TOKEN = "operator-token-for-tests-0123456789"


class Tick:
    """A controllable monotonic clock (seconds)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = open_journal(tmp_path / "journal.sqlite")
    try:
        yield j
    finally:
        j.close()


@pytest.fixture
def writer(journal: Journal) -> SessionWriter:
    return SessionWriter(journal)


@pytest.fixture
def tick() -> Tick:
    return Tick()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def monitor(journal: Journal, clock: ManualClock, tick: Tick) -> Iterator[Monitor]:
    reader = JournalReader.open(JournalLocation.sqlite(journal.location.path))  # type: ignore[arg-type]
    m = Monitor(
        reader,
        clock,
        writer=journal,
        operator_token=Secret(TOKEN),
        ladder_config=load_ladder_config(None),
        monotonic=tick,
    )
    try:
        yield m
    finally:
        reader.close()
