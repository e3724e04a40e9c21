"""File names inside a config are taken from the folder of the file that writes them."""

from __future__ import annotations

import shutil
from pathlib import Path

from stairways import resources
from stairways.config import StairwaysConfig, load_config
from stairways.configbase import config_file_references


def test_the_reward_arms_and_the_power_null_arms_are_the_config_file_references() -> None:
    assert sorted(config_file_references(StairwaysConfig)) == [
        ("diagnostics", "abc", "arms", "[]", "config"),
        ("evaluation", "power", "null_arms", "[]", "config"),
    ]


def test_a_copied_power_study_reads_its_null_arm_config_beside_it(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    (folder / "curriculum").mkdir(parents=True)
    shutil.copyfile(resources.shipped_config("power"), folder / "power.yaml")
    shutil.copyfile(
        resources.shipped_config("curriculum/phase2_oos"), folder / "curriculum/phase2_oos.yaml"
    )
    cfg = load_config(folder / "power.yaml")
    assert [a.config for a in cfg.evaluation.power.null_arms] == [
        folder / "curriculum" / "phase2_oos.yaml"
    ]


def test_a_copied_suite_reads_the_reward_configs_beside_it(tmp_path: Path) -> None:
    # Copy the diagnostics suite and its reward configs elsewhere, then change the copy: the
    # arms must name the copies, not the shipped files.
    folder = tmp_path / "my_configs"
    folder.mkdir()
    for name in ("diagnostics", "reward_v3", "reward_shim", "reward_internal"):
        shutil.copyfile(resources.shipped_config(name), folder / f"{name}.yaml")
    cfg = load_config(folder / "diagnostics.yaml")
    assert [a.config for a in cfg.diagnostics.abc.arms] == [
        folder / "reward_v3.yaml",
        folder / "reward_shim.yaml",
        folder / "reward_internal.yaml",
    ]


def test_a_reference_written_by_a_parent_file_is_taken_from_the_parent_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "rewards").mkdir()
    (tmp_path / "child").mkdir()
    (tmp_path / "base.yaml").write_text(
        "diagnostics:\n  abc:\n    arms:\n"
        "      - {name: a, config: rewards/a.yaml}\n"
        "      - {name: b, config: rewards/b.yaml}\n"
        "    shim: a\n    internal: b\n"
    )
    (tmp_path / "child" / "suite.yaml").write_text("extends: ../base.yaml\nname: suite\n")
    cfg = load_config(tmp_path / "child" / "suite.yaml")
    assert [a.config for a in cfg.diagnostics.abc.arms] == [
        tmp_path / "rewards" / "a.yaml",
        tmp_path / "rewards" / "b.yaml",
    ]


def test_absolute_references_and_overrides_are_left_as_given(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere" / "r.yaml"
    (tmp_path / "suite.yaml").write_text(
        "diagnostics:\n  abc:\n    arms:\n"
        f"      - {{name: a, config: {absolute}}}\n"
        "      - {name: b, config: b.yaml}\n"
        "    shim: a\n    internal: b\n"
    )
    cfg = load_config(tmp_path / "suite.yaml")
    assert cfg.diagnostics.abc.arms[0].config == absolute
    assert cfg.diagnostics.abc.arms[1].config == tmp_path / "b.yaml"


def test_the_default_arms_are_the_shipped_reward_configs() -> None:
    arms = load_config(None).diagnostics.abc.arms
    assert [a.config for a in arms] == [
        resources.shipped_config(n) for n in ("reward_v3", "reward_shim", "reward_internal")
    ]
