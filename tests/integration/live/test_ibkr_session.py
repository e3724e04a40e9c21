"""The live loop at IBKR: the real ib_async client against the fake gateway on loopback, which
replays a stored 2024 session as 5-second real-time bars (the session driver rehearsed on the
feed clock). Each session is bounded in wall time (``max_wall_seconds``) and in minutes."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from stairways.brokers.errors import BrokerConnectionError, BrokerStateError
from stairways.data.panel_builder import build_panel
from stairways.data.store import BarStore
from stairways.journal import Journal, JournalReader
from stairways.journal.verify import verify_journal
from stairways.live.model import LivePolicy
from stairways.risk.operator import resume
from tests.integration.live.conftest import DAY, KEY, PARITY_RISK_DIR, Journals, LiveRun
from tests.integration.live.ibkr_helpers import (
    SYMBOLS,
    LoopProbe,
    broker_config,
    replay_day,
    replaying_gateway,
    run_against,
)

# The trained run is the live tests' session fixture (the default run's stress tests build it
# too); each session replays about 80 minutes in lockstep: 1-12 s each on an idle machine.

# The replay starts at 12:00 (minute 150): the morning comes from IB's historical bars.
START = 150


def _records(location: Any) -> list[Any]:
    with JournalReader.open(location) as reader:
        return list(reader.records())


def _gateway_fills(gw: Any) -> set[tuple[str, str, float, float]]:
    return gw.run(
        lambda: {
            (
                e.exec_id,
                e.order.order_ref,
                e.shares if e.order.action == "BUY" else -e.shares,
                e.price,
            )
            for e in gw.executions
        }
    )


def test_rehearsed_session_at_the_gateway_ends_flat_journaled_with_matching_fills(
    live_run: LiveRun, live_policy: LivePolicy, journals: Journals
) -> None:
    minutes = replay_day(live_run, live_policy)
    location = journals.location()
    probe = LoopProbe()
    with replaying_gateway(minutes, start_at=START, ready=probe.ready) as gw:
        result = run_against(live_policy, gw, location, live_run, on_loop=probe.on_loop)
        assert gw.replay_error == ""
        assert gw.replayed_minutes >= result.live_minutes > 20
        fills = _gateway_fills(gw)
        positions = gw.run(lambda: {s: q for s, (q, _) in gw.positions.items() if q != 0})
        orders = gw.run(lambda: [o.order_ref for o in gw.orders.values()])
    # the minutes before the replay came from IB's historical bars, the rest live; the session
    # ends at the close or at the run's own drawdown cap (env.drawdown_cap, as in training)
    last = probe.loops[0].last_bar
    assert result.rebuilt_minutes == START
    assert result.live_minutes == last - START + 1
    assert result.history_requests == len(SYMBOLS)
    reason = result.summary["reason"]
    assert reason == "session closed" or "env.drawdown_cap" in reason
    assert [s.bar for s in result.steps] == list(range(START - 1, last + int(last == 389)))
    # ends flat, at the gateway and in the session's book
    assert positions == {} and result.positions == {} and result.open_orders == 0
    assert all(q == 0.0 for q in result.summary["positions"].values())
    # the policy traded, and every fill at the gateway is journaled once, as it happened
    recs = _records(location)
    journal_fills = {
        (
            r.payload["exec_id"],
            r.payload["client_order_id"],
            r.payload["quantity"],
            r.payload["price"],
        )
        for r in recs
        if r.kind == "fill"
    }
    assert len(fills) >= 2
    assert journal_fills == fills
    assert len([r for r in recs if r.kind == "fill"]) == len(fills)
    # every order the gateway holds was journaled before it was sent
    submitted = {
        r.payload["client_order_id"]
        for r in recs
        if r.kind == "order" and r.payload.get("type") == "submitting"
    }
    decided = [o for o in orders if not o.startswith("sw-flatten")]
    assert decided and set(decided) <= submitted and len(decided) == len(set(decided))
    # the book's P&L is the cash flow of the gateway's fills less the journaled fees
    fees = sum(r.payload["fee"] for r in recs if r.kind == "fill")
    cash = sum(-q * p for _, _, q, p in fills)
    assert result.summary["figures"]["pnl"] == pytest.approx(cash - fees, abs=1e-6)
    # a rehearsal on the feed clock at IBKR, journaled as one, and the chain verifies
    session = next(r.payload for r in recs if r.payload.get("type") == "live_session")
    assert (session["broker"], session["clock"], session["rehearsal"]) == ("ibkr", "feed", True)
    assert session["account"] == "DU1234567"
    with JournalReader.open(location) as reader:
        assert verify_journal(reader, KEY).ok
    # the features the loop computed from IB's bars (historical and 5-second) equal the
    # offline panel's: the 1-minute VWAP built from the 5-second waps is the stored one
    cfg = live_policy.cfg
    with BarStore(live_run.store, read_only=True) as store:
        panel = build_panel(cfg.data, "test", store, live_policy.normaliser)
    s = int(np.flatnonzero(panel.dates == np.datetime64(DAY))[0])
    n = int(panel.lengths[s])
    assert n == 390
    np.testing.assert_allclose(
        probe.loops[0].observer.feats[0, : last + 1], panel.features[s, : last + 1], atol=1e-6
    )


def test_governor_refuses_at_the_gateway_what_its_limits_forbid(
    live_run: LiveRun, live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    limits = yaml.safe_load((PARITY_RISK_DIR / "paper.yaml").read_text())
    limits["exposure"]["max_position_notional"] = 600.0  # a full position is $5,000
    limits["exposure"]["max_order_notional"] = 600.0
    risk_dir = tmp_path / "risk"
    risk_dir.mkdir()
    (risk_dir / "paper.yaml").write_text(yaml.safe_dump(limits))
    minutes = replay_day(live_run, live_policy)
    location = journals.location()
    probe = LoopProbe()
    with replaying_gateway(minutes, start_at=START, ready=probe.ready) as gw:
        result = run_against(
            live_policy, gw, location, live_run, risk_dir=risk_dir, on_loop=probe.on_loop
        )
        placed = gw.run(lambda: [(o.order_ref, o.symbol, o.quantity) for o in gw.orders.values()])
        peak = gw.run(lambda: dict(gw.prices))
    recs = _records(location)
    verdicts = [r.payload for r in recs if r.kind == "verdict" and r.payload["type"] == "intent"]
    cut = [v for v in verdicts if v["decision"] != "approve"]
    assert cut, "the tight limits never bound"
    # nothing the governor rejected reached the gateway; what it cut went out cut
    rejected = {v["intent_id"] for v in verdicts if v["decision"] == "reject"}
    sent = {r.payload["intent_id"] for r in recs if r.kind == "order" and "intent_id" in r.payload}
    assert not (rejected & sent)
    for ref, symbol, qty in placed:
        if not ref.startswith("sw-flatten"):
            assert qty * peak[symbol] <= 600.0 * 1.05, (ref, qty)
    assert result.positions == {}


def test_disconnect_mid_session_reaches_the_safe_state_and_recovers(
    live_run: LiveRun, live_policy: LivePolicy, journals: Journals
) -> None:
    minutes = replay_day(live_run, live_policy)
    location = journals.location()
    operator = Journal.open(location, KEY)  # the operator's terminal
    marks: dict[str, float] = {}
    resumed: list[datetime] = []

    probe = LoopProbe()
    with replaying_gateway(minutes, start_at=START, away_minutes=3, ready=probe.ready) as gw:

        def beat(at: datetime, session_id: str) -> None:
            if "dropped" not in marks and at.hour == 12 and at.minute >= 10:
                marks["dropped"] = time.monotonic()
                gw.drop_connections()
            elif "dropped" in marks and not resumed and gw.subscribed(SYMBOLS):
                paused = [
                    r
                    for r in operator.records(kinds=["governor_state"])
                    if r.payload["who"] == "governor:broker_disconnect"
                ]
                if paused:
                    resume(operator, "tester", "gateway back after the disconnect", at)
                    resumed.append(at)

        result = run_against(
            live_policy, gw, location, live_run, heartbeat=beat, on_loop=probe.on_loop
        )
    operator.close()
    recs = _records(location)
    down = next(r for r in recs if r.payload.get("type") == "broker_disconnect")
    paused = next(
        r
        for r in recs
        if r.kind == "governor_state" and r.payload["who"] == "governor:broker_disconnect"
    )
    # paused in the same drain that saw the disconnect (the feed clock stands still meanwhile)
    assert paused.payload["state"] == "PAUSED" and paused.ts == down.ts
    back = next(r for r in recs if r.payload.get("type") == "broker_connected" and r.seq > down.seq)
    reconciled = [r for r in recs if r.payload.get("type") == "reconciled" and r.seq > back.seq]
    assert reconciled, "no reconciliation after the reconnect"
    # no new exposure between the pause and the operator's resume
    assert resumed
    resume_rec = next(
        r for r in recs if r.kind == "governor_state" and r.payload["who"] == "tester"
    )
    between = [
        r
        for r in recs
        if paused.seq < r.seq < resume_rec.seq
        and r.kind == "order"
        and r.payload.get("type") == "submitting"
    ]
    assert between == []
    # the minutes lost while disconnected were rebuilt from IB's history; trading went on
    assert result.rebuilt_minutes > START
    after = [r for r in recs if r.seq > resume_rec.seq and r.kind == "decision"]
    assert len(after) > 10
    verdicts = [
        r.payload for r in recs if r.seq > resume_rec.seq and r.kind == "verdict"
        and r.payload.get("type") == "intent"
    ]  # fmt: skip
    assert all(
        not any(x["check"] == "trading_state" for x in v.get("reasons", [])) for v in verdicts
    )
    assert result.positions == {} and result.open_orders == 0


def test_unreachable_gateway_names_host_and_port_and_journals_nothing(
    live_run: LiveRun, live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    location = journals.location()
    journal = Journal.open(location, KEY)
    try:
        from stairways.live.ibkr_session import IbkrPlan, run_ibkr_session
        from stairways.risk.store import SqlStateStore

        states = SqlStateStore(location)
        with pytest.raises(BrokerConnectionError) as err:
            run_ibkr_session(
                live_policy,
                IbkrPlan(day=DAY, split="test", risk_dir=PARITY_RISK_DIR),
                broker_config(port),
                journal=journal,
                store_state=states,
                bar_store=live_run.store,
            )
        states.close()
        assert f"127.0.0.1:{port}" in str(err.value)
        assert "start IB Gateway or TWS" in str(err.value)
        assert not [r for r in journal.records() if r.payload.get("type") == "live_session"]
    finally:
        journal.close()


def test_account_not_flat_at_the_start_refuses_to_trade(
    live_run: LiveRun, live_policy: LivePolicy, journals: Journals
) -> None:
    minutes = replay_day(live_run, live_policy)
    location = journals.location()
    with replaying_gateway(minutes, start_at=380) as gw:
        gw.set_position("NVDA", 7.0, 120.0)
        with pytest.raises(BrokerStateError, match="reconciliation with IB"):
            run_against(live_policy, gw, location, live_run)
        assert gw.run(lambda: len(gw.orders)) == 0
