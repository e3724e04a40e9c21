"""The decision flood in its short form on the tiny trained run: the real live loop, governor,
simulated broker and one group-committing journal at 1,000 offered decisions per second.

The latency and memory gates are the nightly run's to judge (tests never assert wall-clock
figures); here the functional facts: every decision the loops made is in the journal, the
chain verifies, no order left while journal records were still buffered, and the journal
committed decisions in groups rather than one by one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stairways.resources import shipped_config
from tests.cli_helpers import stairways
from tests.integration.live.conftest import PARITY_RISK_DIR, LiveRun, live_run  # noqa: F401

WALL_CLOCK = {"pipeline_p99_ms", "memory_growth_mb"}


def test_short_flood_journals_every_decision_in_groups_and_orders_only_after_the_barrier(
    live_run: LiveRun,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = yaml.safe_load(shipped_config("stress/suite").read_text(encoding="utf-8"))
    data.update(
        {"run_dir": str(live_run.run_dir), "risk_dir": str(PARITY_RISK_DIR), "split": "test"}
    )
    shipped = {g["metric"] for g in data["decision_flood"]["gates"]}
    assert shipped >= WALL_CLOCK  # the nightly gates exist; only this test leaves them out
    data["decision_flood"]["gates"] = [
        g for g in data["decision_flood"]["gates"] if g["metric"] not in WALL_CLOCK
    ]
    data["decision_flood"]["short_seconds"] = 1.5
    cfg = tmp_path / "suite.yaml"
    cfg.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / "out"
    code = stairways(
        monkeypatch, "stress", "run", "-s", "decision_flood", "--short", "--stress-config", cfg,
        "--out", out,
    )  # fmt: skip
    results = json.loads((out / "latest.json").read_text())
    (flood,) = results["scenarios"]
    f = flood["figures"]
    assert code == 0, flood
    assert results["short"] is True and f["seconds"] == 1.5
    assert f["decisions"] >= 1 and f["sessions"] >= 1
    assert f["decisions_lost"] == 0.0
    assert f["chain_verified"] == 1.0
    assert f["orders_sent_undurable"] == 0.0
    # group commit: fewer commits than records (decisions without orders rode together)
    assert f["journal_records"] > f["journal_commits"] >= 1
    for name in ("pipeline_p99_ms", "service_p99_ms", "decisions_per_second", "memory_growth_mb"):
        assert name in f
