"""A tiny trained run over a synthetic 2024 session, and helpers to rehearse it (live tests).

The store holds November 2023 to January 2024 of the synthetic market; the run trains one
rollout on Nov-Dec 2023 and is evaluated on January 2024 (the protected test split of this
store), so the rehearsed sessions are 2024 sessions replayed by ``stairways evaluate``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from stairways.data.settings import SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from stairways.evaluation.runner import evaluate_run
from stairways.journal import Journal, JournalLocation, MacKey
from stairways.live.model import LivePolicy, ref_from_run
from stairways.live.session import RehearsalResult, SessionPlan, rehearse
from stairways.risk.store import SqlStateStore
from stairways.training.trainer import TrainOptions, train
from tests.integration.train_helpers import tiny_config

PARITY_RISK_DIR = Path(__file__).resolve().parents[3] / "config" / "risk" / "parity"
SPLITS: dict[str, Any] = {
    "train": {"start": "2023-11-08", "end": "2023-12-29"},
    "test": {"start": "2024-01-02", "end": "2024-01-31"},
}
DAY = date(2024, 1, 3)
KEY = MacKey(b"live-tests-mac-key-0123456789abcdef")


@dataclass(frozen=True)
class LiveRun:
    """A trained, evaluated tiny run."""

    run_dir: Path
    store: Path
    root: Path


@pytest.fixture(scope="session")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    """Store, one-rollout run and its evaluation on the January 2024 test split."""
    root = tmp_path_factory.mktemp("live_run")
    store = root / "bars.duckdb"
    synth = SyntheticConfig(start=date(2023, 11, 1), end=date(2024, 1, 31))
    with BarStore(store) as bs:
        bs.write_bars(
            generate(synth), source="synthetic", synthetic=True, details=generator_details(synth)
        )
    overrides = {
        "data.store_path": str(store),
        "data.splits": SPLITS,
        "data.protected_splits": ["test"],
    }
    cfg = tiny_config(overrides, root / "runs", {"training.total_timesteps": 512})
    result = train(cfg, TrainOptions(command=["pytest"], progress=False))
    evaluate_run(result.run_dir, checkpoint="final", split="test")
    return LiveRun(run_dir=result.run_dir, store=store, root=root)


@pytest.fixture(scope="session")
def live_policy(live_run: LiveRun) -> LivePolicy:
    """The run's final model, loaded once for the session (tests call new_session())."""
    return LivePolicy(ref_from_run(live_run.run_dir))


class Journals:
    """Fresh journal files under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def location(self, name: str | None = None) -> JournalLocation:
        return JournalLocation.sqlite(self.root / (name or f"j{time.perf_counter_ns()}.sqlite"))


@pytest.fixture
def journals(tmp_path: Path) -> Iterator[Journals]:
    yield Journals(tmp_path)


def run_rehearsal(
    policy: LivePolicy,
    location: JournalLocation,
    state_dir: Path,
    day: date = DAY,
    **kwargs: Any,
) -> RehearsalResult:
    """Rehearse ``day`` with the parity limits into the journal at ``location``."""
    plan_args = {
        "day": day,
        "split": "test",
        "operator": "tester",
        "risk_dir": PARITY_RISK_DIR,
        "state_dir": state_dir,
    }
    plan_args.update(kwargs.pop("plan", {}))
    journal = Journal.open(location, KEY)
    states = SqlStateStore(location, journal=journal)  # as every live session binds it
    try:
        return rehearse(
            policy,
            SessionPlan(**plan_args),
            journal=journal,
            store_state=states,
            location=location,
            **kwargs,
        )
    finally:
        states.close()
        journal.close()
