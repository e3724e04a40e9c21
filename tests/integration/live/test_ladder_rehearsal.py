"""The ladder reads what the live loop really writes: a rehearsed 2024 session of a registered
model gives evidence whose fills agree with the session's end figures, and it never counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways.clock import EXCHANGE_TZ, ManualClock
from stairways.journal import Journal
from stairways.live.evidence import collect_sessions, stage_evidence
from stairways.live.model import LivePolicy
from stairways.live.registry import load_model_ref, register_model
from tests.integration.live.conftest import KEY, Journals, LiveRun, run_rehearsal

pytestmark = pytest.mark.slow


def test_a_rehearsed_session_is_read_back_exactly_and_does_not_count(
    live_run: LiveRun, journals: Journals, tmp_path: Path
) -> None:
    from datetime import datetime

    location = journals.location("ladder.sqlite")
    clock = ManualClock(datetime(2024, 1, 2, 8, 0, tzinfo=EXCHANGE_TZ))
    with Journal.open(location, KEY) as journal:
        model, _ = register_model(journal, live_run.run_dir, "final", by="dev", at=clock.now())
        ref = load_model_ref(journal, model.model_id)
    result = run_rehearsal(LivePolicy(ref), location, tmp_path / "state")
    with Journal.open(location, KEY) as journal:
        (s,) = collect_sessions(journal)
        assert s.session_id == result.session_id and s.ended and s.is_rehearsal
        assert s.model_id == model.model_id and s.stage == "paper"
        assert s.inconsistency() == ""
        figures = result.summary["figures"]
        assert s.net_pnl == pytest.approx(figures["pnl"], abs=0.01)
        assert s.fees == pytest.approx(figures["fees"], abs=0.01)
        assert len(s.latencies_ms) == result.summary["decisions"]
        assert s.fills == len(result.executions) > 0
        ev = stage_evidence(journal, model, s.stage, 0)
        assert ev.trading_days == 0 and [x.session_id for x, _ in ev.excluded] == [s.session_id]
        assert "rehearsal" in ev.excluded[0][1]
        # Read as if it were not a rehearsal, the same records give one counted day whose
        # figures are the session's own.
        s.rehearsal, s.broker, s.clock = False, "ibkr", "exchange"
        assert s.inconsistency() == "" and not s.is_rehearsal


def test_the_ladder_reviews_and_journals_after_a_rehearsed_session(
    live_run: LiveRun, journals: Journals, tmp_path: Path
) -> None:
    """After the session ends the ladder reviews the model's stage in the registry's journal;
    the rehearsal is named in the review and does not count."""
    from datetime import datetime

    from stairways.live.ladder import SessionReviewer
    from stairways.live.ladder_config import LadderConfig
    from stairways.live.registry import stage_of

    registry = journals.location("ladder.sqlite")
    clock = ManualClock(datetime(2024, 1, 2, 8, 0, tzinfo=EXCHANGE_TZ))
    with Journal.open(registry, KEY) as journal:
        model, _ = register_model(journal, live_run.run_dir, "final", by="dev", at=clock.now())
        ref = load_model_ref(journal, model.model_id)
        # The tiny run need not pass its test gates: put it in paper the way a promotion does.
        journal.append(
            "config",
            {
                "type": "ladder_stage",
                "model_id": model.model_id,
                "fingerprint": model.fingerprint,
                "from": "research",
                "to": "paper",
                "action": "promote",
                "by": "dev",
                "reason": "test",
                "request_id": "",
                "details": {},
            },
            clock.now(),
        )
    reviewer = SessionReviewer(registry, KEY, LadderConfig(), clock)
    result = run_rehearsal(
        LivePolicy(ref), journals.location("rehearsals.sqlite"), tmp_path / "s", reviewer=reviewer
    )
    review = result.review
    assert review is not None and review.model_id == model.model_id
    assert (review.stage, review.outcome) == ("paper", "hold")
    assert review.session is not None and review.session["session_id"] == result.session_id
    assert review.session["counted"] is False and review.session["rehearsal"] is True
    with Journal.open(registry, KEY) as journal:
        (rec,) = [
            r for r in journal.records(kinds=["config"]) if r.payload.get("type") == "ladder_review"
        ]
        assert rec.seq == review.seq and rec.payload["outcome"] == "hold"
        assert rec.payload["evidence"]["trading_days"] == 0
        assert stage_of(journal, model.model_id) == "paper"
