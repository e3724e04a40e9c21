"""Configuration of the journal: an embedded SQLite file, or a PostgreSQL database by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator

from stairways.configbase import Frozen
from stairways.errors import InputError
from stairways.security.names import JOURNAL_MAC_KEY, check_name
from stairways.security.secret import remember

__all__ = ["JournalConfig"]


class JournalConfig(Frozen):
    """Where the journal is and which vault secrets key and open it.

    ``path`` (SQLite, the default) and ``url`` (PostgreSQL) are alternatives: setting both is
    refused. A URL never carries a password (config files end up in run manifests): put it in
    the vault and name it in ``password_secret``.
    """

    path: Path = Field(default=Path("live/journal.sqlite"), description="SQLite journal file")
    url: str | None = Field(
        default=None,
        description="PostgreSQL URL, postgresql://user@host:port/database (no password)",
    )
    password_secret: str | None = Field(
        default=None, description="Vault secret holding the PostgreSQL password"
    )
    mac_key_secret: str = Field(
        default=JOURNAL_MAC_KEY, description="Vault secret holding the journal's HMAC key"
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL: use postgresql://user@host:port/database"
            ) from None
        if url.get_backend_name() != "postgresql":
            raise ValueError(
                f"journal.url is for PostgreSQL (postgresql://...), got {url.drivername}://; "
                "an SQLite journal is set with journal.path"
            )
        password = url.password if url.password is not None else url.query.get("password")
        if password is not None:
            # Remembered so that the error (which echoes the given URL) shows it as ***.
            remember(str(password))
            raise ValueError(
                "the URL holds a password: remove it, store it with `stairways secrets set "
                "journal_db_password` and set journal.password_secret: journal_db_password"
            )
        return value

    @field_validator("password_secret", "mac_key_secret")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_name(value)
        except InputError as err:
            raise ValueError(str(err)) from None

    @model_validator(mode="after")
    def _one_location(self) -> Self:
        if self.url is not None and "path" in self.model_fields_set:
            raise ValueError(
                "journal.path and journal.url are both set; keep journal.url for PostgreSQL or "
                "journal.path for an SQLite file"
            )
        if self.password_secret is not None and self.url is None:
            raise ValueError("journal.password_secret applies to journal.url (PostgreSQL)")
        return self
