"""Credentials that may come from the vault or from an environment variable.

When a vault is configured (``security.vault_path`` or ``$STAIRWAYS_VAULT``) it is the source;
the variable is still accepted, and a vault and variable holding different values is refused
rather than one silently winning. Without a vault, the variable is the only source.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from stairways.errors import ConfigError, MissingResourceError
from stairways.security.access import open_vault
from stairways.security.names import check_name
from stairways.security.passphrase import Prompt
from stairways.security.secret import Secret
from stairways.security.settings import configured_vault_path

__all__ = ["credential"]


def credential(
    configured: Path | None,
    name: str,
    env_var: str,
    *,
    what: str,
    prompt: Prompt | None,
    environ: Mapping[str, str] | None = None,
) -> Secret:
    """The credential ``name`` from the configured vault, else from ``$env_var``.

    :param configured: ``security.vault_path`` from the config
    :param name: the secret's name in the vault
    :param env_var: the environment variable that may hold it too
    :param what: how errors call it ("the Polygon API key")
    :param prompt: asks for the vault passphrase when no credential or variable holds it
    """
    check_name(name)
    env = os.environ if environ is None else environ
    from_env = env.get(env_var, "").strip()
    path = configured_vault_path(configured, env)
    if path is not None:
        vault = open_vault(path, prompt=prompt, reading=name, environ=env)
        if name in vault:
            secret = vault.get(name)
            if from_env and from_env != secret.reveal():
                raise ConfigError(
                    f"two different values for {what}: secret {name} in vault {path} and "
                    f"${env_var}; unset one of them"
                )
            return secret
        if not from_env:
            raise MissingResourceError(
                f"{what} is not set: store it with `stairways secrets set {name}` (vault "
                f"{path}) or export {env_var}=<value>"
            )
    if not from_env:
        raise MissingResourceError(
            f"{what} is not set: export {env_var}=<value> and run again, or store it in the "
            f"secrets vault (`stairways secrets set {name}`)"
        )
    return Secret(from_env)
