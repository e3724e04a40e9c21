"""``stairways journal verify|tail|export`` against a journal keyed from a test vault."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from stairways.cli import journal as journal_cli
from stairways.journal import Journal, JournalLocation, MacKey
from tests.cli_helpers import stairways
from tests.unit.journal.helpers import T0, delete, edit, fill, insert_forged, swap
from tests.unit.security.helpers import make_vault, use_vault

MAC_KEY = "cli-journal-mac-key-0123456789abcdefghij"


@pytest.fixture
def journal_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    vault = tmp_path / "vault"
    make_vault(vault, {"journal_mac_key": MAC_KEY})
    use_vault(monkeypatch, vault)
    monkeypatch.setattr(journal_cli, "terminal_prompt", lambda: None)
    path = tmp_path / "journal.sqlite"
    with Journal.open(JournalLocation.sqlite(path), MacKey(MAC_KEY.encode())) as journal:
        fill(journal, 10)
    return path


def test_verify_passes_and_prints_the_head(
    journal_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stairways(monkeypatch, "journal", "verify", "--journal", journal_file) == 0
    out = capsys.readouterr().out
    assert "10 records verified, chain intact" in out
    head = out.split("head: ")[1].strip()
    assert head.startswith("10:")
    args = ("journal", "verify", "--journal", journal_file, "--expect-head", head)
    assert stairways(monkeypatch, *args) == 0


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda p: edit(p, 4), "TAMPERED (edited)\n  record seq 4 was edited"),
        (lambda p: delete(p, 4), "(deleted)\n  record(s) between seq 3 and seq 5 were"),
        (lambda p: insert_forged(p, 4), "(inserted)\n  record seq 4 does not belong"),
        (lambda p: swap(p, 4, 7), "(reordered)\n  record seq 4 is out of order"),
    ],
)
def test_verify_names_the_tampering_and_exits_3(
    journal_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tamper: object,
    expected: str,
) -> None:
    tamper(journal_file)  # type: ignore[operator]
    assert stairways(monkeypatch, "journal", "verify", "--journal", journal_file) == 3
    out = capsys.readouterr().out
    assert expected in out
    assert "3 records before it verified" in out
    assert "append-only triggers missing" in out


def test_verify_with_a_journal_path_from_the_config(
    journal_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "live.yaml"
    config.write_text(f"journal:\n  path: {journal_file}\n")
    assert stairways(monkeypatch, "journal", "verify", "-c", config) == 0
    assert str(journal_file) in capsys.readouterr().out


def test_verify_without_the_key_in_the_vault_names_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = tmp_path / "vault"
    make_vault(vault, {"polygon_api_key": "p" * 20})
    use_vault(monkeypatch, vault)
    path = tmp_path / "j.sqlite"
    Journal.open(JournalLocation.sqlite(path), MacKey(MAC_KEY.encode())).close()
    assert stairways(monkeypatch, "journal", "verify", "--journal", path) == 1
    err = capsys.readouterr().err
    assert "no secret named 'journal_mac_key'" in err
    assert str(vault) in err


def test_tail_prints_the_last_lines_of_a_kind(
    journal_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("journal", "tail", "--journal", journal_file, "-n", "2", "--kind", "fill")
    assert stairways(monkeypatch, *args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["6", "9"]
    assert all(" fill " in line for line in lines)


def test_tail_follow_prints_events_appended_later_until_interrupted(
    journal_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            with Journal.open(
                JournalLocation.sqlite(journal_file), MacKey(MAC_KEY.encode())
            ) as journal:
                journal.append("alert", {"level": "critical"}, T0)
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(journal_cli.time, "sleep", sleep)
    args = ("journal", "tail", "--journal", journal_file, "-n", "1", "-f", "--interval", "0.5")
    assert stairways(monkeypatch, *args) == 130
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["10", "11"]
    assert '{"level":"critical"}' in lines[1]
    assert polls == [0.5, 0.5]


def test_export_csv_of_one_day(
    journal_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "day.csv"
    args = ("journal", "export", "--journal", journal_file, "--from", "2025-03-03")
    assert stairways(monkeypatch, *args, "--to", "2025-03-03", "--out", out) == 0
    assert "wrote 10 events" in capsys.readouterr().out
    with out.open() as handle:
        assert len(list(csv.DictReader(handle))) == 10
    assert stairways(monkeypatch, *args, "--to", "2025-03-02", "--out", out) == 2
    assert "must be after" in capsys.readouterr().err


def test_missing_journal_is_exit_1_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.sqlite"
    assert stairways(monkeypatch, "journal", "tail", "--journal", missing) == 1
    err = capsys.readouterr().err
    assert f"journal {missing} does not exist" in err
    assert "Traceback" not in err
    assert not missing.exists()


def test_journal_url_with_a_password_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://trader:s3cretpassword@127.0.0.1:1/db"
    assert stairways(monkeypatch, "journal", "tail", "--journal", url) == 2
    err = capsys.readouterr().err
    assert "holds a password" in err
    assert "s3cretpassword" not in err
