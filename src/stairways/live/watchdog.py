"""The dead-man's switch: the loop's heartbeat file and the watchdog process that reads it.

The live loop writes a small JSON heartbeat file (:class:`Heartbeat`) after every bar and every
poll: its process id, session, whether a session is running, the journal and the broker it
trades through. A separate process, the watchdog (:func:`watch`, ``stairways live watchdog``,
run by ``deploy/systemd/stairways-watchdog.service``), reads it on a timer. When a session is
running and the file has not changed for ``timeout`` seconds of wall time (the loop is frozen,
wedged or dead), the watchdog:

1. latches the emergency stop in the journal (``governor_state`` EMERGENCY_STOP by operator
   ``watchdog``, so a loop that wakes up, or a restarted one, refuses every intent);
2. opens the broker named in the heartbeat with its own connection and cancels every open
   order and flattens every position (``Broker.flatten``);
3. journals what it did (an ``alert`` of type ``watchdog``) and writes it beside the heartbeat.

It acts once per stale heartbeat; a loop that beats again re-arms it. Ages are measured with
the file's modification time against the watchdog's own wall clock, so the controllable clock
of a rehearsal does not fool it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from stairways.brokers.base import Broker
from stairways.clock import Clock, ExchangeClock
from stairways.errors import InputError
from stairways.journal import JournalError
from stairways.risk.operator import halt
from stairways.risk.ports import EventLog
from stairways.risk.state import TransitionError
from stairways.risk.types import TradingState

__all__ = [
    "Heartbeat",
    "WatchdogAction",
    "ibkr_connection",
    "read_heartbeat",
    "watch",
    "watchdog_check",
]

log = logging.getLogger(__name__)

WATCHDOG_OPERATOR = "watchdog"


class Heartbeat:
    """Writes the heartbeat file atomically, at most every ``every`` wall seconds.

    :param path: the heartbeat file
    :param info: what the watchdog needs: journal, broker kind and state, stage
    :param wall: wall clock (rate limit and the written wall time)
    :param every: least wall seconds between writes (state changes are written at once)
    """

    def __init__(
        self,
        path: Path,
        info: dict[str, Any],
        *,
        wall: Clock | None = None,
        every: float = 0.2,
    ) -> None:
        self.path = path
        self.info = dict(info)
        self.wall = wall or ExchangeClock()
        self.every = every
        self.beats = 0
        self._last = -1e18
        self._in_session: bool | None = None
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, at: datetime, session_id: str) -> None:
        """Beat (the loop calls it with the exchange time it shows)."""
        self.beat(at, session_id, in_session=True)

    def beat(self, at: datetime, session_id: str, *, in_session: bool) -> None:
        """Write the file unless the last write is younger than ``every`` and nothing changed."""
        t = self.wall.monotonic()
        if in_session == self._in_session and t - self._last < self.every:
            return
        self._last = t
        self._in_session = in_session
        self.beats += 1
        doc = {
            **self.info,
            "pid": os.getpid(),
            "session_id": session_id,
            "in_session": in_session,
            "beat": self.beats,
            "clock": at.isoformat(),
            "wall": self.wall.now().isoformat(),
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(doc, sort_keys=True))
        tmp.replace(self.path)

    def stop(self, at: datetime, session_id: str) -> None:
        """The session ended normally: the watchdog stands down."""
        self.beat(at, session_id, in_session=False)


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    """The heartbeat document, or None when there is no file yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"heartbeat file {path} is not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise InputError(f"heartbeat file {path} does not hold a JSON object")
    return doc


def ibkr_connection(
    doc: dict[str, Any], broker_config: Path | None, live: bool
) -> tuple[Path | None, bool]:
    """The broker file and live flag the watchdog flattens an IBKR loop with.

    The loop's heartbeat names its broker file and whether it trades a live account, so the
    watchdog reaches the same gateway and account without being told again. A ``--broker-config``
    given to the watchdog must be that same file (a different one could flatten elsewhere and
    leave the loop's positions unattended); ``--live`` only adds to what the heartbeat says.
    """
    named = doc.get("broker_config")
    loop_file = Path(str(named)) if named else None
    if (
        broker_config is not None
        and loop_file is not None
        and broker_config.resolve() != loop_file.resolve()
    ):
        raise InputError(
            f"--broker-config {broker_config} is not the broker file of the watched loop "
            f"({loop_file}, from its heartbeat): drop --broker-config or pass that file"
        )
    chosen = broker_config if broker_config is not None else loop_file
    return chosen, live or bool(doc.get("live", False))


@dataclass(frozen=True)
class WatchdogAction:
    """What the watchdog did about one stale heartbeat."""

    session_id: str
    age_seconds: float
    halted: bool
    flatten_orders: list[str]
    reason: str


