"""The Polygon API key comes from the vault when one is configured; the variable still works."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways.data.sources.polygon import API_KEY_ENV, polygon_api_key
from stairways.errors import ConfigError, InputError, MissingResourceError
from stairways.security.passphrase import PASSPHRASE_ENV
from stairways.security.settings import VAULT_ENV
from tests.unit.security.helpers import make_vault, use_vault

KEY = "vault-polygon-key-0123"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (API_KEY_ENV, VAULT_ENV, PASSPHRASE_ENV, "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


def test_key_comes_from_the_configured_vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"polygon_api_key": KEY})
    monkeypatch.setenv(PASSPHRASE_ENV, "test-passphrase-correct-horse")
    assert polygon_api_key(path) == KEY
    use_vault(monkeypatch, path)
    assert polygon_api_key() == KEY


def test_same_key_in_both_places_is_fine_different_keys_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"polygon_api_key": KEY})
    use_vault(monkeypatch, path)
    monkeypatch.setenv(API_KEY_ENV, KEY)
    assert polygon_api_key() == KEY
    monkeypatch.setenv(API_KEY_ENV, "another-key-9876543")
    with pytest.raises(ConfigError) as info:
        polygon_api_key()
    assert str(path) in str(info.value)
    assert API_KEY_ENV in str(info.value)
    assert KEY not in str(info.value)
    assert "another-key-9876543" not in str(info.value)


def test_vault_without_the_key_falls_to_the_variable_or_says_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"journal_mac_key": "k" * 43})
    use_vault(monkeypatch, path)
    with pytest.raises(MissingResourceError) as info:
        polygon_api_key()
    assert "stairways secrets set polygon_api_key" in str(info.value)
    assert API_KEY_ENV in str(info.value)
    monkeypatch.setenv(API_KEY_ENV, "env-key-abcdefgh")
    assert polygon_api_key() == "env-key-abcdefgh"


def test_configured_vault_without_a_passphrase_is_an_input_error_not_a_silent_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vault"
    make_vault(path, {"polygon_api_key": KEY})
    monkeypatch.setenv(VAULT_ENV, str(path))
    monkeypatch.setenv(API_KEY_ENV, "env-key-abcdefgh")
    with pytest.raises(InputError, match="no passphrase"):
        polygon_api_key(prompt=None)
