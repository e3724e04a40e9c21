"""Shared helpers of the tuning tests: a config with a validation split and small spaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stairways.configbase import validate_model
from stairways.tuning.search import SearchRequest
from stairways.tuning.space import SearchSpace

# Train, validation and test never overlap; validation is what trials are scored on.
SPLITS: dict[str, Any] = {
    "train": {"start": "2022-01-03", "end": "2023-06-30"},
    "validation": {"start": "2023-07-03", "end": "2023-12-29"},
    "test": {"start": "2024-01-02", "end": "2024-12-31"},
}
BASE_OVERRIDES: dict[str, Any] = {"data.splits": SPLITS}


def make_space(**settings: Any) -> SearchSpace:
    """A 2x2 grid over two data settings (cheap objectives read them), settings overridable."""
    data: dict[str, Any] = {
        "name": "test_grid",
        "sampler": "grid",
        "pruner": {"kind": "none"},
        "heartbeat": {"interval": 1, "grace_period": 2},
        "parameters": {
            "data.features.clip": {"choices": [1.0, 2.0]},
            "data.synthetic.signal_strength": {"choices": [0.5, 1.0]},
        },
    }
    data.update(settings)
    return validate_model(SearchSpace, data, "test space")


def make_request(tmp_path: Path, space: SearchSpace, **kw: Any) -> SearchRequest:
    """A search request writing under ``tmp_path/out`` with the validation split defined."""
    args: dict[str, Any] = {
        "space": space,
        "out_dir": tmp_path / "out",
        "study_name": "study",
        "base_overrides": BASE_OVERRIDES,
    }
    args.update(kw)
    return SearchRequest(**args)


@pytest.fixture
def log_path(tmp_path: Path) -> str:
    """Where cheap objectives log their executions."""
    return str(tmp_path / "executions.jsonl")
