"""The restart stress scenario: the live loop's process is killed with SIGKILL mid-session.

The session is first rehearsed without interruption in this process (the reference). Then
the same session runs in a separate process (:mod:`stairways.stress.restart_worker`, the
real loop with its own journal and simulated-broker SQLite store); when its journal shows the
decision of a bar drawn at random between the fractions ``kill_between`` of the session, the
process is killed with SIGKILL and started again, ``kills`` times, and then left to finish.

Measured against the reference and between the stores: orders lost (in the reference, not at
the broker) and duplicated (twice at the broker, or not in the reference); the broker's fills
equal to the reference's; the journal's sent orders and fills equal to the broker's store; the
session's P&L equal to the reference's; flat at the end. The short form (``--short``) closes
both sessions :data:`SHORT_SESSION_BARS` bars plus the short tail after the open.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stairways.brokers.settings import SimConfig
from stairways.brokers.sim.broker import SimBroker
from stairways.errors import InternalError
from stairways.journal import JournalLocation, JournalReader
from stairways.journal.store import JournalNotFoundError
from stairways.live.records import END_TYPE
from stairways.stress.results import ScenarioResult
from stairways.stress.scenarios import FLAT, StressContext, _short, check_gates, rehearse_scenario
from stairways.stress.settings import RestartConfig

__all__ = ["run_restart"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
# The short form's session: it closes this many bars (plus the short tail) after the open.
SHORT_SESSION_BARS = 40


def _decisions(loc: JournalLocation, path: Path) -> int:
    """The highest bar the journal at ``path`` holds a decision for (-1: none yet)."""
    if not path.exists():
        return -1
    try:
        with JournalReader.open(loc) as reader:
            bars = [int(r.payload["bar"]) for r in reader.records(kinds=["decision"])]
    except JournalNotFoundError:
        return -1  # the process is creating it
    return max(bars, default=-1)


def _worker(spec: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "stairways.stress.restart_worker", str(spec)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=spec.parent,
        )


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _broker_store(ctx: StressContext, state_dir: Path, session_id: str) -> tuple[Any, Any]:
    """The orders and executions held in the worker's simulated-broker SQLite store."""
    files = sorted(state_dir.glob(f"*-{session_id}.sqlite"))
    if len(files) != 1:
        raise InternalError(
            f"expected one simulated broker store for {session_id} in {state_dir}, "
            f"found {[f.name for f in files]}"
        )
    mk = ctx.policy.cfg.market
    sim = SimBroker(
        SimConfig(
            state_path=files[0],
            starting_capital=mk.starting_capital,
            costs=mk.costs,
            account="SIM-" + session_id,
        ),
        tuple(ctx.policy.cfg.data.symbols),
    )
    sim.connect()
    try:
        return sim.all_orders(), sim.executions()
    finally:
        sim.close()


