"""Cheap vaults for tests: the real format and code, with Argon2id costs a test can afford."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways.security.passphrase import PASSPHRASE_ENV
from stairways.security.secret import Secret
from stairways.security.settings import VAULT_ENV
from stairways.security.vault import KdfParams, Vault

PASSPHRASE = "test-passphrase-correct-horse"
CHEAP = KdfParams(time_cost=1, memory_cost_kib=64, parallelism=1)


def make_vault(path: Path, secrets: dict[str, str] | None = None) -> Vault:
    """A vault at ``path`` with cheap key derivation, holding ``secrets``."""
    vault = Vault.create(path, Secret(PASSPHRASE), kdf=CHEAP)
    for name, value in (secrets or {}).items():
        vault.set(name, value)
    return vault


def use_vault(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Point ``$STAIRWAYS_VAULT`` at ``path`` with the test passphrase in the environment."""
    monkeypatch.setenv(VAULT_ENV, str(path))
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
