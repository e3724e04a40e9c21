"""A live loop that is behind (the next bar already waiting) lets its decisions' orders wait in
its outbox for their group commit, and sends them only once their records are durable.

The real loop, governor (its memory riding the journal's commits), simulated broker and
journal of the decision flood, on the stress run; the test hands the bars itself and says when
the loop is behind. Facts checked: no order reaches the broker before its ``submitting`` record
is durable; orders go out in decision order; none waits more than ``max_deferred_bars`` bars; a
loop that is not behind sends its orders on the bar it decided them; while they wait the
governor sees them as working orders; orders still waiting when the session ends are journaled
as abandoned and never sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stairways.clock import ManualClock
from stairways.journal import GroupCommit, Journal, JournalLocation, JournalReader, MacKey
from stairways.live.loop import BAR, LiveLoop, LoopSettings
from stairways.live.observe import SessionObserver
from stairways.live.session import load_session_bars
from stairways.risk.store import SqlStateStore
from stairways.stress.flood import _start_session
from stairways.stress.settings import load_stress_config
from stairways.stress.suite import build_context
from tests.integration.live.conftest import LiveRun
from tests.integration.stress_helpers import live_run, stress_run, suite_config  # noqa: F401


@dataclass
class _Session:
    loop: LiveLoop
    journal: Journal
    tickets: Any  # the flood's ticket journal: submitting cid -> ticket until placed
    placed: list[tuple[str, int, bool]]  # (client order id, bar placed at, durable then)
    minutes: list[Any]
    vwaps: list[Any]
    clock: ManualClock
    broker: Any


class _Recorder:
    """The loop's broker, noting each order placed: at which bar, and whether its records
    were durable then."""

    def __init__(self, inner: Any, loop: LiveLoop, journal: Journal, tickets: Any) -> None:
        self._inner, self._loop, self._journal, self._tickets = inner, loop, journal, tickets
        self.placed: list[tuple[str, int, bool]] = []

    def place(self, req: Any) -> Any:
        ticket = self._tickets.tickets.get(req.client_order_id)
        durable = ticket is not None and self._journal.durable_through >= ticket
        self.placed.append((req.client_order_id, self._loop.last_bar, durable))
        return self._inner.place(req)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def session(stress_run: LiveRun, tmp_path: Path) -> Iterator[_Session]:  # noqa: F811
    cfg = load_stress_config(suite_config(tmp_path, stress_run, ("decision_flood",)))
    ctx = build_context(cfg, None, tmp_path / "work")
    pcfg = ctx.policy.cfg
    symbols = tuple(pcfg.data.symbols)
    history, minutes, vwaps = load_session_bars(ctx.store, pcfg.data, symbols, ctx.day, ctx.split)
    template = SessionObserver(
        symbols, ctx.policy.normaliser, pcfg.market, pcfg.env, ctx.day, pcfg.data.calendar
    )
    template.warm_up(history)
    loc = JournalLocation.sqlite(tmp_path / "journal.sqlite")
    # a flusher that waits long: what commits is the loop's own doing
    journal = Journal.open(
        loc, MacKey(secrets.token_bytes(32)), group_commit=GroupCommit(1000.0, 100_000)
    )
    states = SqlStateStore(loc, journal=journal)
    clock = ManualClock(minutes[0][symbols[0]].start)
    loop, broker, _ = _start_session(ctx, "OUTBOX-1", clock, journal, states, template)
    tickets = loop.journal
    recorder = _Recorder(loop.broker, loop, journal, tickets)
    loop.broker = recorder
    try:
        yield _Session(loop, journal, tickets, recorder.placed, minutes, vwaps, clock, broker)
    finally:
        broker.close()
        states.close()
        journal.close()


def _drive(s: _Session, behind: Callable[[int], bool], bars: int) -> list[set[str]]:
    """Hand ``bars`` bars; at bar j the loop is behind when ``behind(j)``. Returns, after each
    bar, the orders waiting in the outbox that the governor's account lists as working."""
    seen: list[set[str]] = []
    for j in range(bars):
        if s.loop.done:
            break
        minute = s.minutes[j]
        s.loop.next_bar_waiting = lambda j=j: behind(j)
        s.clock.set(next(iter(minute.values())).start + BAR)
        s.loop.on_minute(minute, s.vwaps[j])
        waiting = set(s.tickets.tickets) - {cid for cid, _, _ in s.placed}
        working = {o.order_id for o in s.loop.account().open_orders}
        assert waiting <= working, (j, waiting, working)
        seen.append(waiting)
    return seen


def _records(s: _Session) -> list[Any]:
    s.journal.flush()
    with JournalReader.open(s.journal.location) as reader:
        return [r for r in reader.records() if r.kind == "order"]


def test_a_behind_loop_sends_each_order_once_durable_in_order_and_within_the_cap(
    session: _Session,
) -> None:
    s = session
    cap = LoopSettings(stage="x", rehearsal=True, close_at_last_close=True).max_deferred_bars
    assert cap == 8  # pinned: a flood's orders wait at most 8 bars for their commit
    # behind for 40 bars, caught up for 10, behind again
    waiting = _drive(s, lambda j: not 40 <= j < 50, 80)
    assert any(waiting), "the loop never deferred an order: the test exercised nothing"
    s.loop.close_session(s.loop.last_bar)
    s.loop.finish()
    orders = _records(s)
    submitting = [r.payload["client_order_id"] for r in orders if r.payload["type"] == "submitting"]
    bar_of = {
        r.payload["client_order_id"]: r.payload["bar"]
        for r in orders
        if r.payload["type"] == "submitting"
    }
    placed = [cid for cid, _, _ in s.placed if cid in bar_of]
    assert placed == submitting  # every decided order sent once, in decision order
    assert all(durable for _, _, durable in s.placed)  # write-ahead
    waits = {cid: at - bar_of[cid] for cid, at, _ in s.placed if cid in bar_of}
    assert max(waits.values()) <= cap
    assert max(waits.values()) >= 1  # some did wait
    # caught up: decided and sent on the same bar
    assert all(waits[cid] == 0 for cid in placed if 41 <= bar_of[cid] < 50)
    sent = [r.payload["client_order_id"] for r in orders if r.payload["type"] == "sent"]
    assert sent == submitting


def test_orders_still_waiting_when_the_session_ends_are_abandoned_not_sent(
    session: _Session,
) -> None:
    s = session
    left: set[str] = set()
    for j in range(len(s.minutes) - 1):  # behind until a bar leaves an order waiting
        left = _drive(s, lambda j: True, j + 1)[-1] if j == 0 else _next(s, j)
        if left:
            break
    assert left, "no order was waiting: the test exercised nothing"
    s.loop.finish()
    orders = _records(s)
    abandoned = {r.payload["client_order_id"] for r in orders if r.payload["type"] == "abandoned"}
    assert abandoned == left
    assert not left & {cid for cid, _, _ in s.placed}


def _next(s: _Session, j: int) -> set[str]:
    """Hand bar ``j`` to a loop that is behind; the orders waiting after it."""
    minute = s.minutes[j]
    s.loop.next_bar_waiting = lambda: True
    s.clock.set(next(iter(minute.values())).start + BAR)
    s.loop.on_minute(minute, s.vwaps[j])
    return set(s.tickets.tickets) - {cid for cid, _, _ in s.placed}
