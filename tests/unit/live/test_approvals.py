"""Approvals: the committee's signed answers, four eyes, N of M per stage, expiry, rejection."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from stairways.live.approvals import read_answers, sign, signature_valid
from stairways.live.ladder import LadderRefusedError
from stairways.live.ladder_config import LadderConfig
from stairways.live.registry import stage_of
from stairways.security.secret import Secret
from tests.unit.live.ladder_helpers import (
    APPROVER_KEYS,
    Bench,
    approve_all,
    bench,
    keys,
    serve,
    to_paper,
    trading_days,
)

WEEK = trading_days(date(2026, 1, 6), 7)
WEEK2 = trading_days(date(2026, 1, 20), 7)


def _requested(b: Bench) -> str:
    """The model in paper with a good week, and a request for micro_10 by ``dev``."""
    to_paper(b)
    serve(b, "paper", WEEK)
    out = b.ladder.promote(b.model.model_id, requester="dev", reason="paper week")
    assert out.request is not None
    return out.request.request_id


def test_an_approval_is_a_signed_journal_record_with_reason_and_expiry(tmp_path: Path) -> None:
    b = bench(tmp_path)
    rid = _requested(b)
    ans = b.ladder.approve(rid, approver="risk_officer", reason="drawdown well inside limits")
    assert ans.reason == "drawdown well inside limits" and ans.decision == "approve"
    signed = datetime.fromisoformat(ans.signed_at)
    assert datetime.fromisoformat(ans.expires_at) - signed == timedelta(hours=72)
    assert signature_valid(keys("risk_officer"), ans)
    assert not signature_valid(keys("head_of_trading"), ans)
    (rec,) = [r for r in b.journal.records(kinds=["approval"]) if r.payload["type"] == "approve"]
    assert rec.payload["signature"] == ans.signature and len(ans.signature) == 64
    # The signature covers the reason: another reason does not verify.
    forged = ans.__class__(**{**ans.__dict__, "reason": "something else"})
    assert not signature_valid(keys("risk_officer"), forged)


def test_the_requester_cannot_approve_their_own_request(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    serve(b, "paper", WEEK)
    out = b.ladder.promote(b.model.model_id, requester="risk_officer", reason="my model")
    assert out.request is not None
    before = b.count()
    with pytest.raises(LadderRefusedError, match="four eyes"):
        b.ladder.approve(out.request.request_id, approver="risk_officer", reason="looks fine")
    assert b.count() == before


def test_an_unknown_approver_is_refused_naming_the_committee(tmp_path: Path) -> None:
    b = bench(tmp_path)
    rid = _requested(b)
    before = b.count()
    with pytest.raises(
        LadderRefusedError,
        match="unknown approver 'mallory': the committee is risk_officer, head_of_trading",
    ):
        b.ladder.approve(rid, approver="mallory", reason="trust me")
    assert b.count() == before


def test_an_approver_without_a_key_in_the_vault_is_refused(tmp_path: Path) -> None:
    cfg = LadderConfig.model_validate(
        {"approvals": {"committee": ["risk_officer", "head_of_trading", "keyless"]}}
    )
    b = bench(tmp_path, cfg)
    rid = _requested(b)
    before = b.count()
    with pytest.raises(LadderRefusedError, match="keyless has no signing key"):
        b.ladder.approve(rid, approver="keyless", reason="ok")
    assert b.count() == before


def test_an_answer_without_a_reason_or_to_an_unknown_request_is_refused(tmp_path: Path) -> None:
    b = bench(tmp_path)
    rid = _requested(b)
    with pytest.raises(LadderRefusedError, match="needs a reason"):
        b.ladder.approve(rid, approver="risk_officer", reason=" ")
    with pytest.raises(
        LadderRefusedError, match=f"no promotion request 'req-x'; open requests: {rid}"
    ):
        b.ladder.approve("req-x", approver="risk_officer", reason="ok")


def test_one_approval_of_two_does_not_promote_and_changes_nothing(tmp_path: Path) -> None:
    b = bench(tmp_path)
    rid = _requested(b)
    b.ladder.approve(rid, approver="risk_officer", reason="ok")
    before = b.count()
    with pytest.raises(
        LadderRefusedError, match=r"1 valid approval\(s\) \(risk_officer\) of the 2"
    ):
        b.ladder.promote(b.model.model_id, requester="dev", reason="go")
    assert b.count() == before and stage_of(b.journal, b.model.model_id) == "paper"


def test_an_expired_approval_does_not_count(tmp_path: Path) -> None:
    b = bench(tmp_path)
    rid = _requested(b)
    b.ladder.approve(rid, approver="risk_officer", reason="ok")
    b.clock.advance(timedelta(hours=71))
    b.ladder.approve(rid, approver="head_of_trading", reason="ok")
    b.clock.advance(timedelta(hours=1, seconds=1))  # the first is 72 h and 1 s old
    before = b.count()
    with pytest.raises(LadderRefusedError, match="the approval by risk_officer expired at"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="go")
    assert b.count() == before and stage_of(b.journal, b.model.model_id) == "paper"
    # Approving again renews it: the approver's latest answer is the one that counts.
    b.ladder.approve(rid, approver="risk_officer", reason="still ok")
    assert b.ladder.promote(b.model.model_id, requester="dev", reason="go").action == "promoted"


def test_a_forged_signature_does_not_count(tmp_path: Path) -> None:
    b = bench(tmp_path)
    rid = _requested(b)
    b.ladder.approve(rid, approver="risk_officer", reason="ok")
    # Someone with the journal's key but not head_of_trading's writes an approval in their name.
    real = b.ladder.approve(rid, approver="head_of_trading", reason="ok")
    content = {**real.content(), "reason": "forged"}
    payload = {"type": "approve", **content, "signature": sign(Secret("x" * 40), content)}
    b.journal.append("approval", payload, b.clock.now())
    with pytest.raises(LadderRefusedError, match="signature of head_of_trading does not verify"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="go")


def test_a_rejection_closes_the_request(tmp_path: Path) -> None:
    b = bench(tmp_path)
    rid = _requested(b)
    b.ladder.approve(rid, approver="risk_officer", reason="ok")
    b.ladder.reject(rid, approver="compliance_officer", reason="fees too close to the limit")
    with pytest.raises(LadderRefusedError, match="is closed"):
        b.ladder.approve(rid, approver="head_of_trading", reason="ok")
    assert b.ladder.open_request(b.model.model_id) is None
    # A new promotion opens a new request; the old approval does not carry over.
    out = b.ladder.promote(b.model.model_id, requester="dev", reason="again")
    assert out.action == "requested" and out.request is not None and out.request.request_id != rid
    answers = read_answers(b.journal, rid)
    assert [a.decision for a in answers] == ["approve", "reject"]


def test_scale_50_needs_more_approvals_than_micro_10(tmp_path: Path) -> None:
    b = bench(tmp_path)
    rid = _requested(b)
    approve_all(b, rid, ["risk_officer", "head_of_trading"])
    b.ladder.promote(b.model.model_id, requester="dev", reason="go")
    serve(b, "micro_10", WEEK2)
    out = b.ladder.promote(b.model.model_id, requester="dev", reason="micro week")
    assert out.request is not None and out.request.required == 3
    approve_all(b, out.request.request_id, ["risk_officer", "head_of_trading"])
    with pytest.raises(LadderRefusedError, match="of the 3 needed"):
        b.ladder.promote(b.model.model_id, requester="dev", reason="go")
    approve_all(b, out.request.request_id, ["compliance_officer"])
    assert b.ladder.promote(b.model.model_id, requester="dev", reason="go").action == "promoted"
    assert stage_of(b.journal, b.model.model_id) == "scale_50"


def test_approvals_of_changed_files_are_refused(tmp_path: Path) -> None:
    b = bench(tmp_path)
    rid = _requested(b)
    (b.run_dir / "final_model.zip").write_bytes(b"swapped after the request")
    before = b.count()
    with pytest.raises(LadderRefusedError, match="changed since registration"):
        b.ladder.approve(rid, approver="risk_officer", reason="ok")
    assert b.count() == before


def test_every_committee_member_has_a_test_key() -> None:
    assert set(APPROVER_KEYS) == set(LadderConfig().approvals.committee)
