"""The tuner's intermediate scores (what its pruner reads) come from either training backend."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from stairways.training.rundir import RunDirectory
from stairways.tuning.objective import TrialRequest
from stairways.tuning.train_objective import TrainingObjective
from tests.integration.tune_helpers import tiny_tune_config


class Recorder:
    """A reporter that keeps the scores, and prunes at ``prune_at`` (a step) when given."""

    def __init__(self, prune_at: int | None = None) -> None:
        self.scores: list[tuple[int, float]] = []
        self.prune_at = prune_at

    def report(self, step: int, value: float) -> None:
        self.scores.append((step, value))
        if self.prune_at is not None and step >= self.prune_at:
            raise optuna.TrialPruned(f"pruned at step {step}")


def _objective(tmp_path: Path, store: Path, backend: str) -> TrainingObjective:
    config = tiny_tune_config(store, backend=backend)
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(config))
    return TrainingObjective(base_config=path, study_name="s", total_timesteps=1024, eval_every=512)


@pytest.mark.parametrize("backend", ["sb3", "fused"])
def test_intermediate_scores_at_every_eval_step_with_either_backend(
    tiny_store: Path, tmp_path: Path, backend: str
) -> None:
    objective = _objective(tmp_path, tiny_store, backend)
    reporter = Recorder()
    request = TrialRequest(0, {}, (0,), tmp_path / "trial", reporter)
    result = objective(request)
    assert [s for s, _ in reporter.scores] == [512, 1024]
    assert len(result.seed_scores) == 1
    for run_dir in result.run_dirs:
        m = RunDirectory.open(Path(run_dir)).read_manifest()
        assert m.status == "completed"
        assert m.total_timesteps == 1024


def test_the_pruner_stops_a_fused_trial_inside_training(tiny_store: Path, tmp_path: Path) -> None:
    # both backends call the same checkpoint listener; the sb3 path is in test_tune_local
    objective = _objective(tmp_path, tiny_store, "fused")
    reporter = Recorder(prune_at=512)
    request = TrialRequest(0, {}, (0,), tmp_path / "trial", reporter)
    with pytest.raises(optuna.TrialPruned, match="pruned at step 512"):
        objective(request)
    assert [s for s, _ in reporter.scores] == [512]
    (run_dir,) = (tmp_path / "trial").iterdir()
    m = RunDirectory.open(run_dir).read_manifest()
    assert m.timesteps == 512  # stopped at the score, not at the end of the budget
    assert m.final_model is None
