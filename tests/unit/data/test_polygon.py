"""The Polygon importer against a loopback server: paging, retries, keys and resumable imports."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from stairways.data.importing import (
    ImportMode,
    ImportOptions,
    ImportSummary,
    import_from_source,
    month_windows,
)
from stairways.data.sources.polygon import (
    API_KEY_ENV,
    PolygonAggregates,
    PolygonConfig,
    polygon_api_key,
)
from stairways.data.store import BarStore
from stairways.data.validation import OHLC_INCONSISTENT, validate_one
from stairways.errors import (
    DataValidationError,
    ExternalServiceError,
    MissingResourceError,
    TemporaryError,
)
from tests.unit.data.loopback_polygon import API_KEY, PolygonState, bars_for, loopback_polygon


@pytest.fixture
def server() -> Iterator[tuple[str, PolygonState]]:
    with loopback_polygon() as running:
        yield running


class Sleeps(list[float]):
    """Records the waits the client asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(base_url: str, sleeps: Sleeps, key: str = API_KEY, **cfg: object) -> PolygonAggregates:
    return PolygonAggregates(
        PolygonConfig.model_validate({"base_url": base_url, **cfg}), key, sleep=sleeps
    )


def test_fetch_follows_next_url_pages_and_sends_the_key_on_each(
    server: tuple[str, PolygonState],
) -> None:
    url, state = server
    with client(url, Sleeps(), limit=100) as poly:
        raw = poly.fetch("NVDA", date(2023, 11, 22), date(2023, 11, 22))
    assert len(raw.frame) == 392  # 390 regular-hours + 2 pre-market bars
    assert len(state.requests) == 4
    assert all(r["query"]["apiKey"] == API_KEY for r in state.requests)
    assert [r["query"].get("cursor") for r in state.requests] == [None, "100", "200", "300"]
    assert state.requests[0]["query"] == {
        "adjusted": "true",
        "sort": "asc",
        "limit": "100",
        "apiKey": API_KEY,
    }
    assert raw.frame["_row"].tolist() == list(range(1, 393))
    report = validate_one(raw)
    assert (len(report.bars), report.out_of_hours) == (390, 2)
    first = bars_for("NVDA", "2023-11-22", "2023-11-22")[2]
    assert report.bars["ts"].iloc[0] == pd.Timestamp(first["t"], unit="ms", tz="UTC")
    assert report.bars["trade_count"].iloc[0] == first["n"]


def test_rate_limit_then_success_waits_as_retry_after_asks(
    server: tuple[str, PolygonState], caplog: pytest.LogCaptureFixture
) -> None:
    url, state = server
    state.scripted = [(429, {"Retry-After": "7"})]
    sleeps = Sleeps()
    with caplog.at_level(logging.DEBUG), client(url, sleeps) as poly:
        raw = poly.fetch("MSFT", date(2023, 11, 24), date(2023, 11, 24))
    assert sleeps == [7.0]
    assert len(raw.frame) == 212
    assert len(state.requests) == 2
    assert "HTTP 429" in caplog.text and API_KEY not in caplog.text
    assert "apiKey=REDACTED" in caplog.text  # httpx logs every URL; the key is blanked


def test_rate_limit_without_retry_after_backs_off_exponentially(
    server: tuple[str, PolygonState],
) -> None:
    url, state = server
    state.scripted = [(429, {}), (503, {}), (429, {})]
    sleeps = Sleeps()
    with client(url, sleeps, backoff_seconds=0.5) as poly:
        poly.fetch("MSFT", date(2023, 11, 24), date(2023, 11, 24))
    assert sleeps == [0.5, 1.0, 2.0]


def test_persistent_rate_limit_becomes_a_temporary_error_after_bounded_retries(
    server: tuple[str, PolygonState],
) -> None:
    url, state = server
    state.failing_windows["2023-11-24"] = 429
    sleeps = Sleeps()
    with (
        client(url, sleeps, max_retries=3) as poly,
        pytest.raises(TemporaryError, match=r"HTTP 429 for MSFT 2023-11-24\.\.2023-11-24 after 4"),
    ):
        poly.fetch("MSFT", date(2023, 11, 24), date(2023, 11, 24))
    assert len(state.requests) == 4 and len(sleeps) == 3


def test_retry_after_longer_than_the_longest_wait_stops_at_once(
    server: tuple[str, PolygonState],
) -> None:
    url, state = server
    state.scripted = [(429, {"Retry-After": "3600"})]
    sleeps = Sleeps()
    with client(url, sleeps) as poly, pytest.raises(TemporaryError, match="wait 3600 s"):
        poly.fetch("MSFT", date(2023, 11, 24), date(2023, 11, 24))
    assert sleeps == []


def test_refused_key_names_the_variable_and_never_the_key(
    server: tuple[str, PolygonState],
) -> None:
    url, _ = server
    with (
        client(url, Sleeps(), key="wrong-key-123") as poly,
        pytest.raises(ExternalServiceError) as err,
    ):
        poly.fetch("NVDA", date(2023, 11, 22), date(2023, 11, 22))
    assert API_KEY_ENV in str(err.value) and "HTTP 403" in str(err.value)
    assert "wrong-key-123" not in str(err.value)


