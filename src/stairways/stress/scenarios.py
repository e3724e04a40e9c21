"""Stress scenarios: each one rehearses a stored session through the real live loop
(:func:`stairways.live.session.rehearse`: the governor, the journal, the simulated broker) with
a fault injected, then measures its figures from the journal and the broker.

- ``flash_crash``: the session's bars from ``at_bar`` on are shocked by ``shock`` within one bar
  and recover linearly over ``recovery_bars`` bars (in a copy of the bar store); the simulated
  broker's spreads are multiplied by ``spread_multiplier`` for the whole session.
- ``broker_disconnect``: the simulated broker drops the connection for ``bars`` bars, and
  later every broker call takes ``added_latency_ms`` (on the session's clock).
- ``order_burst``: the model's decisions are replaced, for ``changes`` consecutive bars, by
  actions that change a position on every bar.

- ``decision_flood``: the loop at 1,000 decisions per second (:mod:`stairways.stress.flood`).

A scenario whose fault did not play out (the model's own drawdown rule, ``env.drawdown_cap``,
ended the session first, or the session is shorter) fails with that reason in its ``error``
(:func:`fault_missed`), whatever its gates say: it tested nothing.

Short forms (``--short``, ``ctx.short``): a rehearsed scenario ends its session
:data:`SHORT_TAIL` bars after its fault has played out (the closing step runs there, as at the
close); the flood runs ``short_seconds`` instead of ``seconds``.

Latency: a rehearsal runs on the controllable clock, on which every duration would read 0. The
suite gives the loop a clock that keeps the session's timestamps but measures durations with
the wall clock, so ``decision_p99_ms`` (observation to verdicts, the loop's own figure) and the
broker-latency watch are real; ``bar_pipeline_p99_ms`` times each bar's whole pipeline
(features, broker, decision, governor, journal writes). Times between journal records
(``pause_flag_seconds``) are on the session's clock.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stairways.brokers.sim.faults import NO_FAULTS, Disconnect, FaultPlan
from stairways.clock import Clock, ManualClock
from stairways.data import calendar as cal
from stairways.data.panel_builder import warmup_start
from stairways.data.splits import resolve_split
from stairways.data.store import BarStore
from stairways.journal import Journal, JournalLocation, JournalReader, JournalRecord, MacKey
from stairways.live.evidence import collect_sessions
from stairways.live.loop import LiveLoop
from stairways.live.model import LivePolicy
from stairways.live.session import RehearsalResult, SessionPlan, rehearse
from stairways.market.actions import apply_action, n_actions
from stairways.risk.store import SqlStateStore
from stairways.stress.results import GateResult, ScenarioResult
from stairways.stress.settings import (
    OPS,
    BrokerDisconnectConfig,
    FlashCrashConfig,
    GateConfig,
    OrderBurstConfig,
)

__all__ = [
    "SCENARIOS",
    "BurstPolicy",
    "LaggedBroker",
    "PolicyProxy",
    "ScenarioJournal",
    "StressContext",
    "burst_missed",
    "check_gates",
    "common_figures",
    "disconnect_figures",
    "disconnect_missed",
    "expected_pnl",
    "fault_missed",
    "fill_records",
    "first_decision_ms",
    "last_decision_bar",
    "last_live_bar",
    "latency_flatten",
    "latency_stop",
    "orders_submitted_after",
    "pause_record",
    "rehearse_scenario",
    "run_broker_disconnect",
    "run_decision_flood",
    "run_flash_crash",
    "run_order_burst",
    "session_stop",
]

log = logging.getLogger(__name__)

FLAT = 1e-9
# Bars a short form runs on after its fault window before the session closes.
SHORT_TAIL = 10


@dataclass(frozen=True)
class StressContext:
    """What every scenario replays.

    :param policy: the loaded model
    :param store: the bar store holding the session and its warm-up
    :param day: the session replayed
    :param split: the split of the session (the features' warm-up follows it)
    :param stage: the governor's stage
    :param risk_dir: folder of the stage files
    :param work: scratch folder (journals, simulated broker state, stressed bar stores)
    :param short: run the short form of every scenario with a duration (``--short``)
    """

    policy: LivePolicy
    store: Path
    day: date
    split: str
    stage: str
    risk_dir: Path
    work: Path
    short: bool = False


@dataclass
class ScenarioJournal:
    """A scenario's folder under the suite's work folder, its journal (a fresh key) and the
    governor's state store in it, bound to the journal as in a live session (its saves ride
    the journal's commits, :mod:`stairways.risk.store`)."""

    folder: Path
    location: JournalLocation
    journal: Journal
    states: SqlStateStore

    @classmethod
    def open(cls, ctx: StressContext, name: str) -> ScenarioJournal:
        folder = ctx.work / name
        folder.mkdir(parents=True, exist_ok=True)
        loc = JournalLocation.sqlite(folder / "journal.sqlite")
        journal = Journal.open(loc, MacKey(secrets.token_bytes(32)))
        return cls(folder, loc, journal, SqlStateStore(loc, journal=journal))

    def close(self) -> None:
        self.states.close()
        self.journal.close()

    def read(self) -> tuple[list[JournalRecord], int]:
        """The journal's records and its sessions' limit breaches (after :meth:`close`)."""
        with JournalReader.open(self.location) as reader:
            records = list(reader.records())
            sessions = collect_sessions(reader)
        return records, sum(len(s.breaches) for s in sessions)


@dataclass
class _Run:
    result: RehearsalResult
    records: list[JournalRecord]
    bar_ms: list[float]
    breaches: int


class PolicyProxy:
    """The loaded model with another config or other actions (everything else forwarded)."""

    def __init__(self, inner: LivePolicy, cfg: Any = None) -> None:
        self._inner = inner
        self.cfg = cfg if cfg is not None else inner.cfg

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class BurstPolicy(PolicyProxy):
    """``count`` decisions that each change a target, on the bars from bar ``start`` on (the
    loop's bar index once :meth:`attach` gave it the loop: a session whose first minutes were
    rebuilt without decisions keeps the burst on the same bars)."""

    def __init__(self, inner: LivePolicy, start: int, count: int) -> None:
        super().__init__(inner)
        self.start, self.count = start, count
        self.set_id = -1
        self.loop: LiveLoop | None = None
        self.k = 0
        self.targets = np.zeros(len(inner.cfg.data.symbols))
        self.n = n_actions(inner.cfg.market.action_set, len(self.targets))
        self.forced = 0

    def attach(self, loop: LiveLoop) -> None:
        """Take the loop's action set and bar index (an ``on_loop`` hook)."""
        self.set_id = loop.set_id
        self.loop = loop

    def new_session(self) -> None:
        self._inner.new_session()
        self.k = 0
        self.targets[:] = 0.0

    def act(self, obs: np.ndarray) -> int:
        action = int(self._inner.act(obs))
        loop = self.loop
        # the loop's own targets once attached (what the action is applied to)
        now = loop.targets.copy() if loop is not None else self.targets
        bar = loop.last_bar if loop is not None else self.k
        if self.start <= bar < self.start + self.count and self.set_id >= 0:
            out = now.copy()
            for a in range(self.n):
                cand = (action + 1 + a) % self.n
                if apply_action(self.set_id, cand, now, out):
                    action = cand
                    self.forced += 1
                    break
        out = now.copy()
        apply_action(self.set_id, action, now, out)
        self.targets = out
        self.k += 1
        return action


class _WallDurations:
    """The session's clock for timestamps, the wall clock for durations: the loop's decision
    latency and its broker-latency watch then measure real time, while the session replays
    its stored minutes on the controllable clock."""

    def __init__(self, session: Clock) -> None:
        self._session = session

    def now(self) -> datetime:
        return self._session.now()

    def monotonic(self) -> float:
        return time.perf_counter()


class LaggedBroker:
    """A broker as the loop sees it: ``events`` and ``place`` first wait in :meth:`_lag` (a
    subclass says when and how long), everything else is forwarded."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def _lag(self) -> None:
        raise NotImplementedError

    def events(self, timeout: float = 0.0) -> Any:
        self._lag()
        return self._inner.events(timeout)

    def place(self, req: Any) -> Any:
        self._lag()
        return self._inner.place(req)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _SlowBroker(LaggedBroker):
    """Forwards to the simulated broker; during ``bars`` bars from bar ``slow_from`` every call
    takes ``seconds`` longer (a real wait: the loop times broker calls with the wall clock)."""

    def __init__(self, inner: Any, slow_from: int, bars: int, seconds: float) -> None:
        super().__init__(inner)
        self._slow_from, self._until, self._seconds = slow_from, slow_from + bars, seconds
        self.bars = 0

    def _lag(self) -> None:
        if self._slow_from <= self.bars < self._until:
            time.sleep(self._seconds)

    def on_bars(self, bars: Any) -> Any:
        self.bars += 1
        self._lag()
        return self._inner.on_bars(bars)


def _timed(loop: LiveLoop, sink: list[float]) -> None:
    """Time every bar of ``loop`` with the wall clock (the session's clock is manual)."""
    inner = loop.on_minute

    def on_minute(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            sink.append(1000.0 * (time.perf_counter() - t0))

    loop.on_minute = on_minute  # type: ignore[method-assign]


def _close_after(loop: LiveLoop, last_bar: int) -> None:
    """A short form: the session's closing step right after bar ``last_bar``."""
    inner = loop.on_minute

    def on_minute(*args: Any, **kwargs: Any) -> Any:
        out = inner(*args, **kwargs)
        if loop.last_bar >= last_bar and not loop.done:
            loop.close_session(loop.last_bar)
        return out

    loop.on_minute = on_minute  # type: ignore[method-assign]


def _short(ctx: StressContext, fault_end: int) -> int | None:
    """The last bar of a scenario's short form (None: the whole session)."""
    return fault_end + SHORT_TAIL if ctx.short else None


def rehearse_scenario(
    ctx: StressContext,
    name: str,
    *,
    policy: Any = None,
    store: Path | None = None,
    faults: FaultPlan = NO_FAULTS,
    wrap_broker: Callable[[Any, ManualClock], Any] | None = None,
    on_loop: Callable[[LiveLoop], None] | None = None,
    last_bar: int | None = None,
) -> _Run:
    sj = ScenarioJournal.open(ctx, name)
    bar_ms: list[float] = []

    def hook(loop: LiveLoop) -> None:
        loop.clock = _WallDurations(loop.clock)
        _timed(loop, bar_ms)
        if last_bar is not None:
            _close_after(loop, last_bar)
        if on_loop is not None:
            on_loop(loop)

    try:
        result = rehearse(
            policy if policy is not None else ctx.policy,
            SessionPlan(
                day=ctx.day,
                stage=ctx.stage,
                split=ctx.split,
                operator="stress-suite",
                risk_dir=ctx.risk_dir,
                state_dir=sj.folder / "sim",
            ),
            journal=sj.journal,
            store_state=sj.states,
            location=sj.location,
            bar_store=store or ctx.store,
            faults=faults,
            wrap_broker=wrap_broker,
            on_loop=hook,
        )
    finally:
        sj.close()
    records, breaches = sj.read()
    return _Run(result=result, records=records, bar_ms=bar_ms, breaches=breaches)


def common_figures(run: _Run) -> dict[str, float]:
    s = run.result.summary
    positions = dict(s.get("positions", {}))
    figures = dict(s.get("figures", {}))
    ms = np.asarray(run.bar_ms) if run.bar_ms else np.zeros(1)
    return {
        "bars": float(len(run.bar_ms)),
        "decisions": float(s.get("decisions", 0)),
        "orders_sent": float(s.get("orders_sent", 0)),
        "max_drawdown": float(figures.get("max_drawdown", 0.0)),
        "net_pnl": float(figures.get("pnl", 0.0)),
        "limit_breaches": float(run.breaches),
        "open_position_at_end": float(sum(abs(float(q)) for q in positions.values())),
        "decision_p50_ms": float(s.get("latency_ms_p50", math.nan)),
        "decision_p99_ms": float(s.get("latency_ms_p99", math.nan)),
        "bar_pipeline_p50_ms": float(np.percentile(ms, 50)),
        "bar_pipeline_p99_ms": float(np.percentile(ms, 99)),
        "first_decision_ms": first_decision_ms(run.records),
        "last_live_bar": float(last_live_bar(run.records)),
    }


def first_decision_ms(records: list[JournalRecord]) -> float:
    """The latency of the session's first decision (NaN: none). The process's first calls of
    the decision path are in it (in the suite's first scenario, the cold start), and a session
    of a few dozen decisions has a ``decision_p99_ms`` close to its largest one."""
    first = next((r for r in records if r.kind == "decision"), None)
    return math.nan if first is None else float(first.payload.get("latency_ms", math.nan))


def check_gates(figures: dict[str, float], gates: tuple[GateConfig, ...]) -> list[GateResult]:
    """Each gate against the figures; a gate naming a figure the scenario lacks fails."""
    out: list[GateResult] = []
    for g in gates:
        value = figures.get(g.metric)
        ok = value is not None and OPS[g.op](value, g.threshold)
        out.append(GateResult(g.metric, g.op, g.threshold, value, bool(ok)))
    return out


def _shocked_store(ctx: StressContext, cfg: FlashCrashConfig, path: Path) -> Path:
    """A copy of the session and its warm-up with the flash crash applied to the session."""
    data = ctx.policy.cfg.data
    first = warmup_start(data, resolve_split(data, ctx.split)).date()
    symbols = list(data.symbols)
    with BarStore(ctx.store, read_only=True) as bs:
        bars = bs.read_bars(symbols, first, ctx.day)
    local = pd.DatetimeIndex(bars["ts"]).tz_convert("America/New_York")
    today = np.asarray(local.date == ctx.day)
    opens = cal.sessions(ctx.day, ctx.day, data.calendar)
    open_ts = pd.Timestamp(opens.opens[0])
    k = ((pd.DatetimeIndex(bars["ts"]) - open_ts) // pd.Timedelta(minutes=1)).to_numpy()
    # The factor at a bar's close: 1 before the shock, 1 + shock at the shock bar's close,
    # then back to 1 linearly over recovery_bars bars.
    rel = k - cfg.at_bar
    close_f = np.where(
        rel < 0,
        1.0,
        1.0 + cfg.shock * np.clip(1.0 - rel / cfg.recovery_bars, 0.0, 1.0),
    )
    open_rel = rel - 1
    open_f = np.where(
        open_rel < 0,
        1.0,
        1.0 + cfg.shock * np.clip(1.0 - open_rel / cfg.recovery_bars, 0.0, 1.0),
    )
    close_f = np.where(today, close_f, 1.0)
    open_f = np.where(today, open_f, 1.0)
    out = bars.copy()
    out["open"] = bars["open"] * open_f
    out["close"] = bars["close"] * close_f
    lo, hi = np.minimum(open_f, close_f), np.maximum(open_f, close_f)
    out["low"] = np.minimum(bars["low"] * lo, np.minimum(out["open"], out["close"]))
    out["high"] = np.maximum(bars["high"] * hi, np.maximum(out["open"], out["close"]))
    if "vwap" in out.columns:
        mid = (open_f + close_f) / 2.0
        out["vwap"] = (bars["vwap"] * mid).clip(lower=out["low"], upper=out["high"])
    with BarStore(path) as bs:
        bs.write_bars(
            out,
            source=f"stress:flash_crash:{ctx.store}",
            synthetic=True,
            details={"shock": cfg.shock, "at_bar": cfg.at_bar, "recovery": cfg.recovery_bars},
        )
    return path


def run_flash_crash(ctx: StressContext, cfg: FlashCrashConfig) -> ScenarioResult:
    """The flash crash scenario (see the module docstring)."""
    folder = ctx.work / "flash_crash"
    folder.mkdir(parents=True, exist_ok=True)
    store = _shocked_store(ctx, cfg, folder / "bars.duckdb")
    pcfg = ctx.policy.cfg
    costs = pcfg.market.costs
    wide = costs.model_copy(
        update={"half_spread_bps": costs.half_spread_bps * cfg.spread_multiplier}
    )
    market = pcfg.market.model_copy(update={"costs": wide})
    policy = PolicyProxy(ctx.policy, pcfg.model_copy(update={"market": market}))
    run = rehearse_scenario(
        ctx,
        "flash_crash",
        policy=policy,
        store=store,
        last_bar=_short(ctx, cfg.at_bar + cfg.recovery_bars),
    )
    figures = common_figures(run)
    res = ScenarioResult(
        "flash_crash",
        "sim",
        figures,
        check_gates(figures, cfg.gates),
        error=fault_missed(
            run.records, figures["last_live_bar"] >= cfg.at_bar, f"the shock at bar {cfg.at_bar}"
        ),
    )
    res.notes.append(
        f"shock {cfg.shock:+.1%} at bar {cfg.at_bar}, linear recovery over {cfg.recovery_bars} "
        f"bars, half spread x{cfg.spread_multiplier:g}"
    )
    return res


def run_broker_disconnect(ctx: StressContext, cfg: BrokerDisconnectConfig) -> ScenarioResult:
    """The broker disconnect and latency scenario (see the module docstring)."""
    faults = FaultPlan(disconnects=(Disconnect(start=cfg.at_bar, bars=cfg.bars),))
    seconds = cfg.added_latency_ms / 1000.0
    run = rehearse_scenario(
        ctx,
        "broker_disconnect",
        faults=faults,
        wrap_broker=lambda b, c: _SlowBroker(b, cfg.latency_from_bar, cfg.latency_bars, seconds),
        last_bar=_short(ctx, max(cfg.at_bar + cfg.bars, cfg.latency_from_bar + cfg.latency_bars)),
    )
    figures = common_figures(run)
    recs = run.records
    notes = disconnect_figures(recs, figures)
    figures["latency_flatten"] = latency_flatten(recs, figures)
    res = ScenarioResult(
        "broker_disconnect",
        "sim",
        figures,
        check_gates(figures, cfg.gates),
        error=disconnect_missed(recs, cfg),
    )
    res.notes.extend(notes)
    res.notes.append(
        f"disconnect at bar {cfg.at_bar} for {cfg.bars} bars; broker calls +"
        f"{cfg.added_latency_ms:g} ms for {cfg.latency_bars} bars from bar {cfg.latency_from_bar}"
    )
    return res


def run_order_burst(ctx: StressContext, cfg: OrderBurstConfig) -> ScenarioResult:
    """The order burst scenario (see the module docstring)."""
    policy = BurstPolicy(ctx.policy, cfg.at_bar, cfg.changes)
    run = rehearse_scenario(
        ctx,
        "order_burst",
        policy=policy,
        on_loop=policy.attach,
        last_bar=_short(ctx, cfg.at_bar + cfg.changes),
    )
    figures = common_figures(run)
    ordered = sum(abs(o.quantity) for o in run.result.orders)
    filled = sum(abs(e.quantity) for e in run.result.executions)
    figures["position_changes"] = float(policy.forced)
    figures["filled_share"] = filled / ordered if ordered else 0.0
    expected_pnl(figures, fill_records(run.records))
    res = ScenarioResult(
        "order_burst",
        "sim",
        figures,
        check_gates(figures, cfg.gates),
        error=burst_missed(run.records, cfg),
    )
    res.notes.append(
        f"{policy.forced} forced position changes from bar {cfg.at_bar}; expected P&L is the "
        "fills' cash flow less their fees (flat at the end), against the session book's"
    )
    return res


def fill_records(records: list[JournalRecord]) -> list[JournalRecord]:
    """The journal's fill records."""
    return [r for r in records if r.kind == "fill"]


def expected_pnl(figures: dict[str, float], fills: list[JournalRecord]) -> None:
    """``expected_pnl``: the fills' cash flow less their fees (the P&L of a session that ends
    flat); ``pnl_difference``: its distance from ``net_pnl`` (infinite unless flat at the end)."""
    cash = sum(-float(r.payload["quantity"]) * float(r.payload["price"]) for r in fills)
    fees = sum(float(r.payload["fee"]) for r in fills)
    figures["expected_pnl"] = cash - fees
    flat = figures["open_position_at_end"] <= FLAT
    figures["pnl_difference"] = abs(cash - fees - figures["net_pnl"]) if flat else float("inf")


def pause_record(records: list[JournalRecord], who: str) -> JournalRecord | None:
    """The first governor pause whose ``who`` names ``who`` (None: no such pause)."""
    return next(
        (
            r
            for r in records
            if r.kind == "governor_state"
            and r.payload.get("state") == "PAUSED"
            and who in str(r.payload.get("who", ""))
        ),
        None,
    )


def orders_submitted_after(records: list[JournalRecord], seq: int) -> int:
    """How many orders the journal shows submitted after record ``seq``."""
    return sum(
        1
        for r in records
        if r.seq > seq and r.kind == "order" and r.payload.get("type") == "submitting"
    )


def disconnect_figures(records: list[JournalRecord], figures: dict[str, float]) -> list[str]:
    """``pause_flag_seconds``, ``safe_state_seconds`` and ``orders_leaked`` of a broker
    disconnect, from the journal; the notes (a missing disconnect or pause)."""
    down = next((r for r in records if r.payload.get("type") == "broker_disconnect"), None)
    # The loop pauses the governor first and journals the disconnect alert with it.
    paused = pause_record(records, "broker_disconnect")
    if down is None or paused is None:
        return ["no disconnect or no pause was journaled"]
    pause_s = (paused.ts - down.ts).total_seconds()
    figures["pause_flag_seconds"] = pause_s
    # The safe state is trading stopped by the governor (no order leaves while paused;
    # ``orders_leaked`` checks that), so it is reached when the pause is.
    figures["safe_state_seconds"] = pause_s
    figures["orders_leaked"] = float(orders_submitted_after(records, paused.seq))
    return []


def latency_stop(records: list[JournalRecord]) -> JournalRecord | None:
    """The governor's emergency stop by the broker-latency watch (None: there was none)."""
    return next(
        (
            r
            for r in records
            if r.kind == "governor_state"
            and r.payload.get("state") == "EMERGENCY_STOP"
            and "latency" in str(r.payload.get("why", ""))
        ),
        None,
    )


def latency_flatten(records: list[JournalRecord], figures: dict[str, float]) -> float:
    """1.0 when the latency watch stopped trading and the session ended flat, else 0.0."""
    return float(latency_stop(records) is not None and figures["open_position_at_end"] <= FLAT)


def session_stop(records: list[JournalRecord]) -> JournalRecord | None:
    """The loop's ``session_stop`` alert: the run's drawdown rule (``env.drawdown_cap``) closed
    everything and ended the session (None: it did not)."""
    return next(
        (r for r in records if r.kind == "alert" and r.payload.get("type") == "session_stop"),
        None,
    )


def last_live_bar(records: list[JournalRecord]) -> int:
    """The last bar the session saw while it traded: the bar of its drawdown stop, else of its
    last decision (-1: none)."""
    stop = session_stop(records)
    if stop is not None:
        return int(stop.payload["bar"])
    return last_decision_bar(records)


def last_decision_bar(records: list[JournalRecord]) -> int:
    """The bar of the session's last decision (-1: none)."""
    return max((int(r.payload["bar"]) for r in records if r.kind == "decision"), default=-1)


def fault_missed(records: list[JournalRecord], played_out: bool, fault: str) -> str:
    """The scenario's error when its fault did not play out ("" when it did): a session that
    ended before its fault tested nothing, so it fails whatever its gates say."""
    if played_out:
        return ""
    stop = session_stop(records)
    if stop is not None:
        ended = f"the session stopped at bar {stop.payload['bar']}: {stop.payload.get('why', '')}"
    else:
        ended = f"the session's last decision was at bar {last_live_bar(records)}"
    return (
        f"the fault did not play out ({fault}): {ended}; move the fault earlier in the stress "
        "config or stress another session (day)"
    )


def disconnect_missed(records: list[JournalRecord], cfg: BrokerDisconnectConfig) -> str:
    """The broker disconnect's :func:`fault_missed`: the disconnect happened, and the session
    traded on until the latency watch stopped it or the slow broker's bars were over."""
    down = any(r.payload.get("type") == "broker_disconnect" for r in records)
    lag_end = cfg.latency_from_bar + cfg.latency_bars
    played = down and (latency_stop(records) is not None or last_live_bar(records) >= lag_end - 1)
    return fault_missed(
        records,
        played,
        f"the disconnect at bar {cfg.at_bar} and the slow broker on bars "
        f"{cfg.latency_from_bar}..{lag_end - 1}",
    )


def burst_missed(records: list[JournalRecord], cfg: OrderBurstConfig) -> str:
    """The order burst's :func:`fault_missed`: the session decided on every bar of the burst."""
    last = cfg.at_bar + cfg.changes - 1
    return fault_missed(
        records,
        last_decision_bar(records) >= last,
        f"{cfg.changes} position changes on bars {cfg.at_bar}..{last}",
    )


def run_decision_flood(ctx: StressContext, cfg: Any) -> ScenarioResult:
    """The decision flood (:func:`stairways.stress.flood.run_flood`)."""
    from stairways.stress.flood import run_flood  # it imports this module's gate check

    return run_flood(ctx, cfg)


SCENARIOS: dict[str, Callable[[StressContext, Any], ScenarioResult]] = {
    "flash_crash": run_flash_crash,
    "broker_disconnect": run_broker_disconnect,
    "order_burst": run_order_burst,
    "decision_flood": run_decision_flood,
}
