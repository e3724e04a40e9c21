"""``stairways bench governor`` runs and prints its figures (small size; no time is asserted)."""

from __future__ import annotations

import math

import pytest

from stairways.bench.governor_bench import run_governor_bench
from tests.cli_helpers import stairways


def test_governor_bench_times_every_kind_of_call() -> None:
    r = run_governor_bench(sessions_count=3, extra_intents=1)
    assert r.sessions == 2 and r.bars == 390 + 390
    counts = {p.name: p.count for p in r.paths}
    assert counts["assess"] == r.bars
    assert counts["all"] == counts["approve"] + counts["reduce"] + counts["reject"]
    assert counts["approve"] > 0 and counts["reject"] > 0
    assert counts["submit"] == r.bars // 10
    for p in r.paths:
        if p.count:
            assert 0.0 < p.p50_us <= p.p99_us <= p.max_us
    assert r.meets_goal == (r.figure("all").p99_us < 100.0)
    assert not math.isnan(r.figure("all").p99_us)


def test_bench_governor_command_prints_the_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stairways(monkeypatch, "bench", "governor", "--sessions", "2") == 0
    out = capsys.readouterr().out
    assert "governor latency, stage paper: 1 session, 390 bars" in out
    for label in ("check, every verdict", "check, approved", "assess (once per bar)"):
        assert label in out
    assert "goal p99 under 100 us per check:" in out
