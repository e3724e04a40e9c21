"""``stairways diagnose`` end to end on the tiny synthetic store (13 short training runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import stairways
from tests.integration.diagnostics_helpers import tiny_suite_config


@pytest.mark.slow
def test_suite_runs_every_part_writes_the_report_and_resumes_without_retraining(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_store: Path,
) -> None:
    config = tiny_suite_config(tmp_path, tiny_store)
    out = tmp_path / "diag"
    code = stairways(monkeypatch, "diagnose", "--config", config, "--out", out)
    printed = capsys.readouterr()
    # Three short runs cannot reach a mean reward of 0.5, so freeze-early fails: exit 3.
    assert code == 3, printed.err
    assert "freeze-early: FAIL" in printed.out
    assert "[13/13]" in printed.err

    abc = json.loads((out / "abc" / "result.json").read_text())
    assert abc["judgement"]["verdict"] == "pass"  # same seed: shim and internal identical
    shim, internal = (a for a in abc["arms"] if a["name"] in ("reward_shim", "reward_internal"))
    assert shim["training_rewards"] == internal["training_rewards"]
    assert len(shim["training_rewards"]) > 0

    leakage = json.loads((out / "leakage" / "result.json").read_text())
    judgement = leakage["judgement"]
    # three seeds per arm, compared across seeds: the planted look-ahead is still found
    assert leakage["seeds"] == [0, 1, 2] and len(leakage["arms"]) == 9
    assert judgement["control"]["n"] == 3
    assert judgement["control_detected"], judgement["message"]
    assert judgement["control"]["mean"] > 0
    assert judgement["verdict"] in ("pass", "fail")  # never "audit broken" here

    freeze = json.loads((out / "freeze" / "result.json").read_text())
    assert [c["target_steps"] for c in freeze["checkpoints"]] == [1000, 2000, 3000]
    assert all(c["steps"] >= c["target_steps"] for c in freeze["checkpoints"])
    assert freeze["judgement"]["verdict"] == "fail"

    report = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for heading in ("## Verdicts", "## Interpretation (decision matrix)", "## Data-leakage audit"):
        assert heading in report
    assert "<h2>Reward A/B/C</h2>" in html and "wrapper bug" in html

    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/*/job.json")}
    code = stairways(monkeypatch, "diagnose", "--config", config, "--out", out, "--resume")
    printed = capsys.readouterr()
    assert code == 3
    assert printed.err.count("finished earlier, reusing") == 13
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*/job.json")} == mtimes

    code = stairways(monkeypatch, "diagnose", "--config", config, "--out", out)
    assert code == 2
    assert "pass --resume" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_refuses_results_computed_with_other_settings(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_store: Path,
) -> None:
    config = tiny_suite_config(tmp_path, tiny_store, workers=1)
    out = tmp_path / "diag"
    args = ("diagnose", "--config", config, "--out", out, "--parts", "abc")
    assert stairways(monkeypatch, *args, "--total-timesteps", "800") in (0, 3)
    capsys.readouterr()
    code = stairways(monkeypatch, *args, "--total-timesteps", "900", "--resume")
    assert code == 2
    assert "total_timesteps" in capsys.readouterr().err
