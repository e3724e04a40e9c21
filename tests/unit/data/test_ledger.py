"""The test-split ledger: every look at protected dates counted, nothing else."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.data import ledger
from stairways.data.panel import SessionPanel
from stairways.data.settings import DataConfig, DateRange
from stairways.errors import InputError, StairwaysError

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def data_cfg(store: Path, **splits: tuple[str, str]) -> DataConfig:
    base = {
        "train": ("2022-01-03", "2023-06-30"),
        "validation": ("2023-07-03", "2023-12-29"),
        "test": ("2024-01-02", "2024-12-31"),
        **splits,
    }
    return DataConfig(
        store_path=store,
        splits={k: {"start": a, "end": b} for k, (a, b) in base.items()},
    )


def look(cfg: DataConfig, split: str, run: str = "runs/r1", **kw: object) -> ledger.TestLook | None:
    return ledger.record_test_look(
        cfg,
        split,
        run=run,
        checkpoint=str(kw.get("checkpoint", "final")),
        fingerprint=str(kw.get("fingerprint", "abc123")),
        command=["stairways", "evaluate", run],
        now=NOW,
    )


def test_the_ledger_lives_beside_the_store_named_after_it(tmp_path: Path) -> None:
    assert ledger.ledger_path(tmp_path / "data" / "stairways.duckdb") == (
        tmp_path / "data" / "stairways.test_ledger.jsonl"
    )


def test_a_look_at_validation_is_not_recorded(tmp_path: Path) -> None:
    cfg = data_cfg(tmp_path / "s.duckdb")
    assert look(cfg, "validation") is None
    assert look(cfg, "train") is None
    assert not ledger.ledger_path(cfg.store_path).exists()
    assert ledger.test_looks(cfg) == []


def test_every_look_at_test_is_appended_and_numbered(tmp_path: Path) -> None:
    cfg = data_cfg(tmp_path / "s.duckdb")
    first = look(cfg, "test", checkpoint="final")
    assert first is not None and first.look == 1
    path = ledger.ledger_path(cfg.store_path)
    before = path.read_text()
    second = look(cfg, "test", run="runs/r2", checkpoint="best")
    assert second is not None and second.look == 2
    text = path.read_text()
    assert text.startswith(before)  # append-only: the first line is untouched
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[1] == {
        "time": "2026-11-30T12:00:00+00:00",
        "split": "test",
        "start": "2024-01-02",
        "end": "2024-12-31",
        "symbols": ["NVDA", "MSFT"],
        "run": "runs/r2",
        "checkpoint": "best",
        "command": "stairways evaluate runs/r2",
        "fingerprint": "abc123",
        "look": 2,
    }
    assert [x.run for x in ledger.test_looks(cfg)] == ["runs/r1", "runs/r2"]


def test_a_slice_inside_test_is_a_look_at_test(tmp_path: Path) -> None:
    cfg = data_cfg(tmp_path / "s.duckdb", feb2024=("2024-02-01", "2024-02-29"))
    look(cfg, "test")
    recorded = look(cfg, "feb2024")
    assert recorded is not None and recorded.look == 2  # the earlier test look covers February
    assert len(ledger.test_looks(cfg, "test")) == 2
    (count,) = ledger.test_look_count(cfg, "feb2024", recorded)
    assert (count.split, count.looks, count.this_look) == ("test", 2, recorded)


def test_looks_at_other_dates_or_another_store_do_not_count(tmp_path: Path) -> None:
    cfg = data_cfg(tmp_path / "s.duckdb")
    # A walk-forward pair whose protected "test" is 2023: a look at 2023, not at 2024.
    pair = DataConfig(
        store_path=cfg.store_path,
        splits={
            "train": {"start": "2022-01-03", "end": "2022-12-30"},
            "test": {"start": "2023-01-03", "end": "2023-12-29"},
        },
    )
    assert look(pair, "test") is not None
    assert ledger.test_looks(cfg) == []
    other = data_cfg(tmp_path / "other.duckdb")
    look(other, "test")
    assert ledger.test_looks(cfg) == []
    assert len(ledger.test_looks(other)) == 1


def test_count_says_whether_this_evaluation_looked(tmp_path: Path) -> None:
    cfg = data_cfg(tmp_path / "s.duckdb")
    recorded = look(cfg, "test")
    (count,) = ledger.test_look_count(cfg, "test", recorded)
    assert count.looks == 1
    assert "has been looked at once; this evaluation is look 1" in count.describe()
    (untouched,) = ledger.test_look_count(cfg, "validation", None)
    assert untouched.this_look is None
    assert "this evaluation did not touch it" in untouched.describe()
    assert untouched.to_dict()["looks"] == 1


def test_a_damaged_ledger_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    cfg = data_cfg(tmp_path / "s.duckdb")
    look(cfg, "test")
    path = ledger.ledger_path(cfg.store_path)
    with path.open("a") as fh:
        fh.write('{"split": "test"}\n')
    with pytest.raises(InputError, match=r"test_ledger\.jsonl, line 2 is not a ledger entry"):
        ledger.test_looks(cfg)
    with pytest.raises(InputError, match="line 2"):
        look(cfg, "test")  # a look is never numbered against a ledger it cannot read


def test_an_unwritable_ledger_refuses_the_look(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store folder should be")
    cfg = data_cfg(blocked / "s.duckdb")
    with pytest.raises(StairwaysError, match="uncounted look at the test year is not allowed"):
        look(cfg, "test")


def _look_many(store: str, n: int, tag: str) -> list[int]:
    cfg = data_cfg(Path(store))
    out = []
    for k in range(n):
        recorded = look(cfg, "test", run=f"runs/{tag}{k}")
        assert recorded is not None
        out.append(recorded.look)
    return out


def test_parallel_processes_each_get_their_own_look_number(tmp_path: Path) -> None:
    store = str(tmp_path / "s.duckdb")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        numbers = pool.starmap(_look_many, [(store, 6, "a"), (store, 6, "b")], chunksize=1)
    assert sorted(numbers[0] + numbers[1]) == list(range(1, 13))
    assert len(ledger.test_looks(data_cfg(Path(store)))) == 12


def _panel(close: float) -> SessionPanel:
    prices = np.full((1, 2, 2), close)
    return SessionPanel(
        symbols=("NVDA", "MSFT"),
        feature_names=("f",),
        dates=np.array(["2024-01-02"], dtype="datetime64[D]"),
        lengths=np.array([2]),
        ts=np.array([[1, 2]], dtype=np.int64),
        open=prices,
        high=prices,
        low=prices,
        close=prices,
        volume=prices,
        features=np.zeros((1, 2, 2, 1), dtype=np.float32),
        split="test",
        synthetic=True,
        fingerprint="normaliser-dependent",
    )


def test_the_bars_fingerprint_ignores_the_normaliser_but_not_the_prices() -> None:
    a = _panel(10.0)
    b = SessionPanel(**{**a.__dict__, "fingerprint": "another-normaliser"})
    assert ledger.bars_fingerprint(a) == ledger.bars_fingerprint(b)
    assert ledger.bars_fingerprint(a) != ledger.bars_fingerprint(_panel(10.01))


_DAY0 = date(2022, 1, 3)


@given(
    ranges=st.lists(st.tuples(st.integers(0, 1100), st.integers(0, 200)), min_size=1, max_size=12),
    query=st.tuples(st.integers(0, 1100), st.integers(0, 200)),
)
@settings(max_examples=25, deadline=None)
def test_the_count_is_the_number_of_recorded_looks_sharing_a_day_with_the_range(
    tmp_path_factory: pytest.TempPathFactory,
    ranges: list[tuple[int, int]],
    query: tuple[int, int],
) -> None:
    store = tmp_path_factory.mktemp("ledger") / "s.duckdb"

    def rng(offset: int, length: int) -> DateRange:
        lo = _DAY0 + timedelta(days=offset)
        return DateRange(start=lo, end=lo + timedelta(days=length))

    for offset, length in ranges:
        r = rng(offset, length)
        cfg = DataConfig(
            store_path=store,
            splits={"train": {"start": "2021-01-04", "end": "2021-12-31"}, "test": r},
        )
        assert look(cfg, "test") is not None
    q = rng(*query)
    asked = DataConfig(
        store_path=store,
        splits={"train": {"start": "2021-01-04", "end": "2021-12-31"}, "test": q},
    )
    expected = sum(1 for offset, length in ranges if rng(offset, length).overlaps(q))
    assert len(ledger.test_looks(asked)) == expected
