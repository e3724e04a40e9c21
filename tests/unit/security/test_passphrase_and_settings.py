"""Where the passphrase and the vault path come from, and the refusals when they conflict."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways.config import load_config
from stairways.errors import ConfigError, InputError
from stairways.security.passphrase import (
    CREDENTIAL_NAME,
    MIN_NEW_PASSPHRASE_LENGTH,
    PASSPHRASE_ENV,
    passphrase_from_environment,
)
from stairways.security.settings import VAULT_ENV, configured_vault_path, resolve_vault_path

VAULT = Path("/srv/stairways/vault")


def _no_prompt(_text: str) -> str:
    raise AssertionError("the prompt must not be used")


def test_systemd_credential_comes_first_and_loses_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / CREDENTIAL_NAME).write_text("from-credential-file\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), PASSPHRASE_ENV: "from-environment"}
    got = passphrase_from_environment(VAULT, prompt=_no_prompt, environ=env)
    assert got.reveal() == "from-credential-file"


def test_environment_variable_when_the_credential_directory_lacks_the_file(
    tmp_path: Path,
) -> None:
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), PASSPHRASE_ENV: "from-environment"}
    got = passphrase_from_environment(VAULT, prompt=_no_prompt, environ=env)
    assert got.reveal() == "from-environment"


def test_prompt_last_and_asked_twice_when_creating() -> None:
    answers = iter(["typed-passphrase-long", "typed-passphrase-long"])
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return next(answers)

    got = passphrase_from_environment(VAULT, creating=True, prompt=prompt, environ={})
    assert got.reveal() == "typed-passphrase-long"
    assert len(asked) == 2
    assert str(VAULT) in asked[0]


def test_mismatched_confirmation_and_short_new_passphrase_are_refused() -> None:
    answers = iter(["typed-passphrase-long", "typed-passphrase-lonG"])
    with pytest.raises(InputError, match="differ"):
        passphrase_from_environment(
            VAULT, creating=True, prompt=lambda _t: next(answers), environ={}
        )
    short = "x" * (MIN_NEW_PASSPHRASE_LENGTH - 1)
    with pytest.raises(InputError, match="too short"):
        passphrase_from_environment(VAULT, creating=True, environ={PASSPHRASE_ENV: short})
    # An existing vault opens with whatever passphrase it was given.
    assert passphrase_from_environment(VAULT, environ={PASSPHRASE_ENV: short}).reveal() == short


def test_no_source_names_all_three_and_the_vault() -> None:
    with pytest.raises(InputError) as info:
        passphrase_from_environment(VAULT, prompt=None, environ={})
    message = str(info.value)
    assert CREDENTIAL_NAME in message
    assert PASSPHRASE_ENV in message
    assert "terminal" in message
    assert str(VAULT) in message


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    (tmp_path / CREDENTIAL_NAME).write_text("\n")
    with pytest.raises(InputError, match="empty"):
        passphrase_from_environment(VAULT, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_vault_path_defaults_to_unset_and_comes_from_either_place() -> None:
    assert load_config().security.vault_path is None
    assert configured_vault_path(None, {}) is None
    assert configured_vault_path(VAULT, {}) == VAULT
    assert configured_vault_path(None, {VAULT_ENV: str(VAULT)}) == VAULT
    assert configured_vault_path(VAULT, {VAULT_ENV: str(VAULT)}) == VAULT
    assert configured_vault_path(None, {VAULT_ENV: "~/v"}) == Path.home() / "v"


def test_two_different_vault_paths_are_refused_naming_both() -> None:
    with pytest.raises(ConfigError) as info:
        configured_vault_path(VAULT, {VAULT_ENV: "/elsewhere/vault"})
    assert VAULT_ENV in str(info.value)
    assert "security.vault_path" in str(info.value)


def test_no_vault_configured_says_how_to_configure_one() -> None:
    with pytest.raises(ConfigError, match=f"export {VAULT_ENV}="):
        resolve_vault_path(None, {})


def test_secret_names_follow_one_rule_and_approver_keys_are_namespaced() -> None:
    from stairways.security.names import approver_key_name, check_name

    assert approver_key_name("ana") == "approver_key.ana"
    assert check_name("ib_gateway_password") == "ib_gateway_password"
    for bad in ("", ".hidden", "a b", "a/b", "x" * 129, "naïve"):
        with pytest.raises(InputError, match="invalid secret name"):
            check_name(bad)
    with pytest.raises(InputError):
        approver_key_name("ana/../../etc")


def test_the_shipped_systemd_drop_in_names_the_credential_the_vault_reads() -> None:
    from tests.paths import REPO_ROOT

    text = (REPO_ROOT / "deploy" / "systemd" / "stairways-vault.conf").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert f"LoadCredential={CREDENTIAL_NAME}:%h/.config/stairways/vault-passphrase" in lines
    assert f"Environment={VAULT_ENV}=%h/.config/stairways/vault" in lines
    assert PASSPHRASE_ENV not in text
