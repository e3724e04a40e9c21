"""The promotion ladder: entry to paper, the stage gates computed from the journal, one stage at a
time, refusals that change nothing, rehearsals that never count, and auto-demotion."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.errors import ConfigError
from stairways.live.evidence import stage_evidence
from stairways.live.ladder import (
    GatesNotPassedError,
    LadderRefusedError,
    LastReview,
    check_stage_gates,
    review_session,
)
from stairways.live.ladder_config import LadderConfig, StageGates, load_ladder_config
from stairways.live.registry import read_stage_changes, stage_of
from stairways.resources import shipped_config
from stairways.risk.state import read_state
from stairways.risk.types import TradingState
from tests.unit.live.ladder_helpers import (
    CAPITAL,
    Bench,
    Day,
    approve_all,
    bench,
    journal_session,
    open_journal,
    serve,
    to_paper,
    trading_days,
)

WEEK = trading_days(date(2026, 1, 6), 7)
WEEK2 = trading_days(date(2026, 1, 20), 7)
TWO = ["risk_officer", "head_of_trading"]


def _stage(b: Bench) -> str:
    return stage_of(b.journal, b.model.model_id)


def _to_micro(b: Bench) -> None:
    to_paper(b)
    serve(b, "paper", WEEK)
    req = b.ladder.promote(b.model.model_id, requester="dev", reason="paper week").request
    assert req is not None
    approve_all(b, req.request_id, TWO)
    b.ladder.promote(b.model.model_id, requester="dev", reason="approved")
    assert _stage(b) == "micro_10"


# ---------------------------------------------------------------------------------------------
# config


def test_the_shipped_ladder_config_pins_the_plans_thresholds() -> None:
    cfg = load_ladder_config()
    g = cfg.gates
    assert (g.min_trading_days, g.min_gross_pnl, g.max_drawdown) == (7, 0.0, 0.02)
    assert (g.max_latency_p99_ms, g.max_error_rate, g.max_daily_drawdown) == (10.0, 0.02, 0.03)
    assert (g.min_net_pnl, g.max_hard_limit_breaches, g.max_fee_share_of_gross) == (0.0, 0, 0.30)
    a = cfg.approvals
    assert a.committee == ("risk_officer", "head_of_trading", "compliance_officer")
    assert (a.required.paper, a.required.micro_10, a.required.scale_50) == (0, 2, 3)
    assert a.expiry_hours == 72.0
    assert cfg.entry_split == "test"
    assert cfg.demotion.model_dump() == {
        "on_hard_limit_breach": "demote",
        "on_emergency_stop": "demote",
        "on_gate_failure": "demote",
    }
    # The code's defaults are the shipped file's values (no second source of truth).
    assert cfg.model_dump(exclude={"description"}) == LadderConfig().model_dump(
        exclude={"description"}
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("approvals: {required: {micro_10: 2, scale_50: 2}}", "must be more than"),
        ("approvals: {committee: [a, b], required: {micro_10: 1, scale_50: 3}}", "only 2"),
        ("approvals: {committee: [a, a, b]}", "named twice"),
        ("approvals: {committee: ['bad name', b, c]}", "invalid secret name"),
        ("gates: {max_drawdown: 0}", "gates.max_drawdown"),
        ("gates: {min_trading_days: 0}", "gates.min_trading_days"),
        ("demotion: {on_emergency_stop: ignore}", "demotion.on_emergency_stop"),
        ("gates: {typo: 1}", "gates.typo"),
    ],
)
def test_a_bad_ladder_config_is_refused_naming_the_key(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message) as err:
        load_ladder_config(path)
    assert str(path) in str(err.value)


def test_the_ladder_config_is_shipped_as_package_data() -> None:
    assert shipped_config("ladder").name == "ladder.yaml"


# ---------------------------------------------------------------------------------------------
# entry to paper


def test_entry_to_paper_needs_the_test_gates_and_no_approval(tmp_path: Path) -> None:
    b = bench(tmp_path)
    out = b.ladder.promote(b.model.model_id, requester="dev", reason="passed test")
    assert out.action == "promoted" and (out.from_stage, out.to_stage) == ("research", "paper")
    assert _stage(b) == "paper"
    (change,) = read_stage_changes(b.journal, b.model.model_id)
    assert change.by == "dev" and change.reason == "passed test" and change.action == "promote"
    assert [g["name"] for g in change.details["gates"]] == ["test.sharpe", "test.significance"]


def test_failed_test_gates_refuse_paper_with_exit_3_and_change_nothing(tmp_path: Path) -> None:
    b = bench(tmp_path, test_passed=False)
    before = b.count()
    with pytest.raises(GatesNotPassedError, match=r"test\.sharpe 0\.1 >= 0\.3: FAIL") as err:
        b.ladder.promote(b.model.model_id, requester="dev", reason="try")
    assert err.value.exit_code == 3
    assert b.count() == before and _stage(b) == "research"


def test_a_model_without_a_test_evaluation_cannot_enter_paper(tmp_path: Path) -> None:
    b = bench(tmp_path)
    import shutil

    shutil.rmtree(b.run_dir / "eval" / "test")
    other = b.register(b.run_dir)  # same files: same model, registered with its test verdict
    assert other.model_id == b.model.model_id
    cfg = LadderConfig(entry_split="holdout")
    b.ladder.config = cfg
    with pytest.raises(GatesNotPassedError, match="no evaluation on the holdout split"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="try")


# ---------------------------------------------------------------------------------------------
# bad input: refused with the reason, nothing changed


def test_skipping_a_stage_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    b = bench(tmp_path)
    before = b.count()
    with pytest.raises(LadderRefusedError, match="would skip paper"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="hurry", to_stage="micro_10")
    to_paper(b)
    before = b.count()
    with pytest.raises(LadderRefusedError, match="would skip micro_10"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="hurry", to_stage="scale_50")
    assert b.count() == before and _stage(b) == "paper"


def test_promoting_a_model_whose_files_changed_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    b = bench(tmp_path)
    (b.run_dir / "normaliser.json").write_text('{"mean": [1.0], "std": [1.0]}')
    before = b.count()
    with pytest.raises(LadderRefusedError, match=r"normaliser file .*normaliser\.json changed"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="try")
    assert b.count() == before and _stage(b) == "research"


def test_a_promotion_without_requester_or_reason_is_refused(tmp_path: Path) -> None:
    b = bench(tmp_path)
    with pytest.raises(LadderRefusedError, match="reason"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="  ")
    with pytest.raises(LadderRefusedError, match="requester"):
        b.ladder.promote(b.model.model_id, requester="", reason="x")


def test_a_stage_holds_one_model(tmp_path: Path) -> None:
    from tests.unit.live.ladder_helpers import fake_run

    b = bench(tmp_path)
    to_paper(b)
    other = b.register(fake_run(tmp_path / "runs2", "other"))
    with pytest.raises(LadderRefusedError, match=f"stage paper holds model {b.model.model_id}"):
        b.ladder.promote(other.model_id, requester="dev", reason="second")


# ---------------------------------------------------------------------------------------------
# the stage gates from the journal


def test_seven_good_paper_days_open_a_request_and_two_approvals_complete_it(
    tmp_path: Path,
) -> None:
    b = bench(tmp_path)
    to_paper(b)
    serve(b, "paper", WEEK)
    ev = stage_evidence(b.journal, b.model, "paper", read_stage_changes(b.journal)[-1].seq)
    assert ev.trading_days == 7 and len(ev.counted) == 7
    assert ev.gross_pnl == pytest.approx(35.0) and ev.fees == pytest.approx(7.0)
    assert ev.net_pnl == pytest.approx(28.0) and ev.latency_p99_ms == pytest.approx(0.5)
    assert ev.fee_share_of_gross == pytest.approx(0.2)
    out = b.ladder.promote(b.model.model_id, requester="dev", reason="paper week")
    assert out.action == "requested" and out.request is not None
    assert _stage(b) == "paper"
    assert out.request.required == 2 and out.request.requester == "dev"
    approve_all(b, out.request.request_id, TWO)
    done = b.ladder.promote(b.model.model_id, requester="dev", reason="approved")
    assert done.action == "promoted" and _stage(b) == "micro_10"
    assert done.change is not None
    assert {a["approver"] for a in done.change.details["approvals"]} == set(TWO)


def test_a_rehearsed_week_cannot_promote_a_model(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    # Seven perfect days, each marked as a rehearsal in one of the three ways.
    shapes = [
        Day(rehearsal=True, broker="sim", clock="manual"),
        Day(rehearsal=True),
        Day(broker="sim"),
        Day(clock="manual"),
    ]
    for i, d in enumerate(WEEK):
        journal_session(b.journal, b.model, "paper", d, shapes[i % len(shapes)])
    before = b.count()
    with pytest.raises(GatesNotPassedError, match=r"trading_days 0 >= 7: FAIL"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="rehearsed week")
    assert b.count() == before and _stage(b) == "paper"
    ev = b.ladder.evidence(b.model)
    assert len(ev.excluded) == 7 and all("rehearsal" in why for _, why in ev.excluded)


def test_six_days_are_not_enough(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    serve(b, "paper", WEEK[:6])
    with pytest.raises(GatesNotPassedError, match=r"trading_days 6 >= 7: FAIL"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="six")


def test_two_sessions_on_one_day_count_as_one_trading_day(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    for d in WEEK[:6]:
        journal_session(b.journal, b.model, "paper", d, Day(), serial=1)
        journal_session(b.journal, b.model, "paper", d, Day(), serial=2)
    assert b.ladder.evidence(b.model).trading_days == 6


def test_sessions_of_other_files_or_another_stage_do_not_count(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    for d in WEEK:
        journal_session(b.journal, b.model, "paper", d, Day(), fingerprint="f" * 64)
        journal_session(b.journal, b.model, "micro_10", d, Day(), serial=2)
    ev = b.ladder.evidence(b.model)
    assert ev.trading_days == 0
    reasons = sorted(why.split(" ")[0] for _, why in ev.excluded)
    assert reasons == ["ran"] * 14


def test_sessions_before_the_stage_began_do_not_count(tmp_path: Path) -> None:
    b = bench(tmp_path)
    serve(b, "paper", WEEK)  # journaled while the model was still in research
    to_paper(b)
    assert b.ladder.evidence(b.model).trading_days == 0


def test_an_unfinished_session_does_not_count(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    serve(b, "paper", WEEK[:6])
    journal_session(b.journal, b.model, "paper", WEEK[6], Day(ended=False))
    ev = b.ladder.evidence(b.model)
    assert ev.trading_days == 6 and len(ev.unfinished) == 1


@pytest.mark.parametrize(
    ("shape", "failing"),
    [
        (Day(gross=-1.0, fees=0.1), "gross_pnl"),
        (Day(latency_ms=12.0), "latency_p99_ms"),
        (Day(orders=10, errors=1), "error_rate"),
        (Day(drawdown=0.031), "daily_drawdown"),
        (Day(gross=2.0, fees=2.5), "net_pnl"),
        (Day(breach=True), "hard_limit_breaches"),
        (Day(gross=10.0, fees=3.5), "fee_share_of_gross"),
    ],
)
def test_each_go_no_go_check_alone_refuses_the_promotion(
    tmp_path: Path, shape: Day, failing: str
) -> None:
    b = bench(tmp_path)
    to_paper(b)
    serve(b, "paper", WEEK, shape)
    before = b.count()
    with pytest.raises(GatesNotPassedError) as err:
        b.ladder.promote(b.model.model_id, requester="dev", reason="try")
    failed = {c.name for c in err.value.checks if not c.passed}
    assert failing in failed
    assert failed <= {failing, "gross_pnl", "net_pnl", "fee_share_of_gross", "max_drawdown"}
    assert b.count() == before and _stage(b) == "paper"


def test_a_stage_drawdown_over_two_percent_across_days_refuses(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    # Up $300, then three days down $80 each ($240 = 2.4% of $10,000), then up again.
    days = [300.0, -80.0, -80.0, -80.0, 60.0, 60.0, 60.0]
    for d, gross in zip(WEEK, days, strict=True):
        journal_session(b.journal, b.model, "paper", d, Day(gross=gross, fees=0.5))
    ev = b.ladder.evidence(b.model)
    assert ev.max_drawdown == pytest.approx(241.5 / CAPITAL)
    with pytest.raises(GatesNotPassedError, match=r"max_drawdown 0\.02415 < 0\.02: FAIL"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="try")


def test_fills_that_disagree_with_the_end_figures_are_not_counted(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    journal_session(b.journal, b.model, "paper", WEEK[0], Day())
    s = b.ladder.evidence(b.model).counted[0]
    assert s.inconsistency() == ""
    s.end["figures"]["pnl"] = 99.0
    assert "end figures say $99.00" in s.inconsistency()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    days=st.lists(
        st.tuples(
            st.floats(-50, 80, allow_nan=False),  # gross
            st.floats(0, 6, allow_nan=False),  # fees
            st.floats(0, 0.05, allow_nan=False),  # intraday drawdown
            st.floats(0.1, 15, allow_nan=False),  # latency
        ),
        min_size=1,
        max_size=9,
    )
)
def test_the_gates_pass_exactly_when_every_rule_holds(
    tmp_path_factory: pytest.TempPathFactory, days: list[tuple[float, float, float, float]]
) -> None:
    b = bench(tmp_path_factory.mktemp("p"))
    to_paper(b)
    dates = trading_days(date(2026, 1, 6), len(days))
    for d, (gross, fees, dd, lat) in zip(dates, days, strict=True):
        journal_session(
            b.journal, b.model, "paper", d, Day(gross=gross, fees=fees, drawdown=dd, latency_ms=lat)
        )
    ev = b.ladder.evidence(b.model)
    checks = {c.name: c.passed for c in check_stage_gates(ev, StageGates())}
    # An independent oracle from the raw day figures (fills: buy 10 at 100, sell at 100 + g/10).
    fees = sum(f for _, f, _, _ in days)
    cum, peak, fall = 0.0, 0.0, 0.0
    for g, f, _, _ in days:
        cum += (100.0 + g / 10.0 - 100.0) * 10.0 - f
        peak = max(peak, cum)
        fall = max(fall, peak - cum)
    worst = max(dd for _, _, dd, _ in days)
    expected = {
        "trading_days": len(days) >= 7,
        "gross_pnl": cum + fees > 0,
        "max_drawdown": max(fall / CAPITAL, worst) < 0.02,
        "latency_p99_ms": ev.latency_p99_ms is not None and ev.latency_p99_ms < 10.0,
        "error_rate": True,
        "daily_drawdown": worst < 0.03,
        "net_pnl": cum >= 0,
        "hard_limit_breaches": True,
        "fee_share_of_gross": cum + fees > 0 and fees / (cum + fees) < 0.30,
    }
    # Money figures within a micro-dollar of the oracle; the verdicts must agree except where a
    # figure sits within that tolerance of its threshold.
    assert ev.net_pnl == pytest.approx(cum, abs=1e-6)
    for name, ok in expected.items():
        if name in ("gross_pnl", "net_pnl", "fee_share_of_gross") and abs(cum) < 1e-6:
            continue
        assert checks[name] == ok, (name, ev.as_dict())
    lat = sorted(x for *_, x in days)
    assert ev.latency_p99_ms is not None and lat[0] <= ev.latency_p99_ms <= lat[-1]


# ---------------------------------------------------------------------------------------------
# demotion


def test_manual_demotion_moves_one_stage_down_with_an_alert(tmp_path: Path) -> None:
    b = bench(tmp_path)
    _to_micro(b)
    change = b.ladder.demote(b.model.model_id, by="ops", reason="broker maintenance")
    assert (change.from_stage, change.to_stage, change.action) == ("micro_10", "paper", "demote")
    alerts = [r.payload for r in b.journal.records(kinds=["alert"])]
    assert alerts[-1]["type"] == "ladder_demotion" and "broker maintenance" in alerts[-1]["message"]
    with pytest.raises(LadderRefusedError, match="a demotion goes to one of research"):
        b.ladder.demote(b.model.model_id, by="ops", reason="x", to_stage="paper")


def test_a_hard_limit_breach_demotes_one_stage_and_raises_an_alert(tmp_path: Path) -> None:
    b = bench(tmp_path)
    _to_micro(b)
    journal_session(b.journal, b.model, "micro_10", WEEK2[0], Day(breach=True))
    (move,) = b.ladder.review()
    assert (move.from_stage, move.to_stage, move.action) == ("micro_10", "paper", "auto_demote")
    assert "hard-limit breach" in move.reason and "loss_limit" in move.reason
    assert _stage(b) == "paper"
    alert = list(b.journal.records(kinds=["alert"]))[-1].payload
    assert alert["type"] == "ladder_demotion" and alert["model_id"] == b.model.model_id
    assert b.ladder.review() == []  # the breach belongs to the stage it left


def test_a_breach_in_a_session_still_running_demotes(tmp_path: Path) -> None:
    b = bench(tmp_path)
    _to_micro(b)
    journal_session(b.journal, b.model, "micro_10", WEEK2[0], Day(breach=True, ended=False))
    (move,) = b.ladder.review()
    assert move.to_stage == "paper"


def test_an_emergency_stop_demotes(tmp_path: Path) -> None:
    b = bench(tmp_path)
    _to_micro(b)
    journal_session(b.journal, b.model, "micro_10", WEEK2[0], Day(emergency_stop=True))
    (move,) = b.ladder.review()
    assert "emergency stop" in move.reason and move.to_stage == "paper"


def test_a_failing_stage_gate_demotes_before_the_days_are_done(tmp_path: Path) -> None:
    b = bench(tmp_path)
    _to_micro(b)
    journal_session(b.journal, b.model, "micro_10", WEEK2[0], Day(drawdown=0.035))
    (move,) = b.ladder.review()
    assert "daily_drawdown 0.035 < 0.03: FAIL" in move.reason


def test_a_losing_first_day_does_not_demote_but_a_losing_stage_does(tmp_path: Path) -> None:
    b = bench(tmp_path)
    _to_micro(b)
    journal_session(b.journal, b.model, "micro_10", WEEK2[0], Day(gross=-3.0))
    assert b.ladder.review() == []
    serve(b, "micro_10", WEEK2[1:], Day(gross=-1.0))
    (move,) = b.ladder.review()
    assert "net_pnl" in move.reason


def test_a_rehearsal_breach_never_demotes(tmp_path: Path) -> None:
    b = bench(tmp_path)
    _to_micro(b)
    journal_session(
        b.journal, b.model, "micro_10", WEEK2[0], Day(breach=True, rehearsal=True, broker="sim")
    )
    assert b.ladder.review() == []
    assert _stage(b) == "micro_10"


def test_halt_per_config_sends_the_model_to_research_and_latches_the_stop(tmp_path: Path) -> None:
    cfg = LadderConfig.model_validate({"demotion": {"on_hard_limit_breach": "halt"}})
    b = bench(tmp_path, cfg)
    _to_micro(b)
    journal_session(b.journal, b.model, "micro_10", WEEK2[0], Day(breach=True))
    (move,) = b.ladder.review()
    assert (move.to_stage, move.action) == ("research", "halt")
    assert read_state(b.journal).state is TradingState.EMERGENCY_STOP


# ---------------------------------------------------------------------------------------------
# the review after every session


def _reviews(b: Bench) -> list[dict[str, object]]:
    return [
        dict(r.payload)
        for r in b.journal.records(kinds=["config"])
        if r.payload.get("type") == "ladder_review"
    ]


def test_the_review_after_a_counted_session_holds_and_is_journaled(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    sid = journal_session(b.journal, b.model, "paper", WEEK[0], Day())
    before = b.count()
    review = review_session(b.journal, b.journal, sid, LadderConfig(), b.clock)
    assert review is not None and review.outcome == "hold" and review.move is None
    assert b.count() == before + 1  # one record, no stage change
    (rec,) = _reviews(b)
    assert rec["outcome"] == "hold" and rec["stage"] == "paper"
    assert rec["session"] == {
        "session_id": sid,
        "day": WEEK[0].isoformat(),
        "stage": "paper",
        "rehearsal": False,
        "ended": True,
        "counted": True,
        "not_counted_because": "",
    }
    assert rec["evidence"]["trading_days"] == 1  # type: ignore[index]
    failing = {c["name"] for c in rec["checks"] if not c["passed"]}  # type: ignore[attr-defined]
    assert failing == {"trading_days"}
    assert any("review after session" in text for *_, text in b.ladder.history())
    # `ladder status` shows the latest review and whether its session counted
    (st,) = b.ladder.status()
    assert st.last_review is not None and st.last_review.seq == b.count()
    assert st.last_review.outcome == "hold" and st.last_review.stage == "paper"
    assert f"paper hold after session {sid} (counted)" in st.last_review.line()


def test_the_review_after_the_seventh_good_day_says_ready(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    serve(b, "paper", WEEK[:-1])
    sid = journal_session(b.journal, b.model, "paper", WEEK[-1], Day())
    review = review_session(b.journal, b.journal, sid, LadderConfig(), b.clock)
    assert review is not None and review.outcome == "ready"
    assert _stage(b) == "paper"  # ready is not promoted: that needs `ladder promote`


def test_the_review_after_a_session_with_a_breach_demotes_in_one_transaction(
    tmp_path: Path,
) -> None:
    b = bench(tmp_path)
    _to_micro(b)
    sid = journal_session(b.journal, b.model, "micro_10", WEEK2[0], Day(breach=True))
    before = b.count()
    review = review_session(b.journal, b.journal, sid, LadderConfig(), b.clock)
    assert review is not None and review.outcome == "demoted" and review.to_stage == "paper"
    assert review.move is not None and review.move.action == "auto_demote"
    assert _stage(b) == "paper"
    # stage change, its alert and the review record
    assert b.count() == before + 3
    assert _reviews(b)[-1]["to"] == "paper"
    assert "hard-limit breach" in "\n".join(review.lines())


def test_the_review_after_a_rehearsal_in_its_own_journal_does_not_count_it(
    tmp_path: Path,
) -> None:
    b = bench(tmp_path)
    _to_micro(b)
    rehearsals = open_journal(tmp_path / "rehearsals.sqlite")
    try:
        sid = journal_session(
            rehearsals, b.model, "micro_10", WEEK2[0], Day(breach=True, rehearsal=True)
        )
        review = review_session(b.journal, rehearsals, sid, LadderConfig(), b.clock)
    finally:
        rehearsals.close()
    assert review is not None and review.outcome == "hold"
    assert review.session is not None and review.session["counted"] is False
    assert "rehearsal" in str(review.session["not_counted_because"])
    assert _stage(b) == "micro_10"


def test_the_review_of_an_unregistered_model_writes_nothing(tmp_path: Path) -> None:
    b = bench(tmp_path)
    other = open_journal(tmp_path / "registry2.sqlite")
    try:
        sid = journal_session(b.journal, b.model, "paper", WEEK[0], Day())
        before = other.count()
        assert review_session(other, b.journal, sid, LadderConfig(), b.clock) is None
        assert other.count() == before
    finally:
        other.close()


def test_a_failing_gate_seen_by_the_review_halts_when_configured(tmp_path: Path) -> None:
    cfg = LadderConfig.model_validate({"demotion": {"on_gate_failure": "halt"}})
    b = bench(tmp_path, cfg)
    _to_micro(b)
    sid = journal_session(b.journal, b.model, "micro_10", WEEK2[0], Day(drawdown=0.05))
    review = review_session(b.journal, b.journal, sid, cfg, b.clock)
    assert review is not None and (review.outcome, review.to_stage) == ("halted", "research")
    assert read_state(b.journal).state is TradingState.EMERGENCY_STOP


def test_the_last_review_line_says_why_a_session_did_not_count() -> None:
    base = {"seq": 7, "ts": datetime(2026, 1, 5, 21, 0, tzinfo=UTC), "stage": "paper", "by": "x"}
    rehearsal = {"session_id": "S1", "counted": False, "not_counted_because": "a rehearsal"}
    line = LastReview(**base, outcome="hold", session=rehearsal).line()  # type: ignore[arg-type]
    assert line == (
        "last review #7 at 2026-01-05 21:00 UTC by x: paper hold after session S1 "
        "(not counted: a rehearsal)"
    )
    bare = LastReview(**base, outcome="ready", session=None).line()  # type: ignore[arg-type]
    assert bare.endswith("by x: paper ready")
