"""Shared fixtures of the integration tests: a tiny synthetic bar store."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from stairways.data.settings import SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details

# Two months of the synthetic market: January trains (after a few warm-up sessions), February
# is the protected test split.
TINY_SPLITS: dict[str, Any] = {
    "train": {"start": "2022-01-05", "end": "2022-01-31"},
    "test": {"start": "2022-02-01", "end": "2022-02-28"},
}


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB bar store holding 2022-01-03..2022-02-28 of generate() output (39 sessions)."""
    path = tmp_path_factory.mktemp("tiny_store") / "bars.duckdb"
    cfg = SyntheticConfig(start=date(2022, 1, 3), end=date(2022, 2, 28))
    with BarStore(path) as store:
        store.write_bars(
            generate(cfg), source="synthetic", synthetic=True, details=generator_details(cfg)
        )
    return path


@pytest.fixture
def tiny_overrides(tiny_store: Path) -> dict[str, Any]:
    """Config overrides pointing the data section at the tiny store and its splits."""
    return {
        "data.store_path": str(tiny_store),
        "data.splits": TINY_SPLITS,
        "data.protected_splits": ["test"],
    }
