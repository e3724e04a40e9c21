"""``stairways secrets``: values from stdin, never arguments; clear errors and exit codes."""

from __future__ import annotations

import io
import stat
import sys
from pathlib import Path

import pytest

from stairways.cli import secrets_cmd
from stairways.security.passphrase import PASSPHRASE_ENV
from stairways.security.secret import Secret
from stairways.security.settings import VAULT_ENV
from stairways.security.vault import Vault
from tests.cli_helpers import stairways
from tests.unit.security.helpers import PASSPHRASE, make_vault, use_vault

KEY = "cli-polygon-key-0123456789"


@pytest.fixture
def vault_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "vault"
    make_vault(path, {"polygon_api_key": KEY})
    use_vault(monkeypatch, path)
    monkeypatch.setattr(secrets_cmd, "terminal_prompt", lambda: None)
    return path


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_set_reads_stdin_and_get_list_rm_work(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, "gateway-password-1\n")
    assert stairways(monkeypatch, "secrets", "set", "ib_gateway_password") == 0
    assert "stored secret ib_gateway_password" in capsys.readouterr().err
    assert stairways(monkeypatch, "secrets", "get", "ib_gateway_password") == 0
    assert capsys.readouterr().out == "gateway-password-1\n"
    assert stairways(monkeypatch, "secrets", "list") == 0
    assert capsys.readouterr().out.split() == ["ib_gateway_password", "polygon_api_key"]
    assert stairways(monkeypatch, "secrets", "rm", "ib_gateway_password") == 0
    assert Vault.open(vault_path, Secret(PASSPHRASE)).names() == ["polygon_api_key"]


def test_set_generate_stores_a_random_key_it_never_prints(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stairways(monkeypatch, "secrets", "set", "journal_mac_key", "--generate") == 0
    value = Vault.open(vault_path, Secret(PASSPHRASE)).get("journal_mac_key").reveal()
    out = capsys.readouterr()
    assert len(value) == 43
    assert value not in out.out + out.err


def test_set_creates_a_missing_vault_with_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new" / "vault"
    monkeypatch.setenv(VAULT_ENV, str(path))
    monkeypatch.setenv(PASSPHRASE_ENV, "a-new-long-passphrase")
    monkeypatch.setattr(secrets_cmd, "terminal_prompt", lambda: None)
    _stdin(monkeypatch, KEY)
    assert stairways(monkeypatch, "secrets", "set", "polygon_api_key") == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Vault.open(path, Secret("a-new-long-passphrase")).get("polygon_api_key").reveal() == KEY


def test_an_existing_secret_is_replaced_only_with_replace(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stairways(monkeypatch, "secrets", "set", "journal_mac_key", "--generate") == 0
    first = Vault.open(vault_path, Secret(PASSPHRASE)).get("journal_mac_key")
    capsys.readouterr()
    assert stairways(monkeypatch, "secrets", "set", "journal_mac_key", "--generate") == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--replace" in err and "no longer be" in err
    assert Vault.open(vault_path, Secret(PASSPHRASE)).get("journal_mac_key") == first
    _stdin(monkeypatch, "rotated-polygon-key-42")
    assert stairways(monkeypatch, "secrets", "set", "polygon_api_key", "--replace") == 0
    assert "replaced secret polygon_api_key" in capsys.readouterr().err
    got = Vault.open(vault_path, Secret(PASSPHRASE)).get("polygon_api_key").reveal()
    assert got == "rotated-polygon-key-42"


def test_the_value_is_never_an_argument(
    vault_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = stairways(monkeypatch, "secrets", "set", "polygon_api_key", "the-value-123")
    assert code == 2
    assert "the-value-123" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "args", "code", "expected"),
    [
        ("wrong_passphrase", ["get", "polygon_api_key"], 2, "wrong passphrase"),
        ("corrupt", ["get", "polygon_api_key"], 1, "corrupted or truncated"),
        ("open_mode", ["list"], 2, "Run: chmod 600"),
        ("none", ["get", "other_name"], 1, "no secret named 'other_name'"),
        ("none", ["rm", "other_name"], 1, "no secret named 'other_name'"),
        ("no_passphrase", ["get", "polygon_api_key"], 2, "no passphrase for the vault"),
        ("no_vault", ["list"], 2, "no secrets vault is configured"),
        ("empty_stdin", ["set", "polygon_api_key"], 2, "no value on standard input"),
        ("none", ["get", "bad/name"], 2, "invalid secret name"),
    ],
)
def test_errors_are_one_clear_line_with_the_right_exit_code_and_change_nothing(
    vault_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    args: list[str],
    code: int,
    expected: str,
) -> None:
    if setup == "wrong_passphrase":
        monkeypatch.setenv(PASSPHRASE_ENV, "not-the-passphrase")
    elif setup == "corrupt":
        vault_path.write_bytes(vault_path.read_bytes()[:50])
    elif setup == "open_mode":
        vault_path.chmod(0o644)
    elif setup == "no_passphrase":
        monkeypatch.delenv(PASSPHRASE_ENV)
    elif setup == "no_vault":
        monkeypatch.delenv(VAULT_ENV)
    elif setup == "empty_stdin":
        _stdin(monkeypatch, "")
    before = vault_path.read_bytes()
    assert stairways(monkeypatch, "secrets", *args) == code
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err
    assert KEY not in err
    if setup not in ("no_vault", "none", "empty_stdin") and args[0] != "list":
        assert str(vault_path) in err
    if len(args) > 1 and setup != "no_vault" and "/" not in args[1]:
        assert args[1] in err
    assert vault_path.read_bytes() == before
