"""``stairways models`` and ``stairways ladder`` end to end: a vault with the journal's key and
the committee's keys, a run directory, and a model climbing from research to micro_10."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from stairways.cli import ladder as ladder_cli
from stairways.journal import Journal, JournalLocation, JournalReader, MacKey
from stairways.live.registry import RegistryIndex, index_location, read_models, stage_of
from tests.cli_helpers import stairways
from tests.unit.live.ladder_helpers import (
    APPROVER_KEYS,
    Day,
    fake_run,
    journal_session,
    trading_days,
)
from tests.unit.security.helpers import make_vault, use_vault

MAC_KEY = "ladder-cli-journal-mac-key-0123456789abcdef"


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    vault = tmp_path / "vault"
    secrets = {"journal_mac_key": MAC_KEY}
    secrets.update({f"approver_key.{k}": v for k, v in APPROVER_KEYS.items()})
    make_vault(vault, secrets)
    use_vault(monkeypatch, vault)
    monkeypatch.setattr(ladder_cli, "terminal_prompt", lambda: None)
    return tmp_path / "live" / "journal.sqlite", fake_run(tmp_path / "runs")


def _stage(journal: Path, model_id: str) -> str:
    with JournalReader.open(JournalLocation.sqlite(journal)) as reader:
        return stage_of(reader, model_id)


def test_a_model_climbs_from_research_to_micro_10_through_the_cli(
    setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    journal, run_dir = setup
    j = ("--journal", str(journal))
    assert stairways(monkeypatch, "models", "register", run_dir, "--by", "dev", *j) == 0
    out = capsys.readouterr().out
    assert "registered: " in out and "test gates passed" in out
    with JournalReader.open(JournalLocation.sqlite(journal)) as reader:
        (model_id,) = read_models(reader)
    assert stairways(monkeypatch, "models", "list", "--json", *j) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["model"] == model_id and row["stage"] == "research" and row["test"] == "passed"

    # research -> micro_10 skips paper: refused, exit 2.
    skip = ("ladder", "promote", model_id, "--to", "micro_10", "--requester", "dev")
    assert stairways(monkeypatch, *skip, "--reason", "hurry", *j) == 2
    assert "would skip paper" in capsys.readouterr().err
    assert (
        stairways(
            monkeypatch,
            "ladder",
            "promote",
            model_id,
            "--requester",
            "dev",
            "--reason",
            "test gates passed",
            *j,
        )
        == 0
    )
    assert "promoted research -> paper" in capsys.readouterr().out
    assert _stage(journal, model_id) == "paper"

    # Three paper days: the gates are not passed yet (exit 3), the status says what is missing.
    with Journal.open(JournalLocation.sqlite(journal), MacKey(MAC_KEY.encode())) as log:
        model = read_models(log)[model_id]
        days = trading_days(date(2026, 1, 6), 7)
        for d in days[:3]:
            journal_session(log, model, "paper", d, Day())
        # A rehearsed day never counts.
        journal_session(log, model, "paper", days[3], Day(rehearsal=True, broker="sim"))
    promote = ("ladder", "promote", model_id, "--requester", "dev", "--reason", "paper week")
    assert stairways(monkeypatch, *promote, *j) == 3
    assert "trading_days 3 >= 7: FAIL" in capsys.readouterr().err
    assert stairways(monkeypatch, "ladder", "status", *j) == 0
    status = capsys.readouterr().out
    assert f"{model_id}: paper since" in status and "days 3 of 7" in status
    assert "not counted 1 (1 rehearsals)" in status
    assert "approvals: 2 needed for micro_10; no request yet" in status

    with Journal.open(JournalLocation.sqlite(journal), MacKey(MAC_KEY.encode())) as log:
        for d in days[3:]:
            journal_session(log, model, "paper", d, Day(), serial=2)
    assert stairways(monkeypatch, *promote, *j) == 0
    out = capsys.readouterr().out
    rid = out.split("request ")[1].split(":")[0]
    assert "needs 2 approvals" in out and _stage(journal, model_id) == "paper"

    approve = ("ladder", "approve", rid, "--reason", "evidence read")
    assert stairways(monkeypatch, *approve, "--approver", "mallory", *j) == 2
    assert "unknown approver 'mallory'" in capsys.readouterr().err
    assert stairways(monkeypatch, *approve, "--approver", "risk_officer", *j) == 0
    assert "1 of 2 approvals; 1 missing" in capsys.readouterr().out
    assert stairways(monkeypatch, "ladder", "status", "paper", *j) == 0
    assert (
        f"approvals for {rid}: 1 of 2 (risk_officer); missing 1 (may approve: "
        "head_of_trading, compliance_officer); requested by dev"
    ) in capsys.readouterr().out
    assert stairways(monkeypatch, *promote, *j) == 2
    assert "of the 2 needed" in capsys.readouterr().err
    assert stairways(monkeypatch, *approve, "--approver", "head_of_trading", *j) == 0
    assert "complete it with `stairways ladder promote" in capsys.readouterr().out
    assert stairways(monkeypatch, *promote, *j) == 0
    assert "promoted paper -> micro_10 with the approvals of" in capsys.readouterr().out
    assert _stage(journal, model_id) == "micro_10"

    assert stairways(monkeypatch, "ladder", "history", model_id, *j) == 0
    history = capsys.readouterr().out
    for text in (
        "registered by dev",
        "promote research -> paper",
        f"request {rid}",
        "approve " + rid + " by risk_officer (signed",
        "promote paper -> micro_10",
    ):
        assert text in history

    # The index beside the journal has caught up with every write.
    with RegistryIndex(index_location(JournalLocation.sqlite(journal))) as index:
        assert [(r["model_id"], r["stage"]) for r in index.rows()] == [(model_id, "micro_10")]

    # A breach at micro_10: review demotes it and says why.
    with Journal.open(JournalLocation.sqlite(journal), MacKey(MAC_KEY.encode())) as log:
        journal_session(log, model, "micro_10", date(2026, 1, 20), Day(breach=True))
    assert stairways(monkeypatch, "ladder", "review", *j) == 0
    assert "auto_demote: " in capsys.readouterr().out
    assert _stage(journal, model_id) == "paper"
    # status names the last review: what it decided, at which stage
    assert stairways(monkeypatch, "ladder", "status", "paper", *j) == 0
    review_line = [ln for ln in capsys.readouterr().out.splitlines() if "last review" in ln]
    assert len(review_line) == 1 and "micro_10 demoted" in review_line[0], review_line
    assert (
        stairways(
            monkeypatch, "ladder", "demote", "paper", "--by", "ops", "--reason", "end of trial", *j
        )
        == 0
    )
    assert _stage(journal, model_id) == "research"


def test_register_of_a_missing_run_exits_with_the_path(
    setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    journal, run_dir = setup
    code = stairways(monkeypatch, "models", "register", run_dir / "nope", "--journal", journal)
    assert code in (1, 2)
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_status_of_a_journal_that_does_not_exist_says_so(
    setup: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    journal, _ = setup
    assert stairways(monkeypatch, "ladder", "status", "--journal", journal) == 1
    assert "does not exist" in capsys.readouterr().err
