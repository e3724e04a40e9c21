"""The decision flood: the live loop driven at ``rate`` decisions per second for ``seconds``.

Sessions of the stored day are replayed back to back through the real pipeline: the online
features, the policy, the governor (its memory in the journal's database), the simulated
broker and one journal with group commit (:class:`stairways.journal.GroupCommit`). Within a
session, bar ``j`` is *due* ``j / rate`` seconds after the session's first bar (an open-loop
schedule: a slow bar delays the ones behind it, as a backlog would in a real flood); the loop is
handed the bar at its due time, or at once when it is behind. Between sessions the loop is
idle (the next session is set up: governor, broker, warmed-up features), and that time is not
flood time.

Figures:

- ``pipeline_p99_ms``: from a bar's due time to the end of its handling (features, broker,
  decision, governor, journal, orders), or, when its decision's orders waited for their group
  commit (the loop was behind: "Behind" in :mod:`stairways.live.loop`), to when they were handed
  to the broker; so it includes any backlog. ``service_p99_ms`` is the handling alone.
- ``decisions_per_second``: decisions over flood time (the offered rate when the loop keeps up).
- ``memory_growth_mb``: the process's resident memory, largest sample after each session less
  the sample after the first session (imports, compiled kernels and caches are then in place).
- ``decisions_lost``: decisions the loops made that the journal does not hold (after close);
  ``chain_verified``: the journal's HMAC chain verifies; ``orders_sent_undurable``: orders
  handed to the broker while journal records or the governor's staged memory were still
  uncommitted (the write-ahead rule: 0).

The simulated broker keeps its state in memory here: it plays the exchange, whose bookkeeping
is not the pipeline under test.
"""

from __future__ import annotations

import copy
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np

from stairways.brokers.settings import SimConfig
from stairways.brokers.sim.broker import SimBroker
from stairways.clock import ManualClock
from stairways.errors import MissingResourceError
from stairways.journal import (
    GroupCommit,
    Journal,
    JournalLocation,
    JournalReader,
    MacKey,
    verify_journal,
)
from stairways.live.loop import BAR, LiveLoop, LoopSettings
from stairways.live.observe import SessionObserver
from stairways.live.records import SESSION_TYPE
from stairways.live.recovery import JournalCursor, SessionRecords
from stairways.live.session import SessionScopedStore, load_session_bars
from stairways.risk.governor import Governor
from stairways.risk.limits import load_stage
from stairways.risk.operator import resume
from stairways.risk.store import SqlStateStore
from stairways.risk.types import TradingState
from stairways.stress.results import ScenarioResult
from stairways.stress.settings import DecisionFloodConfig

__all__ = ["resident_mb", "run_flood"]

log = logging.getLogger(__name__)

OPERATOR = "stress-suite"
_SPIN = 0.0002  # closer than this to a due time the driver spins instead of sleeping


