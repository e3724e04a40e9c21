"""The live loop on a replayed 2024 session: parity with the replay evaluation, the journal,
the order of events within a bar, and the features online versus offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stairways.data.panel_builder import build_panel
from stairways.data.store import BarStore
from stairways.evaluation.traces import read_run_trace
from stairways.journal import JournalReader
from stairways.live.evidence import collect_sessions
from stairways.live.lineage import trace_order
from stairways.live.model import LivePolicy
from stairways.live.observe import SessionObserver
from stairways.live.parity import compare_with_trace
from stairways.live.session import load_session_bars
from tests.integration.live.conftest import DAY, Journals, LiveRun, run_rehearsal

SYMBOLS = ("NVDA", "MSFT")

# A trained run and full-session rehearsals: about a minute and a half on this machine.
pytestmark = pytest.mark.slow


def test_rehearsed_session_equals_the_replay_evaluation(
    live_run: LiveRun, live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    result = run_rehearsal(live_policy, journals.location(), tmp_path / "sim")
    trace = read_run_trace(live_run.run_dir, "test", "final")
    report = compare_with_trace(result.steps, trace, DAY, SYMBOLS, 10_000.0)
    assert report.equal, report.lines()
    # Not a vacuous equality: the policy traded, and the session's P&L is the replay's.
    assert report.fills >= 2
    assert report.steps == report.trace_steps > 10
    assert result.summary["figures"]["pnl"] == report.replay_pnl
    assert len(result.executions) == report.fills


def test_online_features_equal_the_offline_panel_for_a_replayed_day(
    live_run: LiveRun, live_policy: LivePolicy
) -> None:
    cfg = live_policy.cfg
    with BarStore(live_run.store, read_only=True) as store:
        panel = build_panel(cfg.data, "test", store, live_policy.normaliser)
    s = int(np.flatnonzero(panel.dates == np.datetime64(DAY))[0])
    history, minutes, vwaps = load_session_bars(live_run.store, cfg.data, SYMBOLS, DAY, "test")
    obs = SessionObserver(SYMBOLS, live_policy.normaliser, cfg.market, cfg.env, DAY)
    obs.warm_up(history)
    for minute, vwap in zip(minutes, vwaps, strict=True):
        obs.absorb(minute, vwap)
    n = int(panel.lengths[s])
    assert obs.length == n == len(minutes)
    assert np.array_equal(obs.feats[0], panel.features[s, :n])
    assert np.array_equal(obs.mkt[0, :, :, 1], panel.close[s, :n])


def test_rehearsal_is_journaled_as_a_rehearsal_with_complete_lineage(
    live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    location = journals.location()
    result = run_rehearsal(live_policy, location, tmp_path / "sim")
    with JournalReader.open(location) as reader:
        records = list(reader.records())
        sessions = collect_sessions(reader, figures=False)
        mine = [r for r in records if r.payload.get("session_id") == result.session_id]
        decisions = [r for r in mine if r.kind == "decision"]
        assert len(sessions) == 1 and sessions[0].rehearsal and sessions[0].ended
        assert sessions[0].broker == "sim" and sessions[0].clock == "manual"
        assert all(r.payload["rehearsal"] is True for r in mine)
        assert len(decisions) == len(result.steps)
        assert [d.payload["bar"] for d in decisions] == list(range(len(decisions)))
        assert all(len(d.payload["observation_hash"]) == 32 for d in decisions)
        sent = [r.payload["client_order_id"] for r in mine if r.payload.get("type") == "sent"]
        assert sent and len(sent) == len(set(sent))
        chain = trace_order(reader, sent[0])
    assert chain.complete, chain.lines()
    assert chain.fills and chain.verdict is not None
    assert chain.verdict[1]["decision"] == "approve"
    assert chain.decision is not None and chain.decision[1]["decision_id"] in sent[0]
    text = "\n".join(chain.lines())
    assert str(live_policy.ref.run_dir) in text and "REHEARSAL" in text


class _Spy:
    """Forwards to the simulated broker and notes each call with the journal's length."""

    def __init__(self, inner: Any, location: Any, calls: list[tuple[str, int]]) -> None:
        self._inner = inner
        self._location = location
        self._calls = calls

    def _count(self) -> int:
        with JournalReader.open(self._location) as r:
            return r.count()

    def on_bars(self, bars: Any) -> Any:
        self._calls.append(("on_bars", self._count()))
        return self._inner.on_bars(bars)

    def place(self, req: Any) -> Any:
        self._calls.append((f"place {req.client_order_id}", self._count()))
        return self._inner.place(req)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_order_of_events_within_a_bar(
    live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    """Broker step, fills journaled, then decision, intents, verdicts and the write-ahead
    order record, and only then the order goes to the broker."""
    location = journals.location()
    calls: list[tuple[str, int]] = []
    run_rehearsal(
        live_policy,
        location,
        tmp_path / "sim",
        wrap_broker=lambda b, clock: _Spy(b, location, calls),
    )
    with JournalReader.open(location) as reader:
        records = list(reader.records())
    places = [(c, n) for c, n in calls if c.startswith("place")]
    assert places
    for call, count in places:
        cid = call.split()[1]
        before = records[:count]
        kinds = [(r.kind, r.payload.get("type")) for r in before]
        # the write-ahead record of this order is already durable when it is sent
        ahead = [
            i
            for i, r in enumerate(before)
            if r.kind == "order" and r.payload.get("client_order_id") == cid
        ]
        assert ahead and before[ahead[0]].payload["type"] == "submitting"
        i = ahead[0]
        decision_id = before[i].payload["decision_id"]
        dec = [j for j, r in enumerate(before) if r.payload.get("decision_id") == decision_id]
        assert kinds[dec[0]] == ("decision", None)
        assert ("verdict", "intent") in kinds[dec[0] : i]
        assert ("intent", "policy_intent") in kinds[dec[0] : i]
    # every bar starts with the broker step: the fills of the previous bar's orders come
    # before the next decision is journaled
    bars = [n for c, n in calls if c == "on_bars"]
    assert bars == sorted(bars)
    fills = [i for i, r in enumerate(records) if r.kind == "fill"]
    decisions = [i for i, r in enumerate(records) if r.kind == "decision"]
    for f in fills:
        bar_of_order = records[f].payload["client_order_id"].rsplit("-", 2)[-2]
        later = [d for d in decisions if d > f]
        assert not later or records[later[0]].payload["bar"] > int(bar_of_order)
