"""The fake-gateway stress scenarios replay the session the loop would trade, however slow the
machine: the gateway serves the next minute only once the loop has handled the last.

Before, the replay waited at most 2 s for the loop's decision and then went on: on a busy
machine (the nightly run, after the decision flood) the loop's orders then filled at later
prices and the minutes it missed were rebuilt without a decision, so the session differed from
the one meant, and in a combined full run the tiny model's drawdown rule ended
``broker_disconnect_ibkr``'s session before its disconnect (no pause, no figures).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from stairways.journal import JournalLocation, JournalReader
from stairways.stress.gateway import run_order_burst_ibkr
from stairways.stress.scenarios import PolicyProxy, StressContext
from stairways.stress.settings import load_stress_config
from stairways.stress.suite import build_context
from tests.integration.live.conftest import LiveRun
from tests.integration.stress_helpers import live_run, stress_run, suite_config  # noqa: F401

STALL_SECONDS = 2.5  # longer than the former 2 s wait of the replay
CHANGES = 20


class _Stalling(PolicyProxy):
    """The model, but its decisions on ``bars`` take ``STALL_SECONDS`` longer (a busy
    machine holding the loop on those minutes)."""

    def __init__(self, inner: Any, bars: set[int]) -> None:
        super().__init__(inner)
        self.bars = bars
        self.k = 0

    def new_session(self) -> None:
        self._inner.new_session()
        self.k = 0

    def act(self, obs: np.ndarray) -> int:
        if self.k in self.bars:
            time.sleep(STALL_SECONDS)
        self.k += 1
        return int(self._inner.act(obs))


def _session(ctx: StressContext) -> tuple[list[tuple[int, int]], list[tuple[str, float, float]]]:
    """The decisions (bar, action) and fills (symbol, quantity, price) the scenario journaled."""
    loc = JournalLocation.sqlite(ctx.work / "order_burst_ibkr" / "journal.sqlite")
    with JournalReader.open(loc) as reader:
        records = list(reader.records())
    decisions = [
        (int(r.payload["bar"]), int(r.payload["action"])) for r in records if r.kind == "decision"
    ]
    fills = [
        (str(r.payload["symbol"]), float(r.payload["quantity"]), float(r.payload["price"]))
        for r in records
        if r.kind == "fill"
    ]
    return decisions, fills


def test_a_stalled_loop_trades_the_same_session_against_the_gateway(
    stress_run: LiveRun,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = suite_config(tmp_path, stress_run, ("order_burst_ibkr",))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["order_burst_ibkr"]["changes"] = CHANGES  # a shorter replay than the shipped 50
    data["order_burst_ibkr"]["gates"] = [
        g for g in data["order_burst_ibkr"]["gates"] if g["metric"] != "position_changes"
    ]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = load_stress_config(path)
    base = replace(build_context(cfg, None, tmp_path / "a"), short=True)
    # the burst's changes come with orders: stall two of those decisions
    slow = replace(base, policy=_Stalling(base.policy, {12, 20}), work=tmp_path / "b")
    plain = run_order_burst_ibkr(base, cfg.order_burst_ibkr)
    stalled = run_order_burst_ibkr(slow, cfg.order_burst_ibkr)
    assert plain.passed and stalled.passed, (plain.gates, stalled.gates)
    for res in (plain, stalled):
        assert res.figures["replay_minutes_unwaited"] == 0.0
        assert res.figures["position_changes"] == CHANGES
    assert stalled.figures["decision_max_ms"] >= 1000.0 * STALL_SECONDS  # it did stall
    decisions, fills = _session(base)
    assert len(decisions) >= CHANGES + 10 and len(fills) >= CHANGES
    # the same minutes decided the same way, the same fills at the same prices
    assert _session(slow) == (decisions, fills)
    assert stalled.figures["rebuilt_bars"] == plain.figures["rebuilt_bars"]
    assert stalled.figures["net_pnl"] == plain.figures["net_pnl"]
