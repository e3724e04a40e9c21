"""The CLI starts without the heavy libraries its commands import when they run.

Every ``stairways`` process, a tuning trial's or a seed's included, imports the command
registry first; torch, Stable-Baselines3, Optuna and matplotlib's pyplot each cost seconds on a
busy machine and are imported inside the commands that use them.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "stable_baselines3", "optuna", "matplotlib.pyplot", "torch._dynamo")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        f"import sys, stairways.cli.main\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1:] in ([], [""]), done.stdout
