"""Usage errors exit 2 with a message, never a traceback (through the installed script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

STAIRWAYS = str(Path(sys.executable).with_name("stairways"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--bogus"], "No such option: --bogus"),
        (["nosuch"], "No such command 'nosuch'"),
        (["evaluate"], "Missing argument"),
        (["data", "synth", "--seed", "many"], "Invalid value for '--seed'"),
    ],
)
def test_usage_error_exits_2_with_its_message_and_no_traceback(
    args: list[str], message: str
) -> None:
    done = subprocess.run(
        [STAIRWAYS, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_help_exits_0() -> None:
    wide = {**os.environ, "COLUMNS": "200"}  # rich folds option names on narrow terminals
    done = subprocess.run(
        [STAIRWAYS, "train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=wide,
    )
    assert done.returncode == 0 and "--total-timesteps" in done.stdout
