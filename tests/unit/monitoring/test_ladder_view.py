"""The dashboard's ladder panel and the gate metrics are the ladder's own figures."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stairways.journal import JournalLocation, JournalReader
from stairways.live.ladder_config import LadderConfig
from stairways.monitoring.metrics import registry_for
from stairways.monitoring.service import Monitor
from tests.unit.live.ladder_helpers import bench, serve, to_paper, trading_days
from tests.unit.monitoring.conftest import Tick


def test_ladder_stage_and_gate_figures_so_far_come_from_the_journal(tmp_path: Path) -> None:
    b = bench(tmp_path)
    to_paper(b)
    serve(b, "paper", trading_days(date(2026, 1, 6), 3))
    expected = {c.name: c for c in b.ladder.status()[0].checks}
    with JournalReader.open(JournalLocation.sqlite(tmp_path / "journal.sqlite")) as reader:
        m = Monitor(reader, b.clock, ladder_config=LadderConfig(), monotonic=Tick())
        m.refresh()
        rows = m.snapshot()["ladder"]
        text = generate_latest(registry_for(m)).decode()
    assert len(rows) == 1
    row = rows[0]
    assert (row["model_id"], row["stage"], row["next_stage"]) == (
        b.model.model_id,
        "paper",
        "micro_10",
    )
    assert row["trading_days"] == 3
    days = next(c for c in row["checks"] if c["name"] == "trading_days")
    assert (days["value"], days["op"], days["threshold"], days["passed"]) == (3.0, ">=", 7.0, False)
    assert {c["name"]: c["passed"] for c in row["checks"]} == {
        n: c.passed for n, c in expected.items()
    }
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    share = sum(c.passed for c in expected.values()) / len(expected)
    key = (("model_id", b.model.model_id), ("stage", "paper"))
    assert samples[("stairways_gate_progress", key)] == share < 1.0
    gate = (("gate", "trading_days"), ("model_id", b.model.model_id), ("stage", "paper"))
    assert samples[("stairways_gate_value", gate)] == 3.0
