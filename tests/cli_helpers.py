"""Running the ``stairways`` console entry point in-process from tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stairways.cli.main import run


def stairways(monkeypatch: pytest.MonkeyPatch, *args: str | Path) -> int:
    """Run the console entry point in-process; the exit code it would give the shell."""
    monkeypatch.setattr(sys, "argv", ["stairways", *map(str, args)])
    try:
        run()
    except SystemExit as done:
        return int(done.code or 0)
    return 0