def latch_halt(
    open_journal: Callable[[dict[str, Any]], EventLog],
    doc: dict[str, Any],
    reason: str,
    at: datetime,
    orders: list[str],
) -> bool:
    """Journal the watchdog's halt and what it did; False when the journal is unavailable."""
    try:
        journal = open_journal(doc)
        try:
            halt(journal, WATCHDOG_OPERATOR, reason, at)
        except TransitionError as err:
            # Already stopped (an operator or the loop got there first): that stop stands.
            if TradingState.EMERGENCY_STOP.value not in str(err):
                raise
            log.warning("watchdog: %s", err)
        journal.append(
            "alert",
            {
                "type": "watchdog",
                "session_id": str(doc.get("session_id")),
                "why": reason,
                "flatten_orders": orders,
                "rehearsal": bool(doc.get("rehearsal", False)),
            },
            at,
        )
    except JournalError as err:
        log.error("watchdog: could not write the halt to the journal: %s", err)
        return False
    return True


def watchdog_check(
    path: Path,
    timeout: float,
    *,
    open_journal: Callable[[dict[str, Any]], EventLog],
    open_broker: Callable[[dict[str, Any]], Broker],
    wall: Clock,
    handled: set[tuple[str, int]],
) -> WatchdogAction | None:
    """One look at the heartbeat; acts (halt, cancel, flatten) when it is stale in a session.

    :param path: the heartbeat file
    :param timeout: wall seconds without a beat that count as a dead loop
    :param open_journal: opens the journal the heartbeat names (for the latched halt)
    :param open_broker: opens the broker the heartbeat names, connected
    :param wall: the watchdog's wall clock
    :param handled: (session, beat) pairs already acted on (updated)
    """
    doc = read_heartbeat(path)
    if doc is None or not doc.get("in_session"):
        return None
    age = wall.now().timestamp() - path.stat().st_mtime
    key = (str(doc.get("session_id")), int(doc.get("beat", 0)))
    if age < timeout or key in handled:
        return None
    handled.add(key)
    now = wall.now()
    reason = (
        f"heartbeat of session {key[0]} (pid {doc.get('pid')}) stopped {age:.1f} s ago "
        f"(timeout {timeout:g} s)"
    )
    log.error("watchdog: %s; cancelling, flattening and halting", reason)
    # The broker first: a frozen loop may hold the journal's write lock, and positions must
    # not wait for it. The halt is then latched in the journal (retried by watch()).
    broker = open_broker(doc)
    try:
        results = broker.flatten()
    finally:
        broker.close()
    orders = [r.client_order_id for r in results]
    halted = latch_halt(open_journal, doc, reason, wall.now(), orders)
    if not halted:
        log.error("watchdog: positions flattened; the halt is not journaled yet, retrying")
    action = WatchdogAction(key[0], age, halted, orders, reason)
    _write_record(path, action, now)
    return action


def _write_record(path: Path, action: WatchdogAction, at: datetime) -> None:
    record = path.with_name(path.name + ".watchdog.json")
    record.write_text(
        json.dumps(
            {
                "session_id": action.session_id,
                "age_seconds": action.age_seconds,
                "halted": action.halted,
                "flatten_orders": action.flatten_orders,
                "reason": action.reason,
                "at": at.isoformat(),
            }
        )
    )


def watch(
    path: Path,
    timeout: float,
    *,
    open_journal: Callable[[dict[str, Any]], EventLog],
    open_broker: Callable[[dict[str, Any]], Broker],
    interval: float = 1.0,
    max_seconds: float | None = None,
    max_actions: int | None = None,
    wall: Clock | None = None,
) -> list[WatchdogAction]:
    """Check the heartbeat every ``interval`` seconds (bounded by ``max_seconds``/``max_actions``
    when given; the systemd service runs it unbounded)."""
    clock = wall or ExchangeClock()
    handled: set[tuple[str, int]] = set()
    actions: list[WatchdogAction] = []
    started = clock.monotonic()
    while True:
        action = watchdog_check(
            path,
            timeout,
            open_journal=open_journal,
            open_broker=open_broker,
            wall=clock,
            handled=handled,
        )
        if action is not None:
            actions.append(action)
        for i, done in enumerate(actions):
            if not done.halted:
                doc = read_heartbeat(path) or {}
                if latch_halt(open_journal, doc, done.reason, clock.now(), done.flatten_orders):
                    actions[i] = WatchdogAction(
                        done.session_id, done.age_seconds, True, done.flatten_orders, done.reason
                    )
                    _write_record(path, actions[i], clock.now())
        if (
            max_actions is not None
            and len(actions) >= max_actions
            and all(a.halted for a in actions)
        ):
            return actions
        if max_seconds is not None and clock.monotonic() - started >= max_seconds:
            return actions
        time.sleep(interval)
