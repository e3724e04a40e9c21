"""``stairways bench live`` on the tiny trained run: both forward paths are timed in one run,
they choose the same action on every bar, and the figures are printed (never asserted: they
are wall clock)."""

from __future__ import annotations

import re

import pytest

from tests.cli_helpers import stairways
from tests.integration.live.conftest import DAY, LiveRun, live_run  # noqa: F401


def test_bench_live_prints_numpy_and_torch_paths_and_their_ratio(
    live_run: LiveRun,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--day", DAY.isoformat(), "--split", "test", "--repeats", "1", "--halt-trials", "0"]
    code = stairways(monkeypatch, "bench", "live", live_run.run_dir, *args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "policy forward pass: numpy" in out
    rows = {
        m.group(1): int(m.group(2).replace(",", ""))
        for m in re.finditer(r"^(numpy|torch)\s+([\d,]+)\s", out, re.M)
    }
    assert rows == {"numpy": 390, "torch": 390}  # one timed pass of the session per path
    assert "same action on every bar: yes" in out
    assert re.search(r"goal p99 under 1 ms bar to intent: (meets|MISSES)", out)
