from pathlib import Path

import pytest
import yaml

from stairways.config import CONFIG_DIR, dump_config, load_config
from stairways.configbase import validate_model
from stairways.errors import ConfigError
from stairways.training.curriculum import (
    SHADOWED_SETTINGS,
    CurriculumConfig,
    CurriculumPhase,
    phase_index,
    resolve_phases,
    shadows,
)
from stairways.tuning.space import check_config_path

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


# ---------------------------------------------------------------- one place per value
PHASE2 = CONFIG_DIR / "curriculum" / "phase2_oos.yaml"


def test_every_phase_field_names_the_setting_it_replaces() -> None:
    fields = set(CurriculumPhase.model_fields) - {"start", "name"}
    assert set(SHADOWED_SETTINGS) == fields
    for setting in SHADOWED_SETTINGS.values():
        check_config_path(setting)


@pytest.mark.parametrize(
    ("setting", "value", "phase_key"),
    [
        ("training.learning_rate", 1e-4, "training.curriculum.phases[0].learning_rate"),
        ("training.ent_coef", 0.03, "training.curriculum.phases[0].ent_coef"),
        ("env.drawdown_cap", 0.03, "training.curriculum.phases[0].drawdown_cap"),
    ],
)
def test_a_setting_a_phase_replaces_is_refused_naming_both_places(
    setting: str, value: float, phase_key: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(PHASE2, {setting: value})
    text = str(err.value)
    assert f"{setting} is set, but {phase_key} (phase 'lenient') from timestep 0" in text
    # the same value written in a config file is refused the same way
    path = tmp_path / "mine.yaml"
    section, leaf = setting.split(".")
    path.write_text(f"extends: {PHASE2}\n{section}:\n  {leaf}: {value}\n")
    with pytest.raises(ConfigError, match=rf"{path}:\n.*{setting} is set"):
        load_config(path)


def test_a_later_phase_says_from_when_the_setting_stops_applying() -> None:
    phases = {"phases": [{"start": 0}, {"start": 500, "name": "late", "learning_rate": 1e-5}]}
    with pytest.raises(ConfigError) as err:
        load_config(None, {"training.curriculum": phases, "training.learning_rate": 1e-4})
    assert "phases[1].learning_rate (phase 'late') from timestep 500" in str(err.value)
    assert "stop applying at that timestep" in str(err.value)
    # left at its default, the base rate is in force until the phase and nothing is refused
    cfg = load_config(None, {"training.curriculum": phases})
    assert cfg.training.learning_rate == 3e-3  # the default backend's (fused)


def test_a_curriculum_config_is_written_without_what_its_phases_set_and_reloads_equal(
    tmp_path: Path,
) -> None:
    cfg = load_config(PHASE2)
    dumped = yaml.safe_load(dump_config(cfg))
    assert "learning_rate" not in dumped["training"] and "ent_coef" not in dumped["training"]
    assert "drawdown_cap" not in dumped["env"]
    assert dumped["training"]["clip_range"] == 0.2  # what the phases do not set stays
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg
    # without a curriculum every setting is written
    plain = yaml.safe_load(dump_config(load_config(None)))
    assert plain["training"]["learning_rate"] == 3e-3 and plain["env"]["drawdown_cap"] == 0.02


def test_the_shipped_tuning_base_has_no_curriculum_to_replace_its_axes() -> None:
    cfg = load_config(CONFIG_DIR / "tuning" / "base.yaml")
    assert cfg.training.curriculum.phases == ()
    assert shadows(cfg.training.curriculum) == {}
    # the rest of phase 2 is inherited
    phase2 = load_config(PHASE2)
    assert cfg.reward == phase2.reward and cfg.market == phase2.market
