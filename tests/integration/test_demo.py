"""The main job end to end on a tiny synthetic market, through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

STAIRWAYS = str(Path(sys.executable).with_name("stairways"))


def _tiny_config(tmp_path: Path) -> Path:
    cfg = {
        "name": "tinydemo",
        "data": {
            # Relative, and the demo runs in tmp_path: every stage (the notebook kernel too)
            # must resolve it against the user's working directory.
            "store_path": "bars.duckdb",
            "splits": {
                "train": {"start": "2022-01-05", "end": "2022-01-25"},
                "validation": {"start": "2022-01-26", "end": "2022-01-31"},
                "test": {"start": "2022-02-01", "end": "2022-02-28"},
            },
            "protected_splits": ["test"],
            "synthetic": {"start": "2022-01-03", "end": "2022-02-28"},
        },
        "training": {
            "total_timesteps": 2048,
            "n_steps": 128,
            "n_envs": 4,
            "batch_size": 64,
            "checkpoint_every": 1024,
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_demo_runs_every_stage_and_writes_a_summary_naming_each_output(tmp_path: Path) -> None:
    config = _tiny_config(tmp_path)
    out = tmp_path / "out"
    cmd = [STAIRWAYS, "demo", "--config", str(config), "--out", str(out)]
    first = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    for section in (
        "Market data",
        "Features and splits",
        "Training",
        "Out-of-sample evaluation",
        "Action traces",
        "Live loop rehearsal",
    ):
        assert f"## {section}" in summary
    assert "SYNTHETIC" in summary
    # the rehearsed session through the live loop equals the replay evaluation
    assert "live loop vs replay evaluation on 2022-02-01: EQUAL" in summary
    assert (out / "live" / "rehearsals.sqlite").is_file()
    assert "data: SYNTHETIC" in summary.split("## Out-of-sample evaluation")[1]
    assert "generated the synthetic market" in summary
    assert (tmp_path / "bars.duckdb").is_file()
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert (run / "manifest.json").is_file() and (run / "monitor.csv").is_file()
    traces = list((run / "eval" / "test").glob("*/traces.parquet"))
    assert len(traces) == 1
    # The traces are development work: they replay validation, never the test year.
    assert (run / "analysis" / "action_traces_validation.html").is_file()
    assert "split 'validation'" in summary.split("## Action traces")[1]
    ledger = tmp_path / "bars.test_ledger.jsonl"
    assert len(ledger.read_text().splitlines()) == 1
    assert (
        "test ledger: the test split (2022-02-01..2022-02-28) has been looked at once; this "
        "evaluation is look 1 (ledger bars.test_ledger.jsonl)"
    ) in summary
    manifest = json.loads((run / "manifest.json").read_text())
    assert [(x["split"], x["this_look"]) for x in manifest["test_looks"]] == [("test", 1)]
    # The verdict line is honest either way and matches gates.json.
    gates = yaml.safe_load((traces[0].parent / "gates.json").read_text())
    passed = "all success gates PASSED" in summary
    assert passed == bool(gates["passed"])

    # A second run reuses the stored market and creates a second run directory.
    second = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert second.returncode == 0, second.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    assert "reused the bars already in the store" in summary
    assert len(list((out / "runs").iterdir())) == 2
    # Every demo's verdict is another look at the same test year, and says so.
    assert "has been looked at 2 times; this evaluation is look 2" in summary
    assert len(ledger.read_text().splitlines()) == 2


def test_demo_with_an_unknown_config_key_exits_2_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  total_timestep: 10\n")
    done = subprocess.run(
        [STAIRWAYS, "demo", "--config", str(bad), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "training.total_timestep" in done.stderr
