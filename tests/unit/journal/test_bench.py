"""``stairways bench journal`` runs and prints its figures (values are not asserted: wall clock)."""

from __future__ import annotations

import pytest

from stairways.bench.journal_bench import run_journal_bench
from tests.cli_helpers import stairways


def test_bench_journal_prints_append_batch_verify_and_tail_figures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stairways(monkeypatch, "bench", "journal", "--appends", "20", "--batch", "5") == 0
    out = capsys.readouterr().out
    assert "journal on SQLite (WAL, synchronous=FULL)" in out
    assert "append, one per transaction" in out and "appends/s" in out
    assert "append_many, 5 per transaction" in out
    # 1 config record + 20 single + 20 batched appends, all verified.
    verify = next(line for line in out.splitlines() if line.startswith("verify"))
    assert verify.split()[1] == "41"


def test_bench_journal_on_postgres(fresh_postgres_url: str) -> None:
    r = run_journal_bench(appends=12, batch_size=4, url=fresh_postgres_url)
    assert r.location == "PostgreSQL"
    assert r.verify_records == 25
    assert r.append_p50_ms <= r.append_p99_ms <= r.append_max_ms
