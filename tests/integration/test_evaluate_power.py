"""``stairways validate power`` end to end: a quick study and a rule-only calibration (slow)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import stairways

pytestmark = pytest.mark.slow


def _config(root: Path) -> Path:
    """Short splits (two months of training, two of validation) and a small bootstrap."""
    data = {
        "name": "tinypower",
        "data": {
            "splits": {
                "train": {"start": "2022-01-03", "end": "2022-02-28"},
                "validation": {"start": "2022-03-01", "end": "2022-04-29"},
                "test": {"start": "2024-01-02", "end": "2024-12-31"},
            }
        },
        "training": {"runs_dir": str(root / "runs"), "tensorboard": False},
        "evaluation": {
            "bootstrap_resamples": 1000,
            "power": {
                "strengths": [0.0, 1.0],
                "market_seeds": [7, 8],
                "training_seeds": [0, 1],
                "null_market_seeds": [7, 8],
                "null_training_seeds": [0, 1],
                "null_arms": [],
            },
        },
    }
    path = root / "tinypower.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_quick_study_trains_at_strength_zero_and_the_strongest_and_writes_every_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "power"
    code = stairways(
        monkeypatch, "validate", "power", "--config", _config(tmp_path), "--quick", "--out", out
    )
    printed = capsys.readouterr()
    summary = json.loads((out / "power.json").read_text())
    assert code == (0 if summary["passed"] else 3), printed.err
    assert summary["settings"]["strengths"] == [0.0, 1.0]
    assert (
        summary["settings"]["market_seeds"] == [7]
        and summary["settings"]["total_timesteps"] == 2000
    )
    runs = list(csv.DictReader((out / "power_runs.csv").open()))
    assert [(r["strength"], r["market_seed"], r["training_seed"]) for r in runs] == [
        ("0.0", "7", "0"),
        ("1.0", "7", "0"),
    ]
    assert {"significance", "excess_over_baselines", "all_gates"} <= set(runs[0])
    for r in runs:
        assert (Path(r["run_dir"]) / "eval" / "validation" / "final" / "gates.json").is_file()
        assert not (Path(r["run_dir"]) / "eval" / "test").exists()  # the test year is untouched
    markets = sorted(p.name for p in (out / "markets").glob("*.duckdb"))
    assert markets == ["strength0_seed7.duckdb", "strength1_seed7.duckdb"]
    md = (out / "power.md").read_text()
    assert md.startswith("# Power study: tinypower")
    assert "False-positive rate, default: " in md and "exact one-sided 95% upper bound" in md
    assert "| signal strength | training config | runs | all gates pass |" in printed.out
    # the same command again resumes: nothing left to run, the same tables
    before = (out / "power_runs.csv").read_text()
    again = stairways(
        monkeypatch, "validate", "power", "--config", _config(tmp_path), "--quick", "--out", out
    )
    assert again == code, capsys.readouterr().err
    assert (out / "power_runs.csv").read_text() == before
    # --progress reads the finished study; --from-record renders its README block
    args = ("validate", "power", "--config", _config(tmp_path), "--quick", "--out", out)
    assert stairways(monkeypatch, *args, "--progress") == 0
    assert "2 of 2 runs finished" in capsys.readouterr().out
    readme = tmp_path / "README.md"
    readme.write_text("<!-- power-table:begin -->\n<!-- power-table:end -->\n")
    rendered = stairways(
        monkeypatch,
        "validate",
        "power",
        "--from-record",
        out / "power.json",
        "--readme",
        readme,
    )
    assert rendered == 0, capsys.readouterr().err
    assert "False-positive rate, default: " in readme.read_text()
    assert "| 1 | default | 1 |" in readme.read_text()
    # the baselines never pass every gate, on either market
    assert all(not any(m["baselines_passed"].values()) for m in summary["markets"])


def test_rule_only_calibration_measures_the_rule_without_training(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "calib"
    code = stairways(
        monkeypatch,
        "validate",
        "power",
        "--config",
        _config(tmp_path),
        "--rule-only",
        "--strengths",
        "0,2",
        "--market-seeds",
        "7",
        "--null-market-seeds",
        "7",
        "--out",
        out,
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "power.json").read_text())
    assert summary["rule_only"] is True and summary["runs"] == []
    assert not (out / "runs").exists()
    zero, strong = summary["summaries"]
    assert zero["rule_mean_daily_pnl"] == 0.0  # no signal: the rule never trades
    assert strong["rule_mean_daily_pnl"] > 0.0 and strong["rule_daily_sharpe"] > 3.0


def test_bad_grids_exit_2_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ("validate", "power", "--config", _config(tmp_path), "--out", tmp_path / "x")
    assert stairways(monkeypatch, *args, "--strengths", "0.5,1") == 2
    assert "must include 0" in capsys.readouterr().err
    assert stairways(monkeypatch, *args, "--market-seeds", "a,b") == 2
    assert "--market-seeds must be comma-separated whole numbers" in capsys.readouterr().err
    assert stairways(monkeypatch, *args, "--split", "test") == 2
    assert "protected split 'test'" in capsys.readouterr().err
