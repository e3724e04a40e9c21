"""``stairways risk show``, ``risk state``, ``halt`` and ``resume`` against a real journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways.cli import journal as journal_cli
from stairways.journal import Journal, JournalLocation, JournalReader, MacKey
from stairways.risk.governor import Governor
from stairways.risk.limits import load_stage
from stairways.risk.ports import KIND_OPERATOR, KIND_STATE, InMemoryStateStore
from stairways.risk.state import read_state
from stairways.risk.types import TradingState
from tests.cli_helpers import stairways
from tests.unit.risk.helpers import DAY, OPERATOR, account, intent
from tests.unit.security.helpers import make_vault, use_vault

MAC_KEY = "risk-cli-journal-mac-key-0123456789abcdef"


@pytest.fixture
def journal_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    vault = tmp_path / "vault"
    make_vault(vault, {"journal_mac_key": MAC_KEY})
    use_vault(monkeypatch, vault)
    monkeypatch.setattr(journal_cli, "terminal_prompt", lambda: None)
    path = tmp_path / "journal.sqlite"
    Journal.open(JournalLocation.sqlite(path), MacKey(MAC_KEY.encode())).close()
    return path


def _state(path: Path) -> TradingState:
    with JournalReader.open(JournalLocation.sqlite(path)) as reader:
        return read_state(reader).state


def test_risk_show_prints_the_limits_in_force(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stairways(monkeypatch, "risk", "show", "--stage", "micro_10") == 0
    out = capsys.readouterr().out
    assert "risk limits of stage micro_10" in out
    assert "exposure.max_order_notional" in out and "$10.00" in out
    assert "exposure.max_position_notional" in out and "$100.00" in out
    assert "loss.intraday_loss_alert" in out and "$16.00" in out


def test_risk_show_of_an_unknown_stage_exits_2_naming_the_stages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stairways(monkeypatch, "risk", "show", "--stage", "huge") == 2
    assert "micro_10, paper, scale_50" in capsys.readouterr().err


def test_halt_then_resume_twice_journals_who_and_why(
    journal_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    j = ("--journal", str(journal_file))
    assert (
        stairways(monkeypatch, "halt", "--reason", "runaway orders", "--operator", "alice", *j) == 0
    )
    assert "EMERGENCY_STOP (was PAUSED) by alice" in capsys.readouterr().out
    assert _state(journal_file) is TradingState.EMERGENCY_STOP
    assert (
        stairways(monkeypatch, "resume", "--reason", "broker checked", "--operator", "bob", *j) == 0
    )
    assert _state(journal_file) is TradingState.PAUSED
    assert stairways(monkeypatch, "resume", "--reason", "trade again", "--operator", "bob", *j) == 0
    assert _state(journal_file) is TradingState.RUNNING
    with JournalReader.open(JournalLocation.sqlite(journal_file)) as reader:
        events = list(reader.records(kinds=[KIND_STATE, KIND_OPERATOR]))
    assert [(e.kind, e.payload.get("who", e.payload.get("operator"))) for e in events] == [
        ("operator_action", "alice"),
        ("governor_state", "alice"),
        ("operator_action", "bob"),
        ("governor_state", "bob"),
        ("operator_action", "bob"),
        ("governor_state", "bob"),
    ]
    assert events[1].payload["why"] == "runaway orders"
    assert stairways(monkeypatch, "risk", "state", *j) == 0
    assert "state: RUNNING" in capsys.readouterr().out


def test_a_halt_from_the_cli_reaches_a_running_governor_and_survives_its_restart(
    journal_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = MacKey(MAC_KEY.encode())
    location = JournalLocation.sqlite(journal_file)
    store = InMemoryStateStore()
    with Journal.open(location, key) as journal:
        gov = Governor(load_stage("paper"), journal=journal, store=store)
        gov.transition(TradingState.RUNNING, OPERATOR, "open", DAY)
        j = ("--journal", str(journal_file))
        assert (
            stairways(monkeypatch, "halt", "--reason", "stop now", "--operator", "alice", *j) == 0
        )
        d = gov.assess(account(positions={"NVDA": 10}))
        assert d.state is TradingState.EMERGENCY_STOP
        assert [(c.symbol, c.quantity) for c in d.close_outs] == [("NVDA", -10.0)]
        assert gov.check(intent(target=0), account(positions={"NVDA": 10})).approved == 0.0
    with Journal.open(location, key) as journal:
        assert Governor(load_stage("paper"), journal=journal, store=store).state is (
            TradingState.EMERGENCY_STOP
        )


def test_resume_when_running_is_refused_with_exit_2(
    journal_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    j = ("--journal", str(journal_file))
    assert stairways(monkeypatch, "resume", "--reason", "go", "--operator", "a", *j) == 0
    capsys.readouterr()
    assert stairways(monkeypatch, "resume", "--reason", "again", "--operator", "a", *j) == 2
    assert "already RUNNING" in capsys.readouterr().err


def test_halt_without_a_reason_is_a_usage_error(
    journal_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stairways(monkeypatch, "halt", "--journal", str(journal_file)) == 2
    assert stairways(monkeypatch, "halt", "--reason", "  ", "--journal", str(journal_file)) == 2
    assert _state(journal_file) is TradingState.PAUSED


def test_halt_on_a_missing_journal_fails_clearly_and_creates_nothing(
    journal_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "elsewhere" / "journal.sqlite"
    code = stairways(monkeypatch, "halt", "--reason", "x", "--journal", str(missing))
    assert code == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err
    assert not missing.exists()


def test_halt_without_the_mac_key_names_the_vault_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = tmp_path / "vault"
    make_vault(vault, {})
    use_vault(monkeypatch, vault)
    monkeypatch.setattr(journal_cli, "terminal_prompt", lambda: None)
    code = stairways(monkeypatch, "halt", "--reason", "x", "--journal", str(tmp_path / "j.sqlite"))
    assert code != 0
    assert "journal_mac_key" in capsys.readouterr().err


def test_halt_uses_the_journal_named_in_the_config(
    journal_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "live.yaml"
    config.write_text(f"journal:\n  path: {journal_file}\n")
    assert stairways(monkeypatch, "halt", "--reason", "cfg", "--operator", "a", "-c", config) == 0
    assert _state(journal_file) is TradingState.EMERGENCY_STOP
