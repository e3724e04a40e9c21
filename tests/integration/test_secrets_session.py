"""A whole session of commands with known secret values; no byte written anywhere holds one.

Secrets go into the vault through ``stairways secrets set``; the Polygon key is used by a
``data import --polygon`` against a loopback Polygon (whose client logs every URL); the journal
is keyed from the vault and written, verified, tailed and exported; wrong passphrases and
missing secrets produce errors. Then every byte of standard output and error (in-process and
from real subprocesses), the debug log file, and every file under the session's directory (the
vault itself, the journal with its WAL, the bar store, the exports) is searched for each secret
value, raw and URL-encoded. The one exception is ``secrets get``'s standard output, whose job is
to print the value: it is checked to be exactly that.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from stairways.config import dump_config, load_config
from stairways.errors import InputError
from stairways.journal import Journal, JournalLocation, MacKey
from stairways.security.access import read_secret
from stairways.security.secret import Secret
from stairways.security.vault import Vault
from tests.cli_helpers import stairways
from tests.unit.data.loopback_polygon import loopback_polygon
from tests.unit.security.helpers import CHEAP

POLYGON_KEY = "PolyKey-7Hq2Zx9Lm4Rt"
MAC_KEY = "MacKey-Vd8rT2nW5qLz0pXc3bYh6gJm1sKf4aNe9uQ"
IB_PASSWORD = "IbGw-pass-5Tz8Qw"
PASSPHRASE = "session passphrase 8Kd3Pq"
WRONG_PASSPHRASE = "wrong passphrase 1Xy9Wv"
SECRETS = (POLYGON_KEY, MAC_KEY, IB_PASSWORD, PASSPHRASE, WRONG_PASSPHRASE)
T0 = datetime(2023, 11, 24, 9, 31, tzinfo=ZoneInfo("America/New_York"))


def _stairways_bin() -> list[str]:
    script = Path(sys.executable).with_name("stairways")
    if script.is_file():
        return [str(script)]
    found = shutil.which("stairways")
    assert found is not None, "the stairways console script is not installed"
    return [found]


def _forms(value: str) -> set[bytes]:
    return {value.encode(), quote(value, safe="").encode(), quote(value).encode()}


def _leaks(data: bytes) -> list[str]:
    return [value for value in SECRETS if any(form in data for form in _forms(value))]


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


@pytest.fixture
def session_log(tmp_path: Path) -> Iterator[Path]:
    """A debug log file on the root logger, as a deployment would keep one."""
    path = tmp_path / "logs" / "session.log"
    path.parent.mkdir()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def test_no_secret_value_is_written_anywhere_in_a_session(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    session_log: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    vault_path = work / "secrets" / "vault"
    journal_path = work / "live" / "journal.sqlite"
    store = work / "data" / "bars.duckdb"
    env = {
        "STAIRWAYS_VAULT": str(vault_path),
        "STAIRWAYS_VAULT_PASSPHRASE": PASSPHRASE,
        "HOME": str(tmp_path / "home"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    # The CLI would ask on the terminal; this session has every passphrase in the environment.
    monkeypatch.setattr("stairways.security.passphrase.terminal_prompt", lambda: None)
    # A cheap vault (same format and code) so the session stays fast.
    Vault.create(vault_path, Secret(PASSPHRASE), kdf=CHEAP)
    written: list[bytes] = []  # everything the commands printed, except `secrets get`

    def cli(*args: str | Path, stdin: str | None = None) -> int:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = stairways(monkeypatch, "-v", *args)
        out = capfd.readouterr()
        written.append(out.out.encode() + out.err.encode())
        return code

    assert cli("secrets", "set", "polygon_api_key", stdin=POLYGON_KEY + "\n") == 0
    assert cli("secrets", "set", "journal_mac_key", stdin=MAC_KEY) == 0
    assert cli("secrets", "set", "ib_gateway_password", stdin=IB_PASSWORD + "\n") == 0
    assert cli("secrets", "list") == 0
    assert b"ib_gateway_password" in written[-1]

    assert stairways(monkeypatch, "secrets", "get", "polygon_api_key") == 0
    got = capfd.readouterr()
    assert got.out == POLYGON_KEY + "\n"
    written.append(got.err.encode())

    # The Polygon key from the vault, through the HTTP client's logs (every URL, at DEBUG).
    args = ["data", "import", "--polygon", "--symbol", "MSFT", "--from", "2023-11-24"]
    args += ["--to", "2023-11-24", "--store", str(store)]
    with loopback_polygon() as (url, state):
        state.key = POLYGON_KEY
        assert cli(*args, "--polygon-url", url) == 0
        assert len(state.requests) == 1
        # And again in a real process, whose stderr gets every log line.
        proc = subprocess.run(
            [*_stairways_bin(), "-v", *args, "--polygon-url", url, "--refetch"],
            capture_output=True,
            env={**os.environ, **env},
            cwd=work,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert b"HTTP Request" in proc.stderr
        written.append(proc.stdout + proc.stderr)

    # The live side: journal keyed from the vault.
    key = MacKey.from_secret(read_secret(None, "journal_mac_key", prompt=None))
    with Journal.open(JournalLocation.sqlite(journal_path), key) as journal:
        journal.append("config", {"stage": "paper", "vault": str(vault_path)}, T0)
        journal.append("decision", {"observation_hash": "ab12", "action": 1}, T0)
        journal.append("fill", {"order_ref": "o1", "fee": 0.35, "qty": 1}, T0)
        journal.append("operator_action", {"operator": "ana", "action": "halt"}, T0)
        ib = read_secret(None, "ib_gateway_password", prompt=None)
        with pytest.raises(InputError) as refused:
            journal.append("alert", {"note": f"login {ib.reveal()} failed"}, T0)
        with pytest.raises(InputError):
            journal.append("alert", {"login": ib}, T0)
        logging.getLogger("stairways.test").info("refused: %s", refused.value)
    assert cli("journal", "verify") == 0
    assert b"4 records verified" in written[-1]
    assert cli("journal", "tail", "-n", "10") == 0
    assert cli("journal", "export", "--out", work / "out" / "events.parquet") == 0
    assert cli("journal", "export", "--out", work / "out" / "events.csv") == 0

    # Errors a user causes.
    monkeypatch.setenv("STAIRWAYS_VAULT_PASSPHRASE", WRONG_PASSPHRASE)
    assert cli("secrets", "get", "polygon_api_key") == 2
    assert b"wrong passphrase" in written[-1]
    assert cli("journal", "verify") == 2
    monkeypatch.setenv("STAIRWAYS_VAULT_PASSPHRASE", PASSPHRASE)
    assert cli("secrets", "get", "no_such_secret") == 1
    proc = subprocess.run(
        [*_stairways_bin(), "-v", "secrets", "get", "polygon_api_key"],
        capture_output=True,
        env={**os.environ, **env, "STAIRWAYS_VAULT_PASSPHRASE": WRONG_PASSPHRASE},
        cwd=work,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(b"error: cannot read secret 'polygon_api_key': wrong")
    # With --verbose the CLI may add the traceback as a debug line: searched below too.
    written.append(proc.stdout + proc.stderr)
    assert cli("secrets", "rm", "ib_gateway_password") == 0

    # The resolved config (what run manifests record) names the vault, never a value.
    written.append(dump_config(load_config()).encode())

    for index, data in enumerate(written):
        assert _leaks(data) == [], f"command output {index} holds a secret"
    assert b"refused:" in session_log.read_bytes()
    searched = list(_files(tmp_path))
    names = {p.name for p in searched}
    assert {"vault", "journal.sqlite", "bars.duckdb", "events.parquet", "events.csv"} <= names
    assert "session.log" in names
    for path in searched:
        assert _leaks(path.read_bytes()) == [], f"{path} holds a secret"
