"""Every axis of every shipped search space changes the trained model.

For each axis, one tiny run per value (the other axes at their first value) on the shipped
base config with the tiny store: one PPO update of the base config's own rollout (8 envs x 128
steps, batch 256, 10 epochs). The policy weights of the values must all differ from one another;
an axis the curriculum (or anything else) overrides would give identical weights.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stable_baselines3 import PPO

from stairways.training.trainer import TrainOptions, train
from stairways.tuning.space import ChoiceParam, SearchSpace, load_space, trial_config
from tests.paths import REPO_ROOT

TUNING = REPO_ROOT / "config" / "tuning"
GRIDS = ("mini_grid", "large_grid", "tpe_schedules")
# A validation split inside the tiny store (January trains, February is protected test).
SPLITS = {
    "train": {"start": "2022-01-05", "end": "2022-01-31"},
    "validation": {"start": "2022-02-01", "end": "2022-02-14"},
    "test": {"start": "2022-02-15", "end": "2022-02-28"},
}
ONE_UPDATE = 8 * 128  # the base config's rollout: n_envs x n_steps


def _values(space: SearchSpace, axis: str) -> list[Any]:
    spec = space.parameters[axis]
    if isinstance(spec, ChoiceParam):
        return list(spec.choices)
    return [spec.low, spec.high]


def _axes() -> list[tuple[str, str]]:
    return [(g, axis) for g in GRIDS for axis in load_space(TUNING / f"{g}.yaml").parameters]


# The axis that was inert before (its KL targets never stopped an update) stays in the fast run.
FAST = {("mini_grid", "training.target_kl")}


class _Weights:
    """Policy weights of tiny runs, cached by (grid, point): the baseline is shared by axes."""

    def __init__(self, root: Path, store: Path) -> None:
        self.root = root
        self.base_overrides = {
            "data.store_path": str(store),
            "data.splits": SPLITS,
            "data.protected_splits": ["test"],
            "training.total_timesteps": ONE_UPDATE,
            "training.checkpoint_every": ONE_UPDATE,
            "training.tensorboard": False,
        }
        self.cache: dict[str, np.ndarray] = {}

    def of(self, grid: str, point: dict[str, Any]) -> np.ndarray:
        key = f"{grid}:{sorted((k, repr(v)) for k, v in point.items())}"
        if key not in self.cache:
            cfg = trial_config(TUNING / "base.yaml", self.base_overrides, point)
            result = train(cfg, TrainOptions(run_dir=self.root / f"run{len(self.cache)}"))
            assert result.final_model is not None
            weights = PPO.load(result.final_model, device="cpu").policy.state_dict()
            self.cache[key] = np.concatenate([w.numpy().ravel() for w in weights.values()])
        return self.cache[key]


@pytest.fixture(scope="module")
def weights(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> _Weights:
    return _Weights(tmp_path_factory.mktemp("grid_runs"), tiny_store)


@pytest.mark.parametrize(
    ("grid", "axis"),
    [
        pytest.param(g, a, marks=() if (g, a) in FAST else pytest.mark.slow, id=f"{g}-{a}")
        for g, a in _axes()
    ],
)
def test_each_value_of_the_axis_trains_a_different_model(
    grid: str, axis: str, weights: _Weights
) -> None:
    space = load_space(TUNING / f"{grid}.yaml")
    first = {name: _values(space, name)[0] for name in space.parameters}
    trained = {repr(v): weights.of(grid, {**first, axis: v}) for v in _values(space, axis)}
    same = [
        (a, b)
        for (a, wa), (b, wb) in itertools.combinations(trained.items(), 2)
        if np.array_equal(wa, wb)
    ]
    assert not same, f"{grid}: {axis} values {same} trained identical models"


def test_every_shipped_axis_is_covered() -> None:
    # A grid added to config/tuning must be listed here, so its axes are trained too.
    shipped = {p.stem for p in TUNING.glob("*.yaml")} - {"base"}
    assert shipped == set(GRIDS)
