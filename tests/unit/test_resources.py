"""Shipped files: the package reads its own configs and notebook, never the source tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways import resources
from stairways.config import load_config
from stairways.errors import InputError
from tests.paths import CHECKOUT_CONFIG_DIR, REPO_ROOT


def test_every_config_of_the_checkout_is_shipped_with_the_same_content() -> None:
    checkout = sorted(
        p.relative_to(CHECKOUT_CONFIG_DIR).as_posix() for p in CHECKOUT_CONFIG_DIR.rglob("*.yaml")
    )
    assert resources.shipped_config_names() == checkout
    for name in checkout:
        shipped = resources.shipped_config(name).read_bytes()
        assert shipped == (CHECKOUT_CONFIG_DIR / name).read_bytes()


def test_the_trace_notebook_is_shipped() -> None:
    path = resources.notebook("action_trace_analysis.ipynb")
    assert path.read_bytes() == (REPO_ROOT / "notebooks" / path.name).read_bytes()


def test_an_unknown_shipped_config_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"reward_v3\.yaml"):
        resources.shipped_config("reward_v9")


def test_shipped_config_accepts_a_name_without_suffix() -> None:
    assert resources.shipped_config("curriculum/phase2_oos").name == "phase2_oos.yaml"


def test_an_editable_checkout_is_recognised_as_the_source_of_provenance() -> None:
    assert resources.source_checkout() == REPO_ROOT


def test_copied_configs_load_and_extend_each_other_from_the_copy(tmp_path: Path) -> None:
    dest = tmp_path / "config"
    written = resources.copy_configs(dest)
    assert len(written) == len(resources.shipped_config_names())
    cfg = load_config(dest / "tuning" / "base.yaml")  # extends ../curriculum/phase2_oos.yaml
    assert cfg.name == "tuning_base"
    assert cfg.reward == load_config(dest / "curriculum/phase2_oos.yaml").reward


def test_copying_again_writes_nothing_and_refuses_to_clobber_an_edit(tmp_path: Path) -> None:
    dest = tmp_path / "config"
    resources.copy_configs(dest)
    assert resources.copy_configs(dest) == []
    edited = dest / "reward_v3.yaml"
    edited.write_text(edited.read_text() + "# my change\n")
    with pytest.raises(InputError, match=r"reward_v3\.yaml.*--force"):
        resources.copy_configs(dest)
    assert edited.read_text().endswith("# my change\n")
    assert resources.copy_configs(dest, overwrite=True) == [edited]
    assert edited.read_bytes() == resources.shipped_config("reward_v3").read_bytes()