def run_restart(ctx: StressContext, cfg: RestartConfig) -> ScenarioResult:
    """The restart scenario (see the module docstring)."""
    last_bar = _short(ctx, SHORT_SESSION_BARS)
    reference = rehearse_scenario(ctx, "restart_reference", last_bar=last_bar)
    n = int(reference.result.summary.get("decisions", 0)) or len(reference.bar_ms)
    folder = ctx.work / "restart"
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "mac.key"
    key_file.touch(mode=0o600)
    key_file.write_text(secrets.token_hex(32), encoding="utf-8")
    journal = folder / "journal.sqlite"
    loc = JournalLocation.sqlite(journal)
    ref = ctx.policy.ref
    spec = folder / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "run_dir": str(Path(ref.run_dir).resolve()),
                "checkpoint": ref.checkpoint,
                "day": ctx.day.isoformat(),
                "split": ctx.split,
                "stage": ctx.stage,
                "risk_dir": str(Path(ctx.risk_dir).resolve()),
                "store": str(Path(ctx.store).resolve()),
                "journal": str(journal),
                "state_dir": str(folder / "sim"),
                "key_file": str(key_file),
                "last_bar": last_bar,
            }
        ),
        encoding="utf-8",
    )
    log_path = folder / "worker.log"
    rng = random.Random(cfg.seed)
    lo, hi = (int(f * (n - 1)) for f in cfg.kill_between)
    deadline = time.monotonic() + cfg.timeout_seconds
    killed_at: list[int] = []
    notes: list[str] = []
    last = -1
    while len(killed_at) < cfg.kills:
        target = rng.randint(max(lo, last + 1), max(hi, last + 1))
        proc = _worker(spec, log_path)
        try:
            while proc.poll() is None and _decisions(loc, journal) < target:
                if time.monotonic() > deadline:
                    raise InternalError(
                        f"the loop process did not reach bar {target} within "
                        f"{cfg.timeout_seconds:g} s; its log ends:\n{_tail(log_path)}"
                    )
                time.sleep(POLL_SECONDS)
            if proc.poll() is not None:
                notes.append(f"the loop process ended (code {proc.returncode}) before bar {target}")
                break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
        last = _decisions(loc, journal)
        killed_at.append(last)
        log.info("restart scenario: killed the loop process at bar %d (drawn %d)", last, target)
    proc = _worker(spec, log_path)
    try:
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        raise InternalError(
            f"the restarted loop did not finish within {cfg.timeout_seconds:g} s; its log "
            f"ends:\n{_tail(log_path)}"
        ) from None
    if code != 0:
        raise InternalError(
            f"the restarted loop process exited {code}; its log ends:\n{_tail(log_path)}"
        )
    with JournalReader.open(loc) as reader:
        records = list(reader.records())
    session_id = reference.result.session_id
    ends = [r for r in records if r.kind == "config" and r.payload.get("type") == END_TYPE]
    orders, executions = _broker_store(ctx, folder / "sim", session_id)
    ids = [o.client_order_id for o in orders]
    ref_ids = [o.client_order_id for o in reference.result.orders]
    lost = len(set(ref_ids) - set(ids))
    duplicated = len(ids) - len(set(ids)) + len(set(ids) - set(ref_ids))
    fills = [(e.client_order_id, e.quantity, e.price) for e in executions]
    ref_fills = [(e.client_order_id, e.quantity, e.price) for e in reference.result.executions]
    sent = {
        str(r.payload["client_order_id"])
        for r in records
        if r.kind == "order" and r.payload.get("type") in ("sent", "recovered")
    }
    decided = {i for i in ids if not i.startswith("sw-flatten")}
    journal_fills = {str(r.payload["exec_id"]) for r in records if r.kind == "fill"}
    broker_fills = {e.exec_id for e in executions}
    end = ends[-1].payload if ends else {}
    pnl = float(dict(end.get("figures", {})).get("pnl", float("nan")))
    ref_pnl = float(reference.result.summary["figures"]["pnl"])
    positions = dict(end.get("positions", {}))
    figures: dict[str, float] = {
        "bars": float(n),
        "kills": float(len(killed_at)),
        "killed_at_bar_first": float(killed_at[0]) if killed_at else float("nan"),
        "orders": float(len(ids)),
        "reference_orders": float(len(ref_ids)),
        "lost_orders": float(lost),
        "duplicate_orders": float(duplicated),
        "fills_match_reference": float(fills == ref_fills),
        "journal_broker_difference": float(len(sent ^ decided) + len(journal_fills ^ broker_fills)),
        "pnl_difference": abs(pnl - ref_pnl),
        "session_ends": float(len(ends)),
        "open_position_at_end": float(sum(abs(float(q)) for q in positions.values()))
        if ends
        else float("inf"),
    }
    res = ScenarioResult("restart", "sim", figures, check_gates(figures, cfg.gates))
    res.notes.extend(notes)
    res.notes.append(
        f"the loop process was killed with SIGKILL at bar(s) {killed_at} of {n} (seed "
        f"{cfg.seed}) and restarted; compared with an uninterrupted rehearsal, the simulated "
        "broker's SQLite store and the journal"
    )
    if figures["open_position_at_end"] > FLAT:
        res.notes.append(f"positions at the end: {positions}")
    return res
