"""Runs Debian's promtool (installed by the Makefile's system packages)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS``; fails the test with the install command when promtool is missing."""
    exe = shutil.which("promtool")
    if exe is None:
        raise AssertionError(
            "promtool is missing; install Debian's prometheus package (`apt-get install -y "
            "prometheus`, one of the Makefile's system packages)"
        )
    return subprocess.run(
        [exe, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
