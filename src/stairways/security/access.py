"""Opening the configured vault: path from config or ``$STAIRWAYS_VAULT``, passphrase from its
sources (see :mod:`stairways.security.passphrase`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from stairways.errors import InputError
from stairways.security.passphrase import Prompt, passphrase_from_environment
from stairways.security.secret import Secret
from stairways.security.settings import resolve_vault_path
from stairways.security.vault import Vault, VaultNotFoundError

__all__ = ["open_vault", "read_secret"]


def open_vault(
    configured: Path | None,
    *,
    prompt: Prompt | None,
    reading: str | None = None,
    create_missing: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Vault:
    """Open the configured vault, or create it when ``create_missing`` and it does not exist.

    :param configured: ``security.vault_path`` from the config (``$STAIRWAYS_VAULT`` also counts)
    :param prompt: asks for the passphrase when no credential or variable holds it
    :param reading: the secret wanted, named in errors
    :param create_missing: create an empty vault (asking for a new passphrase) if there is none
    """
    path = resolve_vault_path(configured, environ)
    if create_missing and not path.exists():
        passphrase = passphrase_from_environment(
            path, creating=True, prompt=prompt, environ=environ
        )
        return Vault.create(path, passphrase)
    if not path.exists():
        # Say so before asking for a passphrase that could not be used.
        message = (
            f"vault file {path} does not exist: store a first secret with "
            "`stairways secrets set NAME`"
        )
        if reading is not None:
            message = f"cannot read secret {reading!r}: {message}"
        raise VaultNotFoundError(message)
    try:
        passphrase = passphrase_from_environment(path, prompt=prompt, environ=environ)
    except InputError as err:
        if reading is None:
            raise
        raise InputError(f"cannot read secret {reading!r}: {err}") from None
    return Vault.open(path, passphrase, reading=reading)


def read_secret(
    configured: Path | None,
    name: str,
    *,
    prompt: Prompt | None,
    environ: Mapping[str, str] | None = None,
) -> Secret:
    """One secret from the configured vault (errors name the vault file and ``name``)."""
    return open_vault(configured, prompt=prompt, reading=name, environ=environ).get(name)
