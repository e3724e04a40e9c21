"""The shared PostgreSQL fixture starts a real server that SQLAlchemy can use."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from tests import pg


def test_postgres_url_when_requested_then_real_server_answers_sql(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE TABLE IF NOT EXISTS probe (x int)"))
            connection.execute(sqlalchemy.text("INSERT INTO probe VALUES (41), (1)"))
            total = connection.execute(sqlalchemy.text("SELECT sum(x) FROM probe")).scalar_one()
            version = connection.execute(sqlalchemy.text("SHOW server_version")).scalar_one()
            connection.execute(sqlalchemy.text("DROP TABLE probe"))
    finally:
        engine.dispose()
    assert total == 42
    assert int(version.split(".")[0]) >= 13


def test_fresh_postgres_url_when_two_tests_then_databases_differ(
    postgres_url: str, fresh_postgres_url: str
) -> None:
    assert fresh_postgres_url.rsplit("/", 1)[0] == postgres_url.rsplit("/", 1)[0]
    assert fresh_postgres_url != postgres_url
    engine = sqlalchemy.create_engine(fresh_postgres_url)
    try:
        with engine.connect() as connection:
            tables = connection.execute(
                sqlalchemy.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert tables == 0


def test_find_postgres_bin_when_binaries_missing_then_fails_naming_make_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg, "POSTGRES_LIB", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"make test.*postgresql"):
        pg.find_postgres_bin()
