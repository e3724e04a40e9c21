from datetime import date

import pytest

from stairways.config import CONFIG_DIR, load_config

SHIPPED = [
    "reward_v3.yaml",
    "reward_internal.yaml",
    "reward_shim.yaml",
    "curriculum/phase2_oos.yaml",
]


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_reward_config_loads(name: str) -> None:
    cfg = load_config(CONFIG_DIR / name)
    assert cfg.reward.name in ("v3", "refined")


def test_reward_v3_yaml_selects_v3_inside_the_env() -> None:
    cfg = load_config(CONFIG_DIR / "reward_v3.yaml")
    assert (cfg.reward.name, cfg.reward.mode) == ("v3", "internal")


def test_shim_and_internal_files_differ_only_in_mode_and_name() -> None:
    internal = load_config(CONFIG_DIR / "reward_internal.yaml")
    shim = load_config(CONFIG_DIR / "reward_shim.yaml")
    assert (internal.reward.mode, shim.reward.mode) == ("internal", "shim")
    assert internal.reward.refined == shim.reward.refined
    assert internal.model_dump(exclude={"name", "reward"}) == shim.model_dump(
        exclude={"name", "reward"}
    )


def test_phase2_oos_sets_the_tax_bonuses_and_the_splits() -> None:
    cfg = load_config(CONFIG_DIR / "curriculum" / "phase2_oos.yaml")
    r = cfg.reward.refined
    assert cfg.reward.name == "refined"
    assert (r.early_exit_tax, r.min_episode_length) == (5.0, 75)
    assert (r.time_bonus, r.time_bonus_start) == (0.015, 65)
    assert (r.completion_bonus, r.completion_threshold) == (1.5, 85)
    train, test = cfg.data.splits["train"], cfg.data.splits["test"]
    assert (train.start.year, train.end.year) == (2022, 2023)
    assert (test.start, test.end) == (date(2024, 1, 2), date(2024, 12, 31))
    assert "test" in cfg.data.protected_splits
