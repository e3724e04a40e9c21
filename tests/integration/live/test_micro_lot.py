"""The $10 micro-lot stage trades: a rehearsed 2024 session at micro_10 (the shipped limits)
fills fractional orders inside the $10 order cap; and at micro-lot sizing the live loop equals
a replay of the same account (the training env's kernel sizes alike)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from stairways.evaluation.runner import (
    evaluate_policy_on_panel,
    open_panel,
    resolve_checkpoint,
    run_config,
)
from stairways.live.model import LivePolicy
from stairways.live.parity import compare_with_trace
from stairways.live.sizing import session_market
from stairways.market.actions import is_multiple_of_step
from stairways.risk.limits import RISK_CONFIG_DIR, load_stage
from stairways.training.rundir import RunDirectory
from tests.integration.live.conftest import (
    DAY,
    KEY,
    PARITY_RISK_DIR,
    Journals,
    LiveRun,
    run_rehearsal,
)

pytestmark = pytest.mark.slow

SYMBOLS = ("NVDA", "MSFT")


def test_a_micro_10_rehearsal_trades_fractional_lots_within_the_ten_dollar_cap(
    live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    from stairways.journal import Journal

    location = journals.location()
    result = run_rehearsal(
        live_policy,
        location,
        tmp_path / "sim",
        plan={"stage": "micro_10", "risk_dir": RISK_CONFIG_DIR},
    )
    limits = load_stage("micro_10")
    cap = limits.exposure.max_order_notional
    assert result.executions, "the micro-lot stage never traded"
    assert any(abs(e.quantity) < 1.0 for e in result.executions)  # fractions, not whole shares
    for e in result.executions:
        assert is_multiple_of_step(e.quantity, 4)
        # the fill's value: the $10 lot plus the half-spread and impact inside the fill price
        assert abs(e.quantity) * e.price <= cap * 1.02
    with Journal.open(location, KEY) as journal:
        verdicts = [
            r.payload
            for r in journal.records(kinds=["verdict"])
            if r.payload.get("type") == "intent"
        ]
        start = next(
            r.payload
            for r in journal.records(kinds=["config"])
            if r.payload.get("type") == "live_session"
        )
    approved = [v for v in verdicts if v["decision"] != "reject"]
    assert approved
    for v in approved:  # every order the governor let through is within $10 at its price
        assert abs(v["approved"]) * v["price"] <= cap + 1e-9
    assert start["capital"] == limits.allocated_capital == 200.0
    assert start["sizing"] == {"position_notional": 10.0, "quantity_decimals": 4}
    figures = result.summary["figures"]
    assert figures["fees"] > 0.0


def test_at_micro_lot_sizing_the_live_loop_equals_the_replay_of_the_same_account(
    live_run: LiveRun, live_policy: LivePolicy, journals: Journals, tmp_path: Path
) -> None:
    # The parity limits (nothing binds inside the env's rules) with micro_10's sizing.
    risk_dir = tmp_path / "risk"
    risk_dir.mkdir()
    data = yaml.safe_load((PARITY_RISK_DIR / "paper.yaml").read_text())
    data["stage"] = "micro_10"
    data["sizing"] = {"position_notional": 10.0, "quantity_decimals": 4}
    (risk_dir / "micro_10.yaml").write_text(yaml.safe_dump(data))
    shutil.copy(PARITY_RISK_DIR / "paper.yaml", risk_dir / "paper.yaml")
    limits = load_stage("micro_10", risk_dir)

    run = RunDirectory.open(live_run.run_dir)
    cfg = run_config(run)
    market = session_market(cfg.market, cfg.env, limits, "micro_10.yaml")
    assert (market.max_position_notional, market.quantity_decimals) == (10.0, 4)
    micro_cfg = cfg.model_copy(update={"market": market})
    from stairways.data.normalise import Normaliser

    panel = open_panel(micro_cfg, "test", Normaliser.load(run.normaliser_path))
    replay = evaluate_policy_on_panel(micro_cfg, panel, resolve_checkpoint(run, "final"))

    result = run_rehearsal(
        live_policy,
        journals.location(),
        tmp_path / "sim",
        plan={"stage": "micro_10", "risk_dir": risk_dir},
    )
    report = compare_with_trace(result.steps, replay.trace, DAY, SYMBOLS, market.starting_capital)
    assert report.equal, report.lines()
    assert report.fills >= 2
    assert any(abs(q) < 1.0 for st in result.steps for _, q, _, _ in st.fills)