def test_next_url_to_another_host_is_refused_so_the_key_stays_home(
    server: tuple[str, PolygonState],
) -> None:
    url, state = server
    state.next_host = "example.com"
    with (
        client(url, Sleeps(), limit=100) as poly,
        pytest.raises(ExternalServiceError, match="refusing to send the API key"),
    ):
        poly.fetch("NVDA", date(2023, 11, 22), date(2023, 11, 22))
    assert len(state.requests) == 1


def test_missing_api_key_is_a_missing_resource_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(MissingResourceError, match=f"export {API_KEY_ENV}="):
        polygon_api_key()
    monkeypatch.setenv(API_KEY_ENV, "  ")
    with pytest.raises(MissingResourceError):
        polygon_api_key()
    monkeypatch.setenv(API_KEY_ENV, "abc")
    assert polygon_api_key() == "abc"


def test_month_windows_cover_the_range_without_overlap() -> None:
    assert month_windows(date(2023, 10, 30), date(2024, 1, 5)) == [
        (date(2023, 10, 30), date(2023, 10, 31)),
        (date(2023, 11, 1), date(2023, 11, 30)),
        (date(2023, 12, 1), date(2023, 12, 31)),
        (date(2024, 1, 1), date(2024, 1, 5)),
    ]
    assert month_windows(date(2023, 1, 15), date(2023, 6, 1), months=3) == [
        (date(2023, 1, 15), date(2023, 3, 31)),
        (date(2023, 4, 1), date(2023, 6, 1)),
    ]


def _import(url: str, store: Path, mode: ImportMode = ImportMode.STRICT) -> ImportSummary:
    with client(url, Sleeps(), max_retries=1, limit=500) as poly:
        return import_from_source(
            poly,
            ["NVDA"],
            date(2023, 10, 30),
            date(2023, 11, 2),
            store,
            ImportOptions(mode=mode),
        )


def test_import_writes_windows_and_a_rerun_skips_complete_ones(
    server: tuple[str, PolygonState], tmp_path: Path
) -> None:
    url, state = server
    store = tmp_path / "s.duckdb"
    first = _import(url, store)
    assert first.written.rows_inserted == 4 * 390
    assert first.out_of_hours == 4 * 2
    assert state.windows_requested() == ["2023-10-30", "2023-11-01"]
    requests = len(state.requests)
    second = _import(url, store)
    assert second.skipped_windows == ("NVDA 2023-10-30..2023-10-31", "NVDA 2023-11-01..2023-11-02")
    assert len(state.requests) == requests
    assert second.written.rows_in == 0
    assert [(g.sessions, g.missing_bars) for g in second.gaps] == [(4, 0)]


def test_interrupted_import_keeps_finished_windows_and_resumes(
    server: tuple[str, PolygonState], tmp_path: Path
) -> None:
    url, state = server
    store = tmp_path / "s.duckdb"
    state.failing_windows["2023-11-01"] = 429
    with pytest.raises(TemporaryError, match="2023-11-01"):
        _import(url, store)
    with BarStore(store, read_only=True) as s:
        assert s.count() == 2 * 390
    del state.failing_windows["2023-11-01"]
    state.requests.clear()
    resumed = _import(url, store)
    assert state.windows_requested() == ["2023-11-01"]
    assert resumed.written.rows_inserted == 2 * 390
    assert resumed.skipped_windows == ("NVDA 2023-10-30..2023-10-31",)


def test_strict_import_stops_at_a_bad_window_naming_the_result(
    server: tuple[str, PolygonState], tmp_path: Path
) -> None:
    url, state = server
    store = tmp_path / "s.duckdb"
    state.bad_bar = ("NVDA", "2023-11-01", 10)
    with pytest.raises(DataValidationError) as err:
        _import(url, store)
    text = str(err.value)
    assert "polygon NVDA 2023-11-01..2023-11-02, result 11" in text and OHLC_INCONSISTENT in text
    assert "1 earlier window(s) were written" in text
    with BarStore(store, read_only=True) as s:
        assert s.count() == 2 * 390


def test_repair_import_drops_the_bad_bar_and_reports_it(
    server: tuple[str, PolygonState], tmp_path: Path
) -> None:
    url, state = server
    store = tmp_path / "s.duckdb"
    state.bad_bar = ("NVDA", "2023-11-01", 10)
    summary = _import(url, store, ImportMode.REPAIR)
    assert summary.written.rows_inserted == 4 * 390 - 1
    assert summary.report_path is not None and summary.report_path.parent == tmp_path
    with summary.report_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["source"], r["row_kind"], r["row"], r["rule"]) for r in rows] == [
        ("polygon NVDA 2023-11-01..2023-11-02", "result", "11", OHLC_INCONSISTENT)
    ]
