"""Bad files and read-only directories give one-paragraph messages, never tracebacks.

Read-only directories are mode 0555. Root ignores permission bits, so under root the command
runs with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped (``setpriv``): it is still root and
reads everything it owns, but a directory without write bits is read-only to it, as it is to
any user.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stairways.config import dump_config, load_config
from stairways.errors import InternalError
from tests.cli_helpers import stairways

STAIRWAYS = str(Path(sys.executable).with_name("stairways"))
TIMEOUT_S = 300


def _cli(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``stairways ARGS`` as a process that permission bits apply to (see the module docstring)."""
    cmd = [STAIRWAYS, *map(str, args)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("running as root and setpriv (util-linux) is missing")
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """An existing directory nobody may write to (write bits restored afterwards)."""
    path = tmp_path / "read_only"
    path.mkdir()
    path.chmod(0o555)
    yield path
    path.chmod(0o755)


def _paragraph(stderr: str) -> str:
    """The error message: the last non-empty line of stderr, which must start with error:."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no message on stderr"
    assert lines[-1].startswith("error: "), stderr[-2000:]
    return lines[-1]


def _space(tmp_path: Path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "s", "parameters": {"training.learning_rate": {"choices": [1e-4, 3e-4]}}}
        )
    )
    return path


@pytest.mark.parametrize("where", ["train --config", "tune --config", "tune --space"])
def test_binary_config_file_then_exit_2_naming_the_file_not_a_traceback(
    tmp_path: Path,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    binary = tmp_path / "model.yaml"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xb7\x9a\xff\xfe" * 8)  # a zip
    command, flag = where.split()
    args: list[str | Path] = [command, flag, binary]
    if command == "tune" and flag == "--config":
        args += ["--space", _space(tmp_path), "--out", tmp_path / "out"]
    elif command == "tune":
        args += ["--out", tmp_path / "out"]

    code = stairways(monkeypatch, *args)

    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "Traceback" not in err
    message = _paragraph(err)
    assert str(binary) in message
    assert "not a text file" in message and "saved as UTF-8" in message


def test_read_only_runs_dir_then_exit_2_before_the_data_is_read(
    tmp_path: Path, read_only: Path
) -> None:
    config = tmp_path / "run.yaml"
    # The store does not exist: a check that came after loading the data would report that.
    config.write_text(yaml.safe_dump({"data": {"store_path": str(tmp_path / "missing.duckdb")}}))
    runs = read_only / "runs"

    done = _cli(["train", "--config", config, "--runs-dir", runs, "--no-progress"], tmp_path)

    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    message = _paragraph(done.stderr)
    assert f"cannot write to {runs}" in message
    assert "--runs-dir" in message and f"chmod u+w {read_only}" in message
    assert "missing.duckdb" not in done.stderr
    assert not runs.exists()


def test_read_only_tune_out_then_exit_2_and_no_study_created(
    tmp_path: Path, read_only: Path
) -> None:
    out = read_only / "study"

    done = _cli(["tune", "--space", _space(tmp_path), "--out", out], tmp_path)

    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    message = _paragraph(done.stderr)
    assert f"cannot write to {out}" in message and "--out" in message
    assert "not writable" in message
    assert not out.exists()


def _fake_run(parent: Path) -> Path:
    """A run directory as far as the write check goes: a manifest and a loadable config."""
    run = parent / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    (run / "config.yaml").write_text(dump_config(load_config()))
    run.chmod(0o555)
    return run


@pytest.mark.parametrize("command", ["train --resume", "evaluate"])
def test_read_only_run_directory_then_exit_2_naming_it_before_any_work(
    tmp_path: Path, command: str
) -> None:
    run = _fake_run(tmp_path)
    try:
        done = _cli([*command.split(), run], tmp_path)
    finally:
        run.chmod(0o755)

    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    message = _paragraph(done.stderr)
    assert f"cannot write to {run}" in message
    assert f"chmod u+w {run}" in message
    assert not (run / "eval").exists() and not (run / "run.lock").exists()


def test_file_system_error_inside_a_command_then_exit_1_naming_the_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/runs/x/analysis")

    monkeypatch.setattr("stairways.cli.train.load_config", refuse)

    code = stairways(monkeypatch, "train")

    err = capsys.readouterr().err
    assert code == 1
    assert "error: cannot use /srv/runs/x/analysis: Permission denied" in err
    assert "Traceback" not in err


def test_internal_error_then_exit_1_saying_it_is_not_the_users_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise InternalError("evaluation finished without sessions [3]")

    monkeypatch.setattr("stairways.cli.train.load_config", broken)

    code = stairways(monkeypatch, "train")

    err = capsys.readouterr().err
    assert code == 1
    assert "internal error: evaluation finished without sessions [3]" in err
    assert "not in your input" in err and "fix" not in err.lower()


def test_other_os_error_inside_a_command_then_not_disguised_as_a_file_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def reset(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    monkeypatch.setattr("stairways.cli.train.load_config", reset)

    with pytest.raises(ConnectionResetError):
        stairways(monkeypatch, "train")
