"""The trained run the stress tests stress, and their suite config.

The live tests' tiny run (``tests/integration/live/conftest.py``) trains under a 1% drawdown
cap (``env.drawdown_cap``, tight so that a random policy ends training episodes early), and the
live loop keeps that rule: past 1% it closes everything and ends the session. A flailing tiny
model reaches 1% within 20 to 60 bars of 2024-01-02, which on some models is before a
scenario's fault (the broker disconnect's slow broker from bar 30, the order burst's 50 changes
from bar 10) has played out. The stress run is the same tiny model trained under a 10% cap:
the rule still holds (the loop still stops the session past 10%), but no short scenario's
session reaches it, so every fault plays out and every gate can be asserted. The scenarios
themselves fail a run whose session ended before its fault played out
(:func:`stairways.stress.scenarios.cut_short`), so a test cannot pass on a fault that never
happened.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stairways.resources import shipped_config
from stairways.risk.limits import RISK_CONFIG_DIR
from stairways.stress.suite import ALL_SCENARIOS
from stairways.training.trainer import TrainOptions, train
from tests.integration.live.conftest import PARITY_RISK_DIR, SPLITS, LiveRun, live_run
from tests.integration.train_helpers import tiny_config

__all__ = ["STRESS_DRAWDOWN_CAP", "WALL_CLOCK", "live_run", "stress_run", "suite_config"]

STRESS_DRAWDOWN_CAP = 0.10
# Figures measured with the wall clock: milliseconds and megabytes (the nightly run's gates).
WALL_CLOCK = ("_ms", "_mb")


@pytest.fixture(scope="session")
def stress_run(live_run: LiveRun) -> LiveRun:
    """The live tests' tiny run trained again under a 10% drawdown cap (same store)."""
    overrides = {
        "data.store_path": str(live_run.store),
        "data.splits": SPLITS,
        "data.protected_splits": ["test"],
    }
    extra = {"training.total_timesteps": 512, "env.drawdown_cap": STRESS_DRAWDOWN_CAP}
    cfg = tiny_config(overrides, live_run.root / "stress_runs", extra)
    assert cfg.env.drawdown_cap == STRESS_DRAWDOWN_CAP
    result = train(cfg, TrainOptions(command=["pytest"], progress=False))
    return LiveRun(run_dir=result.run_dir, store=live_run.store, root=live_run.root)


def suite_config(
    tmp_path: Path, run: LiveRun, scenarios: tuple[str, ...] = tuple(ALL_SCENARIOS)
) -> Path:
    """The shipped suite config on ``run`` without the gates on wall-clock figures (tests
    never assert wall-clock times; those gates are the nightly run's)."""
    data = yaml.safe_load(shipped_config("stress/suite").read_text(encoding="utf-8"))
    # The tiny run's store holds Nov 2023..Jan 2024 (its 2024 sessions are the fixture's own,
    # not a user's test year); its only half day is 2023-11-24, in its train split, rehearsed
    # under the shipped paper limits (the parity limits close at the last bar by design).
    data.update({"run_dir": str(run.run_dir), "risk_dir": str(PARITY_RISK_DIR), "split": "test"})
    data["half_day"].update({"split": "train", "risk_dir": str(RISK_CONFIG_DIR)})
    for name in scenarios:
        gates = data[name]["gates"]
        data[name]["gates"] = [g for g in gates if not g["metric"].endswith(WALL_CLOCK)]
        assert data[name]["gates"], name
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path
