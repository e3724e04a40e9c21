"""``stairways config list`` and ``stairways config copy``: the shipped configs, where you work."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways import resources
from stairways.config import load_config
from tests.cli_helpers import stairways


def test_list_names_every_shipped_config_and_the_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stairways(monkeypatch, "config", "list") == 0
    out = capsys.readouterr().out
    assert str(resources.config_dir()) in out
    for name in resources.shipped_config_names():
        assert f"  {name}\n" in out


def test_copy_into_the_working_directory_makes_the_readme_commands_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert stairways(monkeypatch, "config", "copy") == 0
    total = len(resources.shipped_config_names())
    assert f"copied {total} of {total} shipped configs into config" in capsys.readouterr().out
    assert load_config(Path("config/curriculum/phase2_oos.yaml")).name == "phase2_oos"


def test_copy_over_an_edited_file_exits_2_naming_it_and_force_replaces_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dest = tmp_path / "mine"
    assert stairways(monkeypatch, "config", "copy", dest) == 0
    edited = dest / "tuning" / "mini_grid.yaml"
    edited.write_text(edited.read_text() + "# tried a wider grid\n")
    capsys.readouterr()
    assert stairways(monkeypatch, "config", "copy", dest) == 2
    err = capsys.readouterr().err
    assert str(edited) in err and "--force" in err
    assert edited.read_text().endswith("# tried a wider grid\n")
    assert stairways(monkeypatch, "config", "copy", dest, "--force") == 0
    assert "copied 1 of" in capsys.readouterr().out
