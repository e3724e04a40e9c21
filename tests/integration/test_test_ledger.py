"""``stairways evaluate`` counts every look at the test split: ledger, manifest, metrics, output.

The default run covers the same wiring through ``stairways demo`` (tests/integration/test_demo.py);
this test adds the validation case and the manifest and metrics records, at the cost of its own
training run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stairways.config import load_config
from stairways.data import ledger
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from tests.cli_helpers import stairways

TINY = {
    "name": "tinyledger",
    "data": {
        "splits": {
            "train": {"start": "2024-01-03", "end": "2024-01-10"},
            "validation": {"start": "2024-01-11", "end": "2024-01-12"},
            "test": {"start": "2024-01-16", "end": "2024-01-17"},
        },
        "synthetic": {"start": "2024-01-02", "end": "2024-01-17"},
    },
    "training": {
        "total_timesteps": 256,
        "n_envs": 2,
        "n_steps": 128,
        "batch_size": 128,
        "checkpoint_every": 256,
        "tensorboard": False,
    },
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config, run directory) of a 256-step run on a tiny synthetic store."""
    from stairways.training.trainer import train

    root = tmp_path_factory.mktemp("ledger_run")
    data = json.loads(json.dumps(TINY))
    data["data"]["store_path"] = str(root / "bars.duckdb")
    data["training"]["runs_dir"] = str(root / "runs")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(data))
    cfg = load_config(config)
    with BarStore(cfg.data.store_path) as store:
        store.write_bars(
            generate(cfg.data.synthetic, cfg.data.symbols),
            source="synthetic",
            synthetic=True,
            details=generator_details(cfg.data.synthetic),
        )
    result = train(cfg)
    assert result.status == "completed"
    return config, result.run_dir


@pytest.mark.slow
def test_evaluate_counts_looks_at_test_and_not_at_validation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tiny_run: tuple[Path, Path]
) -> None:
    config, run = tiny_run
    cfg = load_config(config)
    path = ledger.ledger_path(cfg.data.store_path)

    assert stairways(monkeypatch, "evaluate", run, "--split", "validation") in (0, 3)
    out = capsys.readouterr().out
    assert (
        "held-out test: the test split (2024-01-16..2024-01-17) has been looked at 0 times" in out
    )
    assert "this evaluation did not touch it" in out
    assert not path.exists()

    for number in (1, 2):
        assert stairways(monkeypatch, "evaluate", run) in (0, 3)  # the default split is test
        out = capsys.readouterr().out
        times = "once" if number == 1 else "2 times"
        assert f"has been looked at {times}; this evaluation is look {number}" in out

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["split"], x["run"], x["checkpoint"], x["look"]) for x in lines] == [
        ("test", str(run), "final", 1),
        ("test", str(run), "final", 2),
    ]
    assert lines[0]["fingerprint"] == lines[1]["fingerprint"]  # the same bars both times
    assert "evaluate" in lines[0]["command"]

    manifest = json.loads((run / "manifest.json").read_text())
    assert [
        (x["split"], x["this_look"], x["looks"], x["checkpoint"]) for x in manifest["test_looks"]
    ] == [
        ("test", 1, 1, "final"),
        ("test", 2, 2, "final"),
    ]
    metrics = json.loads((run / "eval" / "test" / "final" / "metrics.json").read_text())
    assert metrics["test_looks"][0]["looks"] == 2 and metrics["test_looks"][0]["this_look"] == 2
    assert not (run / "run.lock").exists()  # the manifest update released the run lock
