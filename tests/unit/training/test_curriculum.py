import pytest

from stairways.configbase import validate_model
from stairways.errors import ConfigError
from stairways.training.curriculum import CurriculumConfig, phase_index, resolve_phases

EXAMPLE = {
    "phases": [
        {"start": 0, "drawdown_cap": 0.2, "ent_coef": 0.05, "learning_rate": 1e-4},
        {"start": 50_000, "drawdown_cap": 0.1, "ent_coef": 0.02, "learning_rate": 7e-5},
        {"start": 150_000, "drawdown_cap": 0.05, "ent_coef": 0.01, "learning_rate": 3e-5},
    ]
}


def test_phase_in_force_changes_exactly_at_each_start() -> None:
    phases = resolve_phases(validate_model(CurriculumConfig, EXAMPLE, "t"), base_ent_coef=0.0)
    assert phase_index(phases, 0) == 0
    assert phase_index(phases, 49_999) == 0
    assert phase_index(phases, 50_000) == 1
    assert phase_index(phases, 149_999) == 1
    assert phase_index(phases, 10**9) == 2
    assert [p.drawdown_cap for p in phases] == [0.2, 0.1, 0.05]


def test_empty_fields_keep_the_value_in_force_before_the_phase() -> None:
    cur = validate_model(
        CurriculumConfig,
        {"phases": [{"start": 0, "drawdown_cap": 0.2}, {"start": 10, "ent_coef": 0.03}]},
        "t",
    )
    first, second = resolve_phases(cur, base_ent_coef=0.01)
    assert (first.drawdown_cap, first.ent_coef, first.learning_rate) == (0.2, 0.01, None)
    assert (second.drawdown_cap, second.ent_coef, second.learning_rate) == (0.2, 0.03, None)


def test_no_phases_means_no_phase_in_force() -> None:
    assert phase_index(resolve_phases(CurriculumConfig(), 0.0), 100) is None


def test_phases_out_of_order_are_refused() -> None:
    with pytest.raises(ConfigError, match="must increase strictly"):
        validate_model(CurriculumConfig, {"phases": [{"start": 0}, {"start": 0}]}, "c.yaml")


def test_first_phase_must_start_at_zero() -> None:
    with pytest.raises(ConfigError, match="first phase must start at timestep 0"):
        validate_model(CurriculumConfig, {"phases": [{"start": 5}]}, "c.yaml")


def test_drawdown_cap_above_one_is_refused_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"phases\.0\.drawdown_cap"):
        validate_model(CurriculumConfig, {"phases": [{"start": 0, "drawdown_cap": 1.5}]}, "c")
