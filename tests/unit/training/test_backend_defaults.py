"""The default backend and the settings that default per backend, resolved when a config loads."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from stairways.bench.train_bench import backend_configs, settings_text
from stairways.config import CONFIG_DIR, dump_config, load_config
from stairways.errors import ConfigError
from stairways.training.settings import (
    BACKEND_DEFAULTS,
    BACKEND_SETTINGS,
    DEFAULT_BACKEND,
    SB3_SETTINGS,
    THROUGHPUT_SETTINGS,
    TrainingConfig,
    backend_settings,
)
from stairways.tuning.space import load_space, trial_config

SB3 = {"n_envs": 8, "n_steps": 128, "batch_size": 256, "n_epochs": 10, "learning_rate": 3e-4}
FUSED = {"n_envs": 64, "n_steps": 16, "batch_size": 1024, "n_epochs": 2, "learning_rate": 3e-3}


def test_the_default_backend_is_fused() -> None:
    # Pinned: fused became the default once `stairways bench learning` showed it learns what
    # SB3 learns (README, "Training backends"); going back needs that measured again.
    assert DEFAULT_BACKEND == "fused"
    assert TrainingConfig().backend == "fused"
    assert load_config(None).training.backend == "fused"


def test_each_backends_defaults_are_pinned() -> None:
    # sb3's are the values every sb3 run before the switch used; fused's are the throughput
    # settings bench train, bench learning and the power study were measured with.
    assert dict(SB3_SETTINGS) == SB3
    assert dict(THROUGHPUT_SETTINGS) == FUSED
    assert dict(BACKEND_DEFAULTS) == {"sb3": SB3_SETTINGS, "fused": THROUGHPUT_SETTINGS}
    assert BACKEND_SETTINGS == ("n_envs", "n_steps", "batch_size", "n_epochs", "learning_rate")
    assert backend_settings(TrainingConfig()) == FUSED
    assert backend_settings(TrainingConfig(backend="sb3")) == SB3


GIVEN = {"n_envs": 128, "n_steps": 256, "batch_size": 64, "n_epochs": 3, "learning_rate": 1e-3}
SUBSETS = [
    c for r in range(len(BACKEND_SETTINGS) + 1) for c in itertools.combinations(BACKEND_SETTINGS, r)
]


@pytest.mark.parametrize("backend", ["sb3", "fused", None])
@pytest.mark.parametrize("keys", SUBSETS, ids=lambda k: "+".join(k) or "none")
def test_a_given_value_is_kept_and_an_unset_one_takes_its_backends_default(
    backend: str | None, keys: tuple[str, ...]
) -> None:
    data: dict[str, object] = {k: GIVEN[k] for k in keys}
    if backend is not None:
        data["backend"] = backend
    tc = TrainingConfig.model_validate(data)
    defaults = BACKEND_DEFAULTS[backend or DEFAULT_BACKEND]
    assert backend_settings(tc) == {k: GIVEN[k] if k in keys else defaults[k] for k in defaults}
    # a default is not a given value (the curriculum's one-place-per-value rule reads this)
    assert set(BACKEND_SETTINGS) & tc.model_fields_set == set(keys)


def test_the_recorded_config_holds_the_resolved_values_and_reloads_to_the_same(
    tmp_path: Path,
) -> None:
    cfg = load_config(None)
    recorded = yaml.safe_load(dump_config(cfg))["training"]
    assert {k: recorded[k] for k in BACKEND_SETTINGS} == FUSED
    assert recorded["backend"] == "fused"
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path).training == cfg.training
    # the record says which values ran: switching the backend of a recorded config keeps them
    switched = load_config(path, {"training.backend": "sb3"})
    assert backend_settings(switched.training) == FUSED


def test_a_rollout_too_small_for_a_defaulted_batch_names_the_defaults() -> None:
    with pytest.raises(ValidationError, match=r"1024 exceeds .* 16 \* 8 = 128 .*n_steps, "):
        TrainingConfig(n_envs=8)
    with pytest.raises(ConfigError, match=r"the fused backend's default; set them together"):
        load_config(None, {"training.n_envs": 8})
    assert TrainingConfig(backend="sb3", n_envs=8).rollout_size == 1024


def test_recurrent_ppo_and_a_gpu_under_the_default_backend_are_refused_naming_sb3() -> None:
    with pytest.raises(ValidationError, match=r"'fused' \(the default\).*backend: sb3"):
        TrainingConfig(algo="recurrent_ppo")
    with pytest.raises(ValidationError, match=r"'fused' \(the default\) runs on the CPU"):
        TrainingConfig(device="cuda")
    with pytest.raises(ValidationError, match=r"'fused' trains algo"):
        TrainingConfig(backend="fused", algo="recurrent_ppo")
    assert TrainingConfig(backend="sb3", algo="recurrent_ppo").n_envs == 8


def test_shipped_configs_under_the_switch() -> None:
    # reward_v3.yaml names fused and leaves the five settings to the backend
    v3 = load_config(CONFIG_DIR / "reward_v3.yaml")
    assert v3.training.backend == "fused" and backend_settings(v3.training) == FUSED
    v3_sb3 = load_config(CONFIG_DIR / "reward_v3.yaml", {"training.backend": "sb3"})
    assert backend_settings(v3_sb3.training) == SB3
    # phase2_oos (and the tuning base extending it) keep SB3: its phases' learning rates are
    # SB3's; the phases' learning rate is not refused as set twice
    for name in ("curriculum/phase2_oos.yaml", "tuning/base.yaml"):
        cfg = load_config(CONFIG_DIR / name)
        assert cfg.training.backend == "sb3", name
        assert backend_settings(cfg.training) == SB3, name
    assert load_config(CONFIG_DIR / "power.yaml").training.backend == "fused"
    # a curriculum that sets the learning rate under the fused default loads too
    cfg = load_config(CONFIG_DIR / "curriculum/phase2_oos.yaml", {"training.backend": "fused"})
    assert backend_settings(cfg.training) == FUSED
    assert "learning_rate" not in yaml.safe_load(dump_config(cfg))["training"]


def test_a_search_axis_over_a_backend_setting_keeps_the_other_defaults() -> None:
    space = load_space(CONFIG_DIR / "tuning" / "mini_grid.yaml")
    assert "training.learning_rate" in space.parameters
    cfg = trial_config(CONFIG_DIR / "tuning" / "base.yaml", {}, {"training.learning_rate": 7e-5})
    assert backend_settings(cfg.training) == {**SB3, "learning_rate": 7e-5}
    on_default = trial_config(None, {}, {"training.n_epochs": 4, "training.learning_rate": 1e-3})
    assert backend_settings(on_default.training) == {
        **FUSED,
        "n_epochs": 4,
        "learning_rate": 1e-3,
    }


def test_bench_configs_give_each_backend_its_defaults(tmp_path: Path) -> None:
    sb3, fused = backend_configs(None)
    assert (sb3.training.backend, fused.training.backend) == ("sb3", "fused")
    assert backend_settings(sb3.training) == SB3
    assert backend_settings(fused.training) == FUSED
    assert settings_text(fused) == (
        "n_envs 64, n_steps 16, batch_size 1024, n_epochs 2, learning_rate 0.003"
    )
    # a config naming sb3 still gets fused at fused's defaults, and the reverse
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"training": {"backend": "sb3", "n_epochs": 4}}))
    sb3, fused = backend_configs(path)
    assert backend_settings(sb3.training) == {**SB3, "n_epochs": 4}
    assert backend_settings(fused.training) == {**FUSED, "n_epochs": 4}
    _, same = backend_configs(path, same_hyperparameters=True)
    assert same.training.backend == "fused"
    assert backend_settings(same.training) == {**SB3, "n_epochs": 4}
    # a curriculum's learning rate is not passed twice: the phases set it for both
    _, same = backend_configs(CONFIG_DIR / "curriculum/phase2_oos.yaml", same_hyperparameters=True)
    assert backend_settings(same.training) == {**SB3, "learning_rate": 3e-3}
    assert same.training.curriculum.phases[0].learning_rate == 1e-4
