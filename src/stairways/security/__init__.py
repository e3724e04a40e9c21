"""Secrets: the encrypted vault, the :class:`Secret` type and log redaction.

Light to import: the vault (cryptography, argon2) loads from :mod:`stairways.security.vault`
and :mod:`stairways.security.access` when it is used.
"""

from stairways.security.secret import (
    MASK,
    RedactingFilter,
    Secret,
    contains_secret,
    install_redaction,
    redact,
)
from stairways.security.settings import VAULT_ENV, SecurityConfig

__all__ = [
    "MASK",
    "VAULT_ENV",
    "RedactingFilter",
    "Secret",
    "SecurityConfig",
    "contains_secret",
    "install_redaction",
    "redact",
]
