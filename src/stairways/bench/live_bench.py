"""``stairways bench live``: bar-to-intent latency of the live loop, and the time to see a halt.

Latency: a stored session is replayed bar by bar through what the live loop does between a
bar's arrival and its order intents: the online features of every symbol, the run's
normaliser, the env's observation, the policy (one deterministic forward pass), the action's
targets, and the governor's check of an intent (one per bar, so that every bar pays for it).
Each bar is timed with ``perf_counter``; the journal and the broker are left out (they are
timed by ``bench journal`` and are the same with or without a policy). Passes alternate
between the live loop's numpy forward pass (:mod:`stairways.live.fastpolicy`) and SB3's torch
forward pass of the same weights, so the ratio between them is measured under one load.

Halt time: a rehearsal runs paced (``pace`` wall seconds per bar, polling every ``poll``
seconds) in a thread; another journal handle (as ``stairways halt`` from another terminal)
latches the emergency stop, and the wall time until the loop has cancelled and flattened is
measured.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

from stairways.clock import ExchangeClock
from stairways.env import kernels as kn
from stairways.journal import Journal, JournalLocation, MacKey
from stairways.live.loop import BAR, LiveLoop
from stairways.live.model import LivePolicy, ref_from_run
from stairways.live.observe import SessionBook, SessionObserver
from stairways.live.session import SessionPlan, load_session_bars, rehearse
from stairways.market.actions import apply_action, target_shares
from stairways.risk.governor import Governor
from stairways.risk.limits import RISK_CONFIG_DIR, load_stage
from stairways.risk.operator import halt
from stairways.risk.ports import InMemoryEventLog, InMemoryStateStore
from stairways.risk.store import SqlStateStore
from stairways.risk.types import AccountState, Intent, MarketMark, Position

__all__ = [
    "HaltTiming",
    "LatencyComparison",
    "LatencyFigures",
    "measure_halt",
    "measure_latency",
]


@dataclass(frozen=True)
class LatencyFigures:
    """Per-bar latency in microseconds, whole chain and by part, for one policy path."""

    path: str
    bars: int
    p50_us: float
    p99_us: float
    max_us: float
    parts_p50_us: dict[str, float]
    parts_p99_us: dict[str, float]


@dataclass(frozen=True)
class LatencyComparison:
    """The live path (numpy forward pass) and SB3's torch forward pass, measured in one run.

    :param fast: figures with the policy's numpy forward pass (what the live loop uses)
    :param torch: figures with SB3's torch forward pass (the baseline), or None when the model
        has no numpy forward pass (then ``fast`` is the torch path)
    :param forward_path: the loaded policy's forward path and, for torch, why
    :param actions_agree: the two paths chose the same action on every bar measured
    :param load: the machine's load average and this process's scheduling policy
    """

    fast: LatencyFigures
    torch: LatencyFigures | None
    forward_path: str
    actions_agree: bool
    load: str


def machine_load() -> str:
    """Load average, CPUs and the scheduling policy (real-time under ``chrt -f``) as text."""
    avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    policy = os.sched_getscheduler(0)
    if policy == os.SCHED_FIFO:
        prio = f"real-time SCHED_FIFO priority {os.sched_getparam(0).sched_priority}"
    elif policy == os.SCHED_RR:
        prio = f"real-time SCHED_RR priority {os.sched_getparam(0).sched_priority}"
    else:
        prio = "normal priority"
    return f"load average {avg} on {os.cpu_count()} CPUs, {prio}"


def _figures(path: str, samples: list[float], parts: dict[str, list[float]]) -> LatencyFigures:
    us = np.asarray(samples) * 1e6
    return LatencyFigures(
        path=path,
        bars=len(us),
        p50_us=float(np.percentile(us, 50)),
        p99_us=float(np.percentile(us, 99)),
        max_us=float(us.max()),
        parts_p50_us={k: float(np.percentile(np.asarray(v) * 1e6, 50)) for k, v in parts.items()},
        parts_p99_us={k: float(np.percentile(np.asarray(v) * 1e6, 99)) for k, v in parts.items()},
    )


def measure_latency(
    run_dir: Path,
    day: date,
    split: str | None,
    *,
    checkpoint: str = "final",
    repeats: int = 3,
    risk_dir: Path = RISK_CONFIG_DIR,
    stage: str = "paper",
) -> LatencyComparison:
    """Time bar -> features -> observation -> policy -> targets -> governor check.

    Passes over the session alternate between the live (numpy) forward pass and SB3's torch
    forward pass, ``repeats`` timed passes each after one untimed warm-up pass each, so both
    see the same machine load.
    """
    import torch

    torch.set_num_threads(1)
    policy = LivePolicy(ref_from_run(run_dir, checkpoint))
    cfg = policy.cfg
    symbols = tuple(cfg.data.symbols)
    history, minutes, vwaps = load_session_bars(cfg.data.store_path, cfg.data, symbols, day, split)
    governor = Governor(
        load_stage(stage, risk_dir), journal=InMemoryEventLog(), store=InMemoryStateStore()
    )
    paths: dict[str, Callable[[np.ndarray], int]] = {"numpy": policy.act}
    if policy.fast is not None:
        paths["torch"] = policy.act_torch
    samples: dict[str, list[float]] = {p: [] for p in paths}
    parts: dict[str, dict[str, list[float]]] = {
        p: {"features": [], "policy": [], "governor": []} for p in paths
    }
    chosen: dict[str, list[int]] = {p: [] for p in paths}
    for rep in range(repeats + 1):
        for name, act in paths.items():
            obs = SessionObserver(symbols, policy.normaliser, cfg.market, cfg.env, day)
            obs.warm_up(history)
            book = SessionBook(symbols, cfg.market.starting_capital)
            targets = np.zeros(len(symbols))
            set_id = int(obs.ep[kn.EP_ACTION_SET])
            policy.new_session()
            timed = rep > 0  # the first pass of each path warms caches and compiles
            for k, (minute, vwap) in enumerate(zip(minutes, vwaps, strict=True)):
                t0 = time.perf_counter()
                obs.absorb(minute, vwap)
                book.mark(obs.closes(k))
                o = obs.observe(k, book)
                t1 = time.perf_counter()
                action = act(o)
                apply_action(set_id, action, targets, targets)
                t2 = time.perf_counter()
                sym = symbols[k % len(symbols)]
                j = k % len(symbols)
                close = float(obs.closes(k)[j])
                want = target_shares(1.0 if targets[j] >= 0 else -1.0, 5000.0, close)
                end = minute[sym].start + BAR
                account = AccountState(
                    now=end,
                    cash=book.figures()["cash"],
                    positions={s: Position(0.0) for s in symbols},
                    marks={s: MarketMark(last=float(minute[s].close), at=end) for s in symbols},
                )
                intent = Intent(
                    intent_id=f"b{k}-{sym}",
                    decision_id=f"b{k}",
                    model_id="bench",
                    symbol=sym,
                    reason="bench",
                    target_shares=float(want),
                    decision_price=close,
                )
                governor.check(intent, account)
                t3 = time.perf_counter()
                if not timed:
                    continue
                chosen[name].append(action)
                samples[name].append(t3 - t0)
                parts[name]["features"].append(t1 - t0)
                parts[name]["policy"].append(t2 - t1)
                parts[name]["governor"].append(t3 - t2)
    fast_name = "numpy" if policy.fast is not None else "torch"
    fast = _figures(fast_name, samples["numpy"], parts["numpy"])
    baseline = _figures("torch", samples["torch"], parts["torch"]) if "torch" in paths else None
    agree = "torch" not in paths or chosen["numpy"] == chosen["torch"]
    return LatencyComparison(
        fast=fast,
        torch=baseline,
        forward_path=policy.forward_path,
        actions_agree=agree,
        load=machine_load(),
    )


@dataclass(frozen=True)
class HaltTiming:
    """Wall seconds from the halt's journal write to the loop's flatten, per trial."""

    seconds: list[float]
    pace: float
    poll: float


def measure_halt(
    run_dir: Path,
    day: date,
    split: str | None,
    *,
    checkpoint: str = "final",
    trials: int = 3,
    pace: float = 0.5,
    poll: float = 0.25,
    risk_dir: Path = RISK_CONFIG_DIR,
) -> HaltTiming:
    """Halt a paced rehearsal from another journal handle and time how soon it is flat."""
    policy = LivePolicy(ref_from_run(run_dir, checkpoint))
    wall = ExchangeClock()
    key = MacKey(b"bench-live-halt-key-0123456789abcdef")
    out: list[float] = []
    with TemporaryDirectory(prefix="stairways-bench-live-") as tmp:
        for trial in range(trials):
            location = JournalLocation.sqlite(Path(tmp) / f"halt{trial}.sqlite")
            journal = Journal.open(location, key)
            # the governor's memory rides the journal's commits, as in a live session
            states = SqlStateStore(location, journal=journal)
            holder: list[LiveLoop] = []
            errors: list[BaseException] = []

            def run(
                journal: Journal = journal,
                states: SqlStateStore = states,
                holder: list[LiveLoop] = holder,
                errors: list[BaseException] = errors,
            ) -> None:
                try:
                    rehearse(
                        policy,
                        SessionPlan(
                            day=day,
                            split=split,
                            operator="bench",
                            pace=pace,
                            poll_seconds=poll,
                            risk_dir=risk_dir,
                            state_dir=Path(tmp) / "sim",
                        ),
                        journal=journal,
                        store_state=states,
                        on_loop=holder.append,
                    )
                except Exception as err:  # noqa: BLE001 - re-raised by the measuring thread
                    errors.append(err)

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            deadline = wall.monotonic() + 120.0
            while (not holder or holder[0].last_bar < 5) and wall.monotonic() < deadline:
                if errors:
                    raise errors[0]
                time.sleep(0.01)
            loop = holder[0]
            operator = Journal.open(location, key)
            # wait a random fraction of a bar so the halt lands anywhere between two polls
            time.sleep(float(np.random.default_rng(trial).uniform(0.0, pace)))
            t0 = wall.monotonic()
            halt(operator, "bench", "bench live: halt timing", loop.clock.now())
            while not loop.stopped and wall.monotonic() < t0 + 30.0:
                time.sleep(0.002)
            out.append(wall.monotonic() - t0)
            loop.request_stop("bench finished", exit_after=True)
            thread.join(timeout=120.0)
            operator.close()
            states.close()
            journal.close()
            if errors:
                raise errors[0]
    return HaltTiming(seconds=out, pace=pace, poll=poll)