def resident_mb() -> float:
    """This process's resident memory in MB (Linux ``/proc/self/statm``)."""
    try:
        with Path("/proc/self/statm").open(encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
    except OSError as err:
        raise MissingResourceError(
            f"cannot read /proc/self/statm for the flood's memory figure: {err}; the decision "
            "flood measures memory on Linux only"
        ) from err
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class _TicketJournal:
    """The journal as the loop sees it: forwards everything, and notes for every ``submitting``
    order record the journal's ``appended`` count once it was appended (its ticket: the record
    is durable when ``durable_through`` reaches it)."""

    def __init__(self, inner: Journal) -> None:
        self._inner = inner
        self.tickets: dict[str, int] = {}

    def append_many(self, events: Any, **kwargs: Any) -> Any:
        events = list(events)
        out = self._inner.append_many(events, **kwargs)
        for kind, payload, _ in events:
            if kind == "order" and payload.get("type") == "submitting":
                self.tickets[str(payload["client_order_id"])] = self._inner.appended
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _WriteAheadCheck:
    """Forwards to the simulated broker and counts orders placed before their ``submitting``
    record was durable, or with no such record (each one breaks the write-ahead rule)."""

    def __init__(self, inner: SimBroker, journal: _TicketJournal) -> None:
        self._inner = inner
        self._journal = journal
        self.undurable = 0

    def place(self, req: Any) -> Any:
        ticket = self._journal.tickets.pop(req.client_order_id, None)
        if ticket is None or self._journal.durable_through < ticket:
            self.undurable += 1
        return self._inner.place(req)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _wait_until(due: float) -> None:
    while True:
        left = due - time.perf_counter()
        if left <= 0.0:
            return
        if left > _SPIN:
            time.sleep(left - _SPIN)


def _start_session(
    ctx: Any,
    sid: str,
    clock: ManualClock,
    journal: Journal,
    states: SqlStateStore,
    template: SessionObserver,
) -> tuple[LiveLoop, SimBroker, _WriteAheadCheck]:
    """A new session of the flood, set up as a rehearsal sets one up (its start record, a
    governor with the session's memory, a connected simulated broker, warmed-up features)."""
    policy = ctx.policy
    pcfg = policy.cfg
    symbols = tuple(pcfg.data.symbols)
    journal.append(
        "config",
        {
            "type": SESSION_TYPE,
            "session_id": sid,
            "rehearsal": True,
            "day": ctx.day.isoformat(),
            "stage": ctx.stage,
            "model_id": policy.ref.model_id,
            "fingerprint": policy.ref.fingerprint,
            "run_dir": str(policy.ref.run_dir),
            "checkpoint": policy.ref.checkpoint,
            "data_fingerprint": policy.manifest.data.panel_fingerprint,
            "config_name": pcfg.name,
            "broker": "sim",
            "clock": "manual",
            "symbols": list(symbols),
            "capital": pcfg.market.starting_capital,
            "warmup_split": ctx.split,
            "journal": str(journal.location),
            "stress": "decision_flood",
        },
        clock.now(),
    )
    governor = Governor(
        load_stage(ctx.stage, ctx.risk_dir),
        journal=journal,
        store=SessionScopedStore(states, sid),
        calendar=pcfg.data.calendar,
    )
    governor.announce(clock.now())
    for _ in range(3):  # after an emergency stop of an earlier session: stop -> paused -> on
        if governor.sync() is TradingState.RUNNING:
            break
        resume(journal, OPERATOR, f"start of flood session {sid}", clock.now())
    broker = SimBroker(
        SimConfig(
            state_path=None,
            starting_capital=pcfg.market.starting_capital,
            costs=pcfg.market.costs,
            account="SIM-" + sid,
        ),
        symbols,
        cursor=JournalCursor(SessionRecords(sid)),
    )
    broker.connect()
    ticketed = _TicketJournal(journal)
    checked = _WriteAheadCheck(broker, ticketed)
    policy.new_session()
    loop = LiveLoop(
        policy=policy,
        observer=copy.deepcopy(template),
        governor=governor,
        broker=checked,
        journal=ticketed,
        clock=clock,
        session_id=sid,
        settings=LoopSettings(stage=ctx.stage, rehearsal=True, close_at_last_close=True),
    )
    return loop, broker, checked


def run_flood(ctx: Any, cfg: DecisionFloodConfig) -> ScenarioResult:
    """The decision flood (see the module docstring); ``ctx`` is the suite's StressContext."""
    from stairways.stress.scenarios import check_gates

    policy = ctx.policy
    pcfg = policy.cfg
    symbols = tuple(pcfg.data.symbols)
    seconds = cfg.short_seconds if ctx.short else cfg.seconds
    history, minutes, vwaps = load_session_bars(ctx.store, pcfg.data, symbols, ctx.day, ctx.split)
    template = SessionObserver(
        symbols, policy.normaliser, pcfg.market, pcfg.env, ctx.day, pcfg.data.calendar
    )
    template.warm_up(history)
    folder: Path = ctx.work / "decision_flood"
    folder.mkdir(parents=True, exist_ok=True)
    loc = JournalLocation.sqlite(folder / "journal.sqlite")
    key = MacKey(secrets.token_bytes(32))
    journal = Journal.open(
        loc,
        key,
        group_commit=GroupCommit(
            max_delay_ms=cfg.group_commit_ms, max_records=cfg.group_commit_records
        ),
    )
    # The governor's memory rides the journal's commits, as in a live session.
    states = SqlStateStore(loc, journal=journal)
    interval = 1.0 / cfg.rate
    capacity = int(cfg.rate * seconds) + 2 * len(minutes) + 1
    # Written now (np.zeros' pages would become resident as the flood fills them, and count
    # as the flood's memory growth).
    pipeline = np.full(capacity, np.nan, dtype=np.float64)
    service = np.full(capacity, np.nan, dtype=np.float64)
    dues = np.full(capacity, np.nan, dtype=np.float64)
    next_due = [0.0]
    decision_p99: list[float] = []
    n = 0
    decisions = made = orders = undurable = 0
    flood = 0.0
    session = 0
    baseline = peak = 0.0
    try:
        # Session 0 warms up (compiled kernels, caches, the journal's first pages): it is
        # journaled and checked like the others but its time, bars and memory are not counted.
        while flood < seconds:
            warm = session == 0
            sid = (
                f"F{ctx.day:%y%m%d}{ctx.stage[:1]}{policy.ref.fingerprint[:6]}-"
                f"{'warm' if warm else session}"
            )
            clock = ManualClock(minutes[0][symbols[0]].start)
            loop, broker, checked = _start_session(ctx, sid, clock, journal, states, template)
            first = n

            def dispatched(k: int, first: int = first, warm: bool = warm) -> None:
                # a decision's orders handed to the broker after its bar was handled
                i = first + k
                if not warm and i < capacity and not np.isnan(dues[i]):
                    pipeline[i] = max(pipeline[i], time.perf_counter() - dues[i])

            loop.next_bar_waiting = lambda: time.perf_counter() >= next_due[0]
            loop.on_dispatch = dispatched
            try:
                start = time.perf_counter()
                for j, (minute, vwap) in enumerate(zip(minutes, vwaps, strict=True)):
                    if loop.done or (not warm and flood + time.perf_counter() - start >= seconds):
                        break
                    due = start + j * interval
                    _wait_until(due)
                    began = time.perf_counter()
                    next_due[0] = due + interval
                    clock.set(minute[symbols[0]].start + BAR)
                    loop.on_minute(minute, vwap)
                    end = time.perf_counter()
                    if not warm:
                        pipeline[n] = end - due
                        service[n] = end - began
                        dues[n] = due
                        n += 1
                if not loop.done and loop.last_bar >= 0:
                    # the flood's time ran out inside the session: its closing step now
                    loop.close_session(loop.last_bar)
                if not warm:
                    flood += time.perf_counter() - start
                loop.finish()
            finally:
                broker.close()
            made += len(loop.steps)
            undurable += checked.undurable
            rss = resident_mb()
            if warm:
                baseline = peak = rss
            else:
                decisions += len(loop.steps)
                orders += loop.orders_sent
                if loop.latencies_ms:
                    decision_p99.append(float(np.percentile(loop.latencies_ms, 99)))
                peak = max(peak, rss)
            log.info(
                "flood session %s: %d decisions, %.2f s of flood so far",
                sid,
                len(loop.steps),
                flood,
            )
            session += 1
        sessions = session - 1
        commits = journal.commits
    finally:
        states.close()
        journal.close()
    with JournalReader.open(loc) as reader:
        report = verify_journal(reader, key)
        journaled = sum(1 for _ in reader.records(kinds=["decision"]))
        records = reader.count()
    ms_pipe = pipeline[:n] * 1e3 if n else np.zeros(1)
    ms_service = service[:n] * 1e3 if n else np.zeros(1)
    figures = {
        "offered_rate": float(cfg.rate),
        "seconds": float(seconds),
        "sessions": float(sessions),
        "bars": float(n),
        "decisions": float(decisions),
        "flood_seconds": flood,
        "decisions_per_second": decisions / flood if flood > 0 else 0.0,
        "pipeline_p50_ms": float(np.percentile(ms_pipe, 50)),
        "pipeline_p99_ms": float(np.percentile(ms_pipe, 99)),
        "pipeline_max_ms": float(ms_pipe.max()),
        "service_p50_ms": float(np.percentile(ms_service, 50)),
        "service_p99_ms": float(np.percentile(ms_service, 99)),
        "decision_p99_ms": max(decision_p99) if decision_p99 else float("nan"),
        "orders_sent": float(orders),
        "orders_sent_undurable": float(undurable),
        "journal_records": float(records),
        "journal_commits": float(commits),
        "records_per_commit": records / commits if commits else 0.0,
        "decisions_lost": float(made - journaled),
        "chain_verified": float(report.ok),
        "memory_baseline_mb": baseline,
        "memory_growth_mb": peak - baseline,
    }
    res = ScenarioResult("decision_flood", "sim", figures, check_gates(figures, cfg.gates))
    res.notes.append(
        f"{cfg.rate:g} decisions/s offered for {seconds:g} s of flood ({sessions} sessions of "
        f"{ctx.day} back to back); group commit every {cfg.group_commit_ms:g} ms or "
        f"{cfg.group_commit_records} records, orders written durably before they are sent"
    )
    if not report.ok:
        res.notes.append(f"journal verification: {report}")
    return res
