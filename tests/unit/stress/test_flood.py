"""The decision flood's settings, the suite's short flag and the short form's closing step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stairways.errors import ConfigError
from stairways.stress import suite as suite_mod
from stairways.stress.flood import resident_mb
from stairways.stress.results import ScenarioResult
from stairways.stress.scenarios import SHORT_TAIL, StressContext, _close_after, _short
from stairways.stress.settings import DecisionFloodConfig, StressConfig, load_stress_config


def test_flood_defaults_are_the_issues_figures() -> None:
    d = DecisionFloodConfig()
    assert (d.rate, d.seconds, d.short_seconds) == (1000.0, 600.0, 3.0)
    assert (d.group_commit_ms, d.group_commit_records) == (20.0, 512)


def test_shipped_flood_gates_are_the_issues() -> None:
    gates = {(g.metric, g.op, g.threshold) for g in load_stress_config().decision_flood.gates}
    assert gates == {
        ("pipeline_p99_ms", "<", 20.0),
        ("memory_growth_mb", "<", 50.0),
        ("decisions_lost", "==", 0.0),
        ("chain_verified", "==", 1.0),
        ("orders_sent_undurable", "==", 0.0),
    }
    shipped = load_stress_config().decision_flood
    assert (shipped.rate, shipped.seconds, shipped.short_seconds) == (1000.0, 600.0, 3.0)


def test_a_flood_rate_of_zero_is_refused_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text("decision_flood:\n  rate: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"decision_flood\.rate"):
        load_stress_config(path)


def test_resident_memory_grows_with_a_touched_allocation() -> None:
    before = resident_mb()
    block = bytearray(80_000_000)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    assert resident_mb() - before > 60.0
    del block


@dataclass
class _FakeLoop:
    last_bar: int = -1
    done: bool = False
    closed_at: list[int] = field(default_factory=list)

    def on_minute(self, *args: Any) -> None:
        self.last_bar += 1

    def close_session(self, k: int) -> None:
        self.closed_at.append(k)
        self.done = True


def test_a_short_form_closes_the_session_right_after_its_last_bar() -> None:
    loop = _FakeLoop()
    _close_after(loop, 3)  # type: ignore[arg-type]
    for _ in range(6):
        if not loop.done:
            loop.on_minute()
    assert loop.closed_at == [3]
    assert loop.last_bar == 3


def _ctx(short: bool) -> StressContext:
    return StressContext(
        policy=SimpleNamespace(ref=SimpleNamespace(model_id="run:tiny:final")),  # type: ignore[arg-type]
        store=Path("x"),
        day=None,  # type: ignore[arg-type]
        split="validation",
        stage="paper",
        risk_dir=Path("r"),
        work=Path("w"),
        short=short,
    )


def test_short_ends_a_rehearsed_fault_a_tail_after_it_and_long_runs_the_session() -> None:
    assert _short(_ctx(True), 60) == 60 + SHORT_TAIL
    assert _short(_ctx(False), 60) is None


@pytest.mark.parametrize("short", [True, False])
def test_run_suite_hands_short_to_every_scenario(
    short: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, bool] = {}

    def scenario(name: str) -> Any:
        def run(ctx: StressContext, cfg: Any) -> ScenarioResult:
            seen[name] = ctx.short
            return ScenarioResult(name, "sim", {}, [])

        return run

    fakes = {n: scenario(n) for n in suite_mod.ALL_SCENARIOS}
    monkeypatch.setattr(suite_mod, "ALL_SCENARIOS", fakes)

    class _Clock:
        def now(self) -> Any:
            from datetime import UTC, datetime

            return datetime(2024, 1, 2, tzinfo=UTC)

    result = suite_mod.run_suite(_ctx(False), StressConfig(), [], short=short, clock=_Clock())  # type: ignore[arg-type]
    assert result.short is short
    assert seen == dict.fromkeys(fakes, short)
