"""``stairways seeds`` and ``stairways validate temporal`` end to end on the tiny store (slow)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from stairways.evaluation.gates import GATES_FAILED_EXIT_CODE
from tests.integration.test_evaluate_cli import make_store, stairways, write_tiny_config

pytestmark = pytest.mark.slow


def test_seeds_trains_each_seed_in_a_worker_and_writes_stats_plot_and_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write_tiny_config(tmp_path)
    make_store(config)
    out = tmp_path / "sweep"
    code = stairways(
        monkeypatch,
        "seeds",
        "--config",
        config,
        "--seeds",
        "0",
        "1",
        "--total-timesteps",
        "256",
        "--splits",
        "test",
        "train",
        "--out",
        out,
    )
    text = capsys.readouterr()
    assert code in (0, GATES_FAILED_EXIT_CODE), text.err
    rows = list(csv.DictReader((out / "seed_comparison_stats.csv").open()))
    assert [(r["row"], r["split"]) for r in rows] == [
        ("seed", "test"),
        ("seed", "test"),
        ("seed", "train"),
        ("seed", "train"),
        ("mean", "test"),
        ("std", "test"),
        ("mean", "train"),
        ("std", "train"),
        ("verdict", "test"),
    ]
    assert {r["seed"] for r in rows[:4]} == {"0", "1"}
    # Different seeds train different agents: the metric differs between them.
    assert rows[0]["episode_reward_mean"] != rows[1]["episode_reward_mean"]
    assert (out / "seed_comparison.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "seed_sweep.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["total_timesteps"] == 256
    assert summary["backend"] == "local"
    verdict = summary["verdict"]
    assert verdict["metric"] == "mean_daily_pnl" and verdict["threshold"] == 0.0
    assert verdict["ci_low"] <= verdict["mean"] <= verdict["ci_high"]
    assert "mean daily net P&L" in text.out and "daily [" in text.out
    passed = verdict["passed"]
    assert code == (0 if passed else GATES_FAILED_EXIT_CODE)
    for o in summary["outcomes"]:
        assert (Path(o["run_dir"]) / "eval" / "test" / "final" / "traces.parquet").is_file()
        assert (Path(o["run_dir"]) / "eval" / "train" / "final" / "traces.parquet").is_file()


def test_validate_temporal_trains_each_pair_on_its_past_and_reports_gates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write_tiny_config(tmp_path)
    make_store(config)
    data = yaml.safe_load(config.read_text())
    data["evaluation"] = {
        "temporal": {
            "early": {
                "train": {"start": "2024-01-03", "end": "2024-01-09"},
                "test": {"start": "2024-01-10", "end": "2024-01-12"},
            },
            "late": {
                "train": {"start": "2024-01-08", "end": "2024-01-12"},
                "test": {"start": "2024-01-16", "end": "2024-01-19"},
            },
        },
        "temporal_primary": "late",
        # a few test sessions: the plan's gates lowered, the bootstrap and reward gates off
        "gates": {
            "min_sharpe": -1000.0,
            "min_episode_reward_mean": -1e6,
            "significance": False,
            "excess": False,
            "min_earned_reward_mean": None,
            "max_reward_pnl_disagreement": None,
        },
    }
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "temporal"
    code = stairways(
        monkeypatch,
        "validate",
        "temporal",
        "--config",
        config,
        "--total-timesteps",
        "256",
        "--out",
        out,
    )
    text = capsys.readouterr()
    assert code == 0, text.err
    rows = list(csv.DictReader((out / "temporal_validation.csv").open()))
    assert [r["pair"] for r in rows] == ["late", "early"]
    assert rows[0]["test"] == "2024-01-16..2024-01-19"
    assert all(r["gates_passed"] == "PASS" for r in rows)
    # Each pair's run fitted its normaliser on its own training range only.
    for r in rows:
        norm = json.loads((Path(r["run_dir"]) / "normaliser.json").read_text())
        assert norm["start"] >= r["train"].split("..")[0]
        assert norm["end"] <= r["train"].split("..")[1]
    assert "late" in text.out and "PASS" in text.out


def test_seeds_run_as_tasks_on_a_private_ray_head_with_the_tuners_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write_tiny_config(tmp_path)
    make_store(config)
    out = tmp_path / "sweep_ray"
    code = stairways(
        monkeypatch,
        "seeds",
        "--config",
        config,
        "--seeds",
        "0",
        "1",
        "--total-timesteps",
        "256",
        "--splits",
        "test",
        "--out",
        out,
        "--backend",
        "ray",
        "--workers",
        "2",
    )
    text = capsys.readouterr()
    assert code in (0, GATES_FAILED_EXIT_CODE), text.err
    summary = json.loads((out / "seed_sweep.json").read_text())
    assert summary["backend"] == "ray"
    assert sorted(int(o["key"].split()[-1]) for o in summary["outcomes"]) == [0, 1]
    for o in summary["outcomes"]:
        assert (Path(o["run_dir"]) / "eval" / "test" / "final" / "gates.json").is_file()


def test_address_without_ray_is_refused_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = stairways(monkeypatch, "seeds", "--address", "127.0.0.1:1", "--out", tmp_path / "x")
    assert code == 2
    assert "--address only applies to --backend ray" in capsys.readouterr().err
