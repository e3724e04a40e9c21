"""Credentials (the Polygon API key) come from the vault when one is configured; the
environment variable still works, and two different values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways.data.sources.polygon import API_KEY_ENV
from stairways.errors import ConfigError, InputError, MissingResourceError
from stairways.security.credentials import credential
from stairways.security.names import POLYGON_API_KEY
from stairways.security.passphrase import PASSPHRASE_ENV
from stairways.security.settings import VAULT_ENV
from tests.unit.security.helpers import PASSPHRASE, make_vault

KEY = "vault-polygon-key-0123"


def _key(vault: Path | None, env: dict[str, str]) -> str:
    found = credential(
        vault, POLYGON_API_KEY, API_KEY_ENV, what="the Polygon API key", prompt=None, environ=env
    )
    return found.reveal()


def test_key_comes_from_the_configured_vault(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    make_vault(path, {POLYGON_API_KEY: KEY})
    assert _key(path, {PASSPHRASE_ENV: PASSPHRASE}) == KEY
    assert _key(None, {VAULT_ENV: str(path), PASSPHRASE_ENV: PASSPHRASE}) == KEY


def test_without_a_vault_the_variable_is_used() -> None:
    assert _key(None, {API_KEY_ENV: " env-key-abcdefgh "}) == "env-key-abcdefgh"
    with pytest.raises(MissingResourceError) as info:
        _key(None, {})
    assert f"export {API_KEY_ENV}=" in str(info.value)
    assert "stairways secrets set polygon_api_key" in str(info.value)


def test_same_key_in_both_places_is_fine_different_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    make_vault(path, {POLYGON_API_KEY: KEY})
    env = {VAULT_ENV: str(path), PASSPHRASE_ENV: PASSPHRASE, API_KEY_ENV: KEY}
    assert _key(None, env) == KEY
    env[API_KEY_ENV] = "another-key-9876543"
    with pytest.raises(ConfigError) as info:
        _key(None, env)
    assert str(path) in str(info.value)
    assert API_KEY_ENV in str(info.value)
    assert KEY not in str(info.value)
    assert "another-key-9876543" not in str(info.value)


def test_vault_without_the_key_falls_to_the_variable_or_says_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"journal_mac_key": "k" * 43})
    env = {VAULT_ENV: str(path), PASSPHRASE_ENV: PASSPHRASE}
    with pytest.raises(MissingResourceError) as info:
        _key(None, env)
    assert "stairways secrets set polygon_api_key" in str(info.value)
    assert str(path) in str(info.value)
    assert API_KEY_ENV in str(info.value)
    assert _key(None, {**env, API_KEY_ENV: "env-key-abcdefgh"}) == "env-key-abcdefgh"


def test_configured_vault_without_a_passphrase_is_an_error_not_a_silent_fallback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "vault"
    make_vault(path, {POLYGON_API_KEY: KEY})
    with pytest.raises(InputError, match="no passphrase") as info:
        _key(None, {VAULT_ENV: str(path), API_KEY_ENV: "env-key-abcdefgh"})
    assert "'polygon_api_key'" in str(info.value)
