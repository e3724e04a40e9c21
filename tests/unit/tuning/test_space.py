"""Search-space files: parsing, path validation against the config, labels, grid points."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from stairways.config import CONFIG_DIR, load_config
from stairways.errors import ConfigError
from stairways.tuning.space import (
    check_config_path,
    check_values,
    decode,
    distributions,
    grid_points,
    label_of,
    load_space,
    override_settings,
    suggest,
)
from tests.unit.tuning.conftest import make_space

TUNING = CONFIG_DIR / "tuning"
BASE = TUNING / "base.yaml"


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_mini_grid_then_plan_grid_of_six_points_valid_on_base() -> None:
    space = load_space(TUNING / "mini_grid.yaml")
    points = grid_points(space)
    assert space.sampler == "grid" and len(points) == 6
    assert {p["training.learning_rate"] for p in points} == {1e-4, 7e-5, 5e-5}
    # off, or a target small enough to stop updates at these rates (see mini_grid.yaml)
    assert {p["training.target_kl"] for p in points} == {None, 5e-5}
    check_values(space, BASE, {}, "mini_grid")


def test_shipped_large_grid_then_reward_shape_parameters_valid_on_base() -> None:
    space = load_space(TUNING / "large_grid.yaml")
    assert set(space.parameters) == {
        "env.drawdown_cap",
        "reward.refined.early_exit_tax",
        "reward.refined.holding_alpha",
        "reward.refined.penalty_beta",
    }
    assert space.grid_size == 81
    check_values(space, BASE, {}, "large_grid")
    # The base config uses the refined reward, so these parameters change what trials train.
    assert load_config(BASE).reward.name == "refined"


def test_shipped_base_then_validation_split_held_out_from_train_and_test() -> None:
    cfg = load_config(BASE)
    val, train, test = (cfg.data.splits[n] for n in ("validation", "train", "test"))
    assert not val.overlaps(train) and not val.overlaps(test)
    assert "test" in cfg.data.protected_splits


def test_shipped_tpe_space_then_schedule_choices_decode_to_valid_schedules() -> None:
    space = load_space(TUNING / "tpe_schedules.yaml")
    check_values(space, BASE, {}, "tpe_schedules")
    lr = space.parameters["training.learning_rate"]
    for label in lr.labels:  # type: ignore[union-attr]
        value = decode(space, {**_any_params(space), "training.learning_rate": label})
        cfg = load_config(BASE, {"training.learning_rate": value["training.learning_rate"]})
        assert cfg.training.learning_rate is not None


def _any_params(space):
    study = optuna.create_study()
    return suggest(study.ask(), space)


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("training.lerning_rate", "'lerning_rate'.*known: .*learning_rate"),
        ("trainning.learning_rate", "top level has no field 'trainning'"),
        ("data.features.clip.value", "it is a value"),
    ],
)
def test_unknown_parameter_path_then_config_error_names_it(
    tmp_path: Path, path: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        load_space(write(tmp_path, {"parameters": {path: {"choices": [1.0]}}}))
    assert str(tmp_path / "space.yaml") in str(err.value)


def test_paths_into_mappings_and_schedules_then_accepted() -> None:
    check_config_path("data.splits.validation.start")
    check_config_path("training.learning_rate.start")  # a field of LinearSchedule


def test_value_outside_config_range_then_config_error_names_parameter_and_value() -> None:
    space = make_space(parameters={"training.target_kl": {"choices": [0.01, -1.0]}})
    with pytest.raises(ConfigError, match=r"training.target_kl = -1.0"):
        check_values(space, None, {}, "space.yaml")


def test_grid_with_a_range_then_config_error_suggests_tpe(tmp_path: Path) -> None:
    data = {
        "sampler": "grid",
        "parameters": {"training.ent_coef": {"type": "float", "low": 0, "high": 0.1}},
    }
    with pytest.raises(ConfigError, match="sampler: tpe"):
        load_space(write(tmp_path, data))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"type": "float", "low": 1.0, "high": 1.0}, "below high"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "low > 0"),
        ({"choices": [1.0, 1.0]}, "distinct"),
        ({"type": "int", "low": 1, "high": 8, "log": True, "step": 2}, "both log and step"),
    ],
)
def test_bad_parameter_spec_then_config_error(tmp_path: Path, spec: dict, match: str) -> None:
    data = {"sampler": "tpe", "n_trials": 3, "parameters": {"training.n_epochs": spec}}
    with pytest.raises(ConfigError, match=match):
        load_space(write(tmp_path, data))


def test_mapping_choice_then_stored_as_json_label_and_decoded_back() -> None:
    schedule = {"kind": "linear", "start": 1e-4, "end": 1e-5}
    space = make_space(parameters={"training.learning_rate": {"choices": [3e-4, schedule]}})
    labels = space.parameters["training.learning_rate"].labels  # type: ignore[union-attr]
    assert labels == (3e-4, label_of(schedule))
    assert isinstance(labels[1], str)
    dist = distributions(space)["training.learning_rate"]
    assert isinstance(dist, optuna.distributions.CategoricalDistribution)
    assert decode(space, {"training.learning_rate": labels[1]}) == {
        "training.learning_rate": schedule
    }


def test_flag_overrides_then_settings_replaced_and_validated() -> None:
    space = override_settings(
        make_space(), {"budget.seeds_per_trial": 3, "sampler": "tpe", "n_trials": 5}, "flags"
    )
    assert space.budget.seeds_per_trial == 3 and space.sampler == "tpe"
    with pytest.raises(ConfigError, match="sampler"):
        override_settings(make_space(), {"sampler": "random"}, "flags")


def test_grid_target_then_capped_at_grid_size_and_tpe_needs_trials() -> None:
    assert make_space(n_trials=99).target_trials() == 4
    assert make_space(n_trials=3).target_trials() == 3
    with pytest.raises(ConfigError, match="n_trials"):
        make_space(
            sampler="tpe",
            parameters={"training.ent_coef": {"type": "float", "low": 0.0, "high": 0.1}},
        ).target_trials()


@pytest.mark.parametrize(
    ("grid", "axis", "field"),
    [
        ("mini_grid", "training.learning_rate", "learning_rate"),
        ("large_grid", "env.drawdown_cap", "drawdown_cap"),
    ],
)
def test_an_axis_the_base_curriculum_replaces_is_refused_naming_axis_and_phase(
    grid: str, axis: str, field: str
) -> None:
    phase2 = CONFIG_DIR / "curriculum" / "phase2_oos.yaml"
    with pytest.raises(ConfigError) as err:
        check_values(load_space(TUNING / f"{grid}.yaml"), phase2, {}, grid)
    text = str(err.value)
    assert f"{grid}: parameter {axis} would change nothing in training" in text
    assert f"training.curriculum.phases[0].{field} (phase 'lenient') from timestep 0" in text
    assert str(phase2) in text
