"""``stairways diagnose`` input checks that need no training (fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import stairways
from tests.integration.diagnostics_helpers import tiny_suite_config


def test_unknown_part_exits_2_naming_the_allowed_parts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = stairways(monkeypatch, "diagnose", "--parts", "freeze,oracle", "--out", tmp_path / "o")
    assert code == 2
    assert "freeze, abc, leakage" in capsys.readouterr().err


def test_resume_without_earlier_results_exits_1_naming_the_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tiny_suite_config(tmp_path, tmp_path / "unused.duckdb")
    out = tmp_path / "never_ran"
    code = stairways(monkeypatch, "diagnose", "--config", config, "--out", out, "--resume")
    assert code == 1
    assert f"nothing to resume: {out}" in capsys.readouterr().err


def test_split_missing_from_the_data_config_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tiny_suite_config(tmp_path, tmp_path / "unused.duckdb")
    config.write_text(config.read_text() + "  eval_split: eval_mar2031\n")
    code = stairways(monkeypatch, "diagnose", "--config", config, "--out", tmp_path / "o")
    assert code == 2
    assert "eval_mar2031" in capsys.readouterr().err


def test_bad_threshold_in_the_config_exits_2_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tiny_suite_config(tmp_path, tmp_path / "unused.duckdb")
    config.write_text(
        config.read_text().replace("in_sample_max_sessions: 5", "in_sample_max_sessions: 0")
    )
    code = stairways(monkeypatch, "diagnose", "--config", config, "--out", tmp_path / "o")
    assert code == 2
    assert "diagnostics.freeze.in_sample_max_sessions" in capsys.readouterr().err
