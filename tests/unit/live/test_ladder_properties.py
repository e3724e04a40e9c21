"""Property test of the ladder as a state machine: whatever the sequence of promotions,
approvals, demotions, sessions, breaches and passing time, a model only ever climbs one stage
at a time, enters a live stage only with enough valid approvals from others than the requester
and after the stage's days, and a refused action writes nothing."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stairways.errors import StairwaysError
from stairways.live.approvals import read_requests
from stairways.live.ladder_config import LadderConfig
from stairways.live.registry import STAGES, read_stage_changes, stage_of
from tests.unit.live.ladder_helpers import Bench, Day, bench, journal_session, trading_days

ACTIONS = [
    "promote",
    "approve_risk_officer",
    "approve_head_of_trading",
    "approve_compliance_officer",
    "approve_dev",
    "reject_compliance_officer",
    "demote",
    "good_week",
    "breach",
    "review",
    "wait_80h",
]


def _apply(b: Bench, action: str, day: list[date]) -> None:
    mid = b.model.model_id
    stage = stage_of(b.journal, mid)
    if action == "promote":
        b.ladder.promote(mid, requester="dev", reason="step")
    elif action.startswith(("approve_", "reject_")):
        verb, who = action.split("_", 1)
        req = b.ladder.open_request(mid)
        rid = req.request_id if req is not None else "req-none"
        b.ladder.answer(rid, approver=who, decision=verb, reason="considered")
    elif action == "demote":
        b.ladder.demote(mid, by="ops", reason="drill")
    elif action in ("good_week", "breach"):
        n = 7 if action == "good_week" else 1
        days = trading_days(day[0], n)
        for d in days:
            journal_session(b.journal, b.model, stage, d, Day(breach=action == "breach"))
        day[0] = days[-1] + timedelta(days=1)
        end = datetime(days[-1].year, days[-1].month, days[-1].day, 17, 0, tzinfo=b.clock.tz)
        b.clock.set(max(end, b.clock.now()))
    elif action == "review":
        b.ladder.review()
    elif action == "wait_80h":
        b.clock.advance(timedelta(hours=80))


# Climbing is rare by chance: two thirds of the sequences start on the way up.
CLIMB = ["good_week", "promote", "approve_risk_officer"]
CLIMB_HIGHER = [*CLIMB, "approve_head_of_trading", "promote", "good_week", "promote"]


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    start=st.sampled_from([[], CLIMB, CLIMB_HIGHER]),
    actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=20),
)
def test_the_ladder_keeps_its_rules_under_any_sequence_of_actions(
    tmp_path_factory: pytest.TempPathFactory, start: list[str], actions: list[str]
) -> None:
    b = bench(tmp_path_factory.mktemp("sm"))
    cfg = LadderConfig()
    day = [date(2026, 1, 6)]
    for action in ["promote", *start, *actions]:
        before = b.count()
        try:
            _apply(b, action, day)
        except StairwaysError:
            assert b.count() == before, f"{action} was refused but wrote to the journal"
    requests = read_requests(b.journal)
    previous = "research"
    for change in read_stage_changes(b.journal, b.model.model_id):
        assert change.from_stage == previous
        up = STAGES.index(change.to_stage) - STAGES.index(change.from_stage)
        if change.action == "promote":
            assert up == 1
            needed = cfg.approvals.required.for_stage(change.to_stage)
            if needed:
                req = requests[change.request_id]
                approvers = [a["approver"] for a in change.details["approvals"]]
                assert len(set(approvers)) == len(approvers) >= needed
                assert req.requester not in approvers
                assert set(approvers) <= set(cfg.approvals.committee)
                for a in change.details["approvals"]:
                    assert datetime.fromisoformat(a["expires_at"]) > change.ts
                gates = {g["name"]: g["passed"] for g in change.details["gates"]}
                assert gates["trading_days"] and all(gates.values())
        else:
            assert up < 0
        previous = change.to_stage
    assert stage_of(b.journal, b.model.model_id) == previous
    event(f"reached {max((c.to_stage for c in read_stage_changes(b.journal)), key=STAGES.index)}")
