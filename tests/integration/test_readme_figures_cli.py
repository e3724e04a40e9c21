"""``stairways readme-figures`` end to end on a tiny market: figures, block, README, record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stairways import readme_figures as rf
from tests.cli_helpers import stairways

TINY = {
    "name": "tinyfigures",
    "data": {
        "splits": {
            "train": {"start": "2022-01-05", "end": "2022-01-21"},
            "validation": {"start": "2022-01-24", "end": "2022-01-28"},
            "test": {"start": "2022-01-31", "end": "2022-02-04"},
        },
        "synthetic": {"start": "2022-01-03", "end": "2022-02-04"},
    },
    "training": {
        "total_timesteps": 256,
        "n_steps": 128,
        "n_envs": 2,
        "batch_size": 128,
        "checkpoint_every": 256,
        "tensorboard": False,
    },
}


@pytest.mark.slow
def test_readme_figures_measures_both_markets_and_rewrites_only_the_block(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\nbefore\n<!-- readme-figures:begin (generated) -->\nold figures\n"
        "<!-- readme-figures:end -->\nafter\n"
    )
    record = tmp_path / "docs" / "figures.json"
    out = tmp_path / "out"
    args = ["readme-figures", "--config", config, "--seed", "0", "--seed", "1", "--out", out]
    code = stairways(monkeypatch, *args, "--readme", readme, "--record", record)
    assert code == 0, capsys.readouterr().err
    report = rf.FiguresReport.from_json(record.read_text())
    assert [(r.market, r.seed) for r in report.runs] == [
        ("signal_on", 0),
        ("signal_on", 1),
        ("signal_off", 0),
        ("signal_off", 1),
    ]
    assert [m.signal_strength for m in report.markets] == [1.0, 0.0]
    assert report.markets[0].sessions == 24 and report.markets[0].bars == 2 * 24 * 390
    # Each market's test year was looked at once per seed, and its own ledger says so.
    assert [r.test_looks for r in report.runs] == [1, 2, 1, 2]
    ledger = out / "markets" / "signal_off.test_ledger.jsonl"
    assert len(ledger.read_text().splitlines()) == 2
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n<!-- readme-figures:begin (generated) -->\n")
    assert text.endswith("<!-- readme-figures:end -->\nafter\n")
    assert "old figures" not in text
    assert rf.marked_block(text, rf.BLOCK_NAME) == rf.render_block(report)
    assert (out / rf.BLOCK_FILE).read_text() == rf.render_block(report)
    assert json.loads((out / rf.FIGURES_FILE).read_text()) == json.loads(record.read_text())

    # A second measurement in the same folder reuses the markets and counts two more looks.
    capsys.readouterr()
    once = ["readme-figures", "--config", config, "--seed", "0", "--out", out]
    assert stairways(monkeypatch, *once) == 0
    again = rf.FiguresReport.from_json((out / rf.FIGURES_FILE).read_text())
    assert [r.test_looks for r in again.runs] == [3, 3]
