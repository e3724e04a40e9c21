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


def test_live_run_rehearses_micro_10_in_fractions_and_prints_the_ladder_review(
    live_run: LiveRun,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`stairways live run` end to end: a registered model rehearsed at micro_10 with the shipped
    limits trades fractional $10 lots, and the review after the session is printed and
    journaled in the registry's journal."""
    from stairways.cli import journal as journal_cli
    from stairways.journal import JournalLocation, JournalReader
    from stairways.live.evidence import collect_sessions
    from stairways.live.registry import read_models
    from tests.cli_helpers import stairways
    from tests.unit.security.helpers import make_vault, use_vault

    vault = tmp_path / "vault"
    make_vault(vault, {"journal_mac_key": "live-run-cli-journal-mac-key-0123456789"})
    use_vault(monkeypatch, vault)
    monkeypatch.setattr(journal_cli, "terminal_prompt", lambda: None)
    registry = tmp_path / "live" / "ladder.sqlite"
    rehearsals = tmp_path / "live" / "rehearsals.sqlite"
    reg = ("--journal", str(registry))
    assert stairways(monkeypatch, "models", "register", live_run.run_dir, "--by", "dev", *reg) == 0
    with JournalReader.open(JournalLocation.sqlite(registry)) as reader:
        (model_id,) = read_models(reader)
    capsys.readouterr()
    code = stairways(
        monkeypatch,
        "live",
        "run",
        "--model",
        model_id,
        "--stage",
        "micro_10",
        "--rehearse",
        "2024-01-03",
        "--split",
        "test",
        "--journal",
        str(rehearsals),
        "--registry-journal",
        str(registry),
        "--state-dir",
        str(tmp_path / "sim"),
        "--store",
        str(live_run.store),
        "--operator",
        "tester",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "REHEARSAL" in out and "at stage micro_10" in out
    assert f"model {model_id} is in research: no stage gates to review" in out
    with JournalReader.open(JournalLocation.sqlite(rehearsals)) as reader:
        (session,) = collect_sessions(reader)
        fills = [r.payload for r in reader.records(kinds=["fill"])]
    assert session.stage == "micro_10" and session.ended and session.fills > 0
    assert all(abs(f["quantity"]) * f["price"] <= 10.2 for f in fills)
    assert any(abs(f["quantity"]) < 1.0 for f in fills)
    with JournalReader.open(JournalLocation.sqlite(registry)) as reader:
        reviews = [
            r.payload
            for r in reader.records(kinds=["config"])
            if r.payload.get("type") == "ladder_review"
        ]
    assert [(r["outcome"], r["session"]["session_id"]) for r in reviews] == [
        ("research", session.session_id)
    ]
