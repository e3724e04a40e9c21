"""The stale-feed stress scenario: the bar feed goes silent or repeats its last minute.

For each configured window the feed delivers, from bar ``at_bar`` for ``bars`` minutes,
nothing (``missing``) or the last good minute again (``repeat``, a frozen feed); the withheld
bars arrive together when the feed recovers, and the operator then resumes trading. While the
feed is silent the loop is polled every ``poll_seconds`` of session time, as a live loop polls
between bars. The loop must notice within the stage's ``order_flow.stale_data_seconds`` (plus
one poll), journal a ``feed_stale`` alert, pause trading (the safe state: no new exposure), and
neither decide nor send an order on a bar older than that limit. The short form (``--short``)
closes the session the short tail after the last window.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from stairways.brokers.sim.broker import SimBroker
from stairways.clock import ManualClock
from stairways.live.loop import LiveLoop
from stairways.risk.limits import load_stage
from stairways.risk.operator import resume
from stairways.risk.types import TradingState
from stairways.stress.results import ScenarioResult
from stairways.stress.scenarios import (
    StressContext,
    _short,
    check_gates,
    common_figures,
    rehearse_scenario,
)
from stairways.stress.settings import FeedWindow, StaleFeedConfig

__all__ = ["run_stale_feed"]

log = logging.getLogger(__name__)

BAR = timedelta(minutes=1)


class _StaleFeed:
    """Stands between the rehearsal's minutes and the loop: withholds, repeats, polls."""

    def __init__(self, cfg: StaleFeedConfig) -> None:
        self.cfg = cfg
        self.clock: ManualClock | None = None
        self.i = 0
        self.held: list[tuple[Any, Any]] = []
        self.last_good: Any = None
        self.polls = 0

    def window(self, i: int) -> FeedWindow | None:
        return next((w for w in self.cfg.windows if w.at_bar <= i < w.at_bar + w.bars), None)

    def wrap_broker(self, broker: SimBroker, clock: ManualClock) -> SimBroker:
        self.clock = clock
        return broker

    def attach(self, loop: LiveLoop) -> None:
        inner = loop.on_minute

        def on_minute(bars: Any, vwaps: Any = None) -> None:
            i, self.i = self.i, self.i + 1
            w = self.window(i)
            if w is not None:
                self.held.append((bars, vwaps))
                if w.mode == "repeat" and self.last_good is not None:
                    inner(*self.last_good)
                else:
                    loop.poll()
            else:
                if self.held:
                    for late in self.held:
                        inner(*late)
                    self.held = []
                    inner(bars, vwaps)
                    self._resume(loop)
                else:
                    inner(bars, vwaps)
                self.last_good = (bars, vwaps)
            if self.window(i + 1) is not None and not loop.done:
                self._poll_between(loop)

        loop.on_minute = on_minute  # type: ignore[method-assign]

    def _poll_between(self, loop: LiveLoop) -> None:
        """Poll the loop every ``poll_seconds`` until just before the next minute's end."""
        clock = self.clock
        if clock is None:
            raise RuntimeError("the stale feed was not given the session's clock")
        end = clock.now() + BAR
        step = timedelta(seconds=self.cfg.poll_seconds)
        t = clock.now() + step
        while t < end:
            clock.set(t)
            loop.poll()
            self.polls += 1
            t += step

    def _resume(self, loop: LiveLoop) -> None:
        if loop.governor.sync() is TradingState.PAUSED and not loop.done:
            now = loop.clock.now()
            resume(loop.journal, "stress-suite", "the feed recovered (stress suite)", now)


def run_stale_feed(ctx: StressContext, cfg: StaleFeedConfig) -> ScenarioResult:
    """The stale feed scenario (see the module docstring)."""
    limit = float(load_stage(ctx.stage, ctx.risk_dir).order_flow.stale_data_seconds)
    feed = _StaleFeed(cfg)
    run = rehearse_scenario(
        ctx,
        "stale_feed",
        wrap_broker=feed.wrap_broker,
        on_loop=feed.attach,
        last_bar=_short(ctx, max(w.at_bar + w.bars for w in cfg.windows)),
    )
    figures = common_figures(run)
    recs = run.records
    alerts = [r for r in recs if r.kind == "alert" and r.payload.get("type") == "feed_stale"]
    paused = 0
    for a in alerts:
        if any(
            r.kind == "governor_state"
            and r.seq > a.seq
            and r.ts == a.ts
            and r.payload.get("state") == "PAUSED"
            and "feed_stale" in str(r.payload.get("who", ""))
            for r in recs
        ):
            paused += 1
    ages = [float(a.payload["age_seconds"]) for a in alerts]
    figures["stale_limit_seconds"] = limit
    figures["stale_windows"] = float(len(cfg.windows))
    figures["undetected_windows"] = float(max(len(cfg.windows) - len(alerts), 0))
    figures["unpaused_windows"] = float(len(cfg.windows) - paused)
    figures["detect_seconds_max"] = max(ages) if ages else float("nan")
    figures["detect_lag_seconds"] = (max(ages) - limit) if ages else float("nan")
    figures["repeated_minutes_journaled"] = float(
        sum(1 for r in recs if r.kind == "alert" and r.payload.get("type") == "feed_repeat")
    )
    figures["polls"] = float(feed.polls)
    bar_end: dict[str, datetime] = {}
    stale_decisions = 0
    for r in recs:
        if r.kind == "decision":
            end = datetime.fromisoformat(str(r.payload["bar_start"])) + BAR
            bar_end[str(r.payload["decision_id"])] = end
            if (r.ts - end).total_seconds() > limit:
                stale_decisions += 1
    stale_orders = 0
    for r in recs:
        if r.kind == "order" and r.payload.get("type") == "submitting":
            ended = bar_end.get(str(r.payload.get("decision_id")))
            if ended is not None and (r.ts - ended).total_seconds() > limit:
                stale_orders += 1
    figures["decisions_on_stale_data"] = float(stale_decisions)
    figures["orders_on_stale_data"] = float(stale_orders)
    res = ScenarioResult("stale_feed", "sim", figures, check_gates(figures, cfg.gates))
    shown = "; ".join(f"{w.mode} from bar {w.at_bar} for {w.bars} bars" for w in cfg.windows)
    res.notes.append(
        f"feed windows: {shown}; the loop is polled every {cfg.poll_seconds:g} s while the feed "
        f"is silent; stale-data limit {limit:g} s (order_flow.stale_data_seconds); the operator "
        "resumes after each recovery"
    )
    return res
