"""A throwaway PostgreSQL server for tests, started once per test session.

Usage (``tests/conftest.py`` exposes both fixtures to every test)::

    def test_study_on_postgres(postgres_url: str) -> None:
        engine = sqlalchemy.create_engine(postgres_url)  # one database, shared by the session

    def test_isolated(fresh_postgres_url: str) -> None:
        ...  # a new empty database on the same server, dropped after the test

``postgres_url`` is a SQLAlchemy URL with the psycopg 3 driver,
``postgresql+psycopg://postgres@127.0.0.1:<port>/stairways_test``. The server listens only on
127.0.0.1 on a free port, keeps its data in a temporary directory (fsync off: nothing here needs
to survive a crash), and is stopped and deleted at the end of the session. PostgreSQL refuses to
run as root, so under root the server runs as the ``postgres`` system user. Its binaries come
from the Debian package ``postgresql`` (``/usr/lib/postgresql/<version>/bin``), which ``make
test`` installs; without them the fixture fails and says so rather than skipping.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
START_ATTEMPTS = 3
DATABASE = "stairways_test"
SUPERUSER = "postgres"
POSTGRES_LIB = Path("/usr/lib/postgresql")
SETUP_HINT = (
    "run `make test` (or `make system-packages`) as root once: its set-up installs the Debian "
    "package postgresql, which provides initdb and pg_ctl under /usr/lib/postgresql/<version>/bin"
)


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server: where it listens and how to reach it."""

    host: str
    port: int
    directory: Path

    def url(self, database: str) -> str:
        """SQLAlchemy URL of one database on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) as the superuser."""
        import psycopg

        dsn = f"host={self.host} port={self.port} user={SUPERUSER} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as connection:
            connection.execute(sql)  # type: ignore[arg-type]


def find_postgres_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl."""
    candidates = sorted(
        POSTGRES_LIB.glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
        reverse=True,
    )
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    pytest.fail(f"PostgreSQL server binaries not found: {SETUP_HINT}.", pytrace=False)


def _as_server_user() -> list[str]:
    """Command prefix that runs the server tools as a non-root user (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        pytest.fail(
            f"running as root but there is no '{SUPERUSER}' system user to run PostgreSQL as: "
            f"{SETUP_HINT}.",
            pytrace=False,
        )
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.fail("running as root and `runuser` (util-linux) is missing.", pytrace=False)
    return [runuser, "-u", SUPERUSER, "--"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
    )


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"(no server log: {err})"


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server in a new temporary directory; stop it and delete the directory after."""
    bindir = find_postgres_bin()
    prefix = _as_server_user()
    # Not under pytest's tmp_path: its parents are private to root, the server user must enter.
    directory = Path(tempfile.mkdtemp(prefix="stairways-pg-"))
    if prefix:
        entry = pwd.getpwnam(SUPERUSER)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    data, log = directory / "data", directory / "server.log"
    pg_ctl = [*prefix, str(bindir / "pg_ctl")]
    started = False
    try:
        init = _run(
            [
                *prefix,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            timeout=120,
        )
        if init.returncode != 0:
            pytest.fail(f"initdb failed ({init.returncode}):\n{init.stderr}", pytrace=False)
        for _attempt in range(START_ATTEMPTS):
            port = free_port()
            options = (
                f"-h 127.0.0.1 -p {port} -k {directory} "
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            )
            start = _run(
                [
                    *pg_ctl,
                    "start",
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                ],
                timeout=START_TIMEOUT_S + 15,
            )
            if start.returncode == 0:
                started = True
                break
            # The port may have been taken between the probe and the bind: stop whatever half
            # started, then try another port.
            _run([*pg_ctl, "stop", "-D", str(data), "-m", "immediate"], 30)
        if not started:
            pytest.fail(
                f"PostgreSQL did not start within {START_TIMEOUT_S} s after {START_ATTEMPTS} "
                f"attempts; server log {log}:\n{_log_tail(log)}",
                pytrace=False,
            )
        yield PostgresServer(host="127.0.0.1", port=port, directory=directory)
    finally:
        if started:
            stop = _run(
                [*pg_ctl, "stop", "-D", str(data), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S)],
                timeout=STOP_TIMEOUT_S + 15,
            )
            if stop.returncode != 0:
                _run([*pg_ctl, "stop", "-D", str(data), "-m", "immediate"], 30)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole test session (see the module docstring)."""
    with running_postgres() as server:
        server.execute(f"CREATE DATABASE {DATABASE}")
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of the session's test database, shared by every test that asks for it."""
    return postgres_server.url(DATABASE)


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a new empty database for one test, dropped after it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres_server.execute(f"CREATE DATABASE {name}")
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
