"""The journal's config section: defaults, PostgreSQL URLs without passwords, no double set."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways.config import load_config
from stairways.errors import ConfigError
from stairways.security.secret import redact


def test_defaults_are_an_sqlite_file_under_live_keyed_by_journal_mac_key() -> None:
    journal = load_config().journal
    assert journal.path == Path("live/journal.sqlite")
    assert journal.url is None
    assert journal.password_secret is None
    assert journal.mac_key_secret == "journal_mac_key"


def test_postgres_url_and_password_secret_are_accepted() -> None:
    cfg = load_config(
        None,
        {
            "journal.url": "postgresql://trader@127.0.0.1:5432/stairways",
            "journal.password_secret": "journal_db_password",
        },
    )
    assert cfg.journal.url == "postgresql://trader@127.0.0.1:5432/stairways"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"journal.url": "postgresql://u:hunter2pw@h/db"}, "holds a password"),
        ({"journal.url": "postgresql://u@h/db?password=hunter2pw"}, "holds a password"),
        ({"journal.url": "mysql://u@h/db"}, "is for PostgreSQL"),
        ({"journal.url": "not a url"}, "not a database URL"),
        ({"journal.url": "postgresql://u@h/db", "journal.path": "x.sqlite"}, "both set"),
        ({"journal.password_secret": "pw_secret"}, "applies to journal.url"),
        ({"journal.mac_key_secret": "bad name"}, "invalid secret name"),
    ],
)
def test_bad_journal_settings_fail_at_load_naming_the_key(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, overrides)
    assert "journal" in str(info.value)
    # What the CLI prints (and the log filter lets through) never shows the password.
    assert "hunter2pw" not in redact(str(info.value))
