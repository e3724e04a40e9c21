"""Configuration of the secrets vault: where the vault file is."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field

from stairways.configbase import Frozen
from stairways.errors import ConfigError

__all__ = ["VAULT_ENV", "SecurityConfig", "configured_vault_path", "resolve_vault_path"]

VAULT_ENV = "STAIRWAYS_VAULT"


class SecurityConfig(Frozen):
    """Where the vault lives. Unset by default: a vault is used only when one is configured."""

    vault_path: Path | None = Field(
        default=None, description=f"Vault file (or export {VAULT_ENV}); '~' is expanded"
    )


def configured_vault_path(
    configured: Path | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The vault file named by ``$STAIRWAYS_VAULT`` or the config, or None when neither does.

    Both naming different files is refused rather than one silently winning.
    """
    env = os.environ if environ is None else environ
    from_env = env.get(VAULT_ENV, "").strip()
    env_path = Path(from_env).expanduser() if from_env else None
    cfg_path = configured.expanduser() if configured is not None else None
    if env_path is not None and cfg_path is not None and env_path != cfg_path:
        raise ConfigError(
            f"two vault files are named: {VAULT_ENV}={env_path} and security.vault_path="
            f"{cfg_path}; unset one of them"
        )
    return env_path or cfg_path


def resolve_vault_path(configured: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """Like :func:`configured_vault_path`, but a missing setting is a ConfigError saying how."""
    path = configured_vault_path(configured, environ)
    if path is None:
        raise ConfigError(
            f"no secrets vault is configured: export {VAULT_ENV}=/path/to/vault (for example "
            f"~/.config/stairways/vault) or set security.vault_path in the config file"
        )
    return path
