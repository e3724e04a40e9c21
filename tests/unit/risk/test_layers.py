"""The governor depends on the market core, the calendar and the journal, never on a runner."""

from __future__ import annotations

from datetime import datetime

from stairways.clock import ManualClock
from stairways.risk.types import TradingState
from tests.unit.risk.helpers import NY, new_governor
from tests.unit.test_import_graph import subpackage_edges


def test_risk_imports_only_the_market_core_data_and_the_journal() -> None:
    targets = {b for (a, b) in subpackage_edges() if a == "risk"}
    assert targets, "the import walk found nothing for risk"
    assert targets <= {"market", "data", "journal"}, targets
    assert not targets & {"env", "training", "evaluation", "rewards", "tuning", "brokers"}


def test_decision_latency_measured_on_the_manual_clock_pauses_after_three_slow_ones() -> None:
    clock = ManualClock(datetime(2024, 3, 5, 11, 0, tzinfo=NY))
    gov = new_governor("paper", at=clock.now())
    paused = []
    for k, ms in enumerate((12.0, 9.0, 11.0, 10.5, 30.0)):
        start = clock.monotonic()
        clock.advance(ms / 1000.0)  # the decision: bar in, intent out
        paused.append(gov.record_decision(clock.monotonic() - start, f"d{k}", clock.now()))
    assert paused == [False, False, False, False, True]
    assert gov.state is TradingState.PAUSED
