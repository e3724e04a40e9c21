"""Saved Polygon aggregates responses (JSON files): read by the same code as live responses."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
import pytest

from stairways.data.importing import import_files
from stairways.data.sources.files import expand_inputs, read_bar_file
from stairways.data.sources.polygon import PolygonAggregates, PolygonConfig, read_aggs_file
from stairways.data.store import BarStore
from stairways.errors import DataValidationError, InputError
from tests.unit.data.loopback_polygon import API_KEY, loopback_polygon

DAY = "2023-11-22"


def save_live_response(folder: Path, symbol: str = "NVDA", name: str | None = None) -> Path:
    """Fetch one day from the loopback Polygon and save the body exactly as it was served."""
    with loopback_polygon() as (url, _state):
        response = httpx.get(
            f"{url}/v2/aggs/ticker/{symbol}/range/1/minute/{DAY}/{DAY}",
            params={"adjusted": "true", "sort": "asc", "limit": "50000", "apiKey": API_KEY},
        )
    assert response.status_code == 200
    path = folder / (name or f"{symbol.lower()}_{DAY}.json")
    path.write_bytes(response.content)
    return path


def test_a_saved_response_reads_exactly_like_the_live_one(tmp_path: Path) -> None:
    saved = read_aggs_file(save_live_response(tmp_path))
    with loopback_polygon() as (url, _state):
        cfg = PolygonConfig(base_url=url)
        with PolygonAggregates(cfg, API_KEY, sleep=lambda _: None) as client:
            live = client.fetch("NVDA", date(2023, 11, 22), date(2023, 11, 22))
    pd.testing.assert_frame_equal(saved.frame, live.frame)
    assert (
        (saved.row_label, saved.epoch_unit)
        == (live.row_label, live.epoch_unit)
        == (
            "result",
            "ms",
        )
    )
    assert saved.frame["symbol"].unique().tolist() == ["NVDA"]


def test_importing_saved_responses_writes_their_regular_hours_bars(tmp_path: Path) -> None:
    files = [save_live_response(tmp_path, "NVDA"), save_live_response(tmp_path, "MSFT")]
    gz = tmp_path / "msft.json.gz"
    gz.write_bytes(gzip.compress(files[1].read_bytes()))
    files[1].unlink()
    store = tmp_path / "s.duckdb"
    summary = import_files([files[0], gz], store)
    assert [s.out_of_hours for s in summary.sources] == [2, 2]  # Polygon's pre-market bars
    assert summary.written.rows_inserted == 2 * 390
    with BarStore(store, read_only=True) as s:
        assert sorted(i.symbol for i in s.symbols()) == ["MSFT", "NVDA"]


def test_a_directory_of_saved_responses_is_found_by_suffix(tmp_path: Path) -> None:
    save_live_response(tmp_path)
    (tmp_path / "notes.txt").write_text("not bars")
    assert [p.name for p in expand_inputs([tmp_path])] == [f"nvda_{DAY}.json"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"status": "ERROR", "request_id": "x1", "error": "Unknown API Key"},
            r"error response, not bars \(status ERROR: Unknown API Key\); nothing was written",
        ),
        (
            {"status": "NOT_AUTHORIZED", "message": "Your plan doesn't include this data."},
            r"status NOT_AUTHORIZED: Your plan doesn't include this data",
        ),
        (
            {"ticker": "NVDA", "queryCount": 0, "resultsCount": 0, "status": "OK"},
            r"holds no results \(resultsCount 0, status OK\); nothing was written",
        ),
        ([1, 2, 3], r"the JSON is a list, not a response object"),
    ],
    ids=["error", "not-authorized", "no-results", "not-an-object"],
)
def test_an_unusable_response_is_a_clear_error_naming_the_file_and_writes_nothing(
    tmp_path: Path, body: object, expected: str
) -> None:
    good = save_live_response(tmp_path)
    bad = tmp_path / "response.json"
    bad.write_text(json.dumps(body))
    store = tmp_path / "s.duckdb"
    with pytest.raises(DataValidationError, match=expected) as err:
        import_files([good, bad], store)
    assert str(err.value).startswith(f"{bad}: ")
    assert not store.exists()


def test_a_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "cut.json"
    bad.write_text('{"status": "OK", "results": [{"t": 1')
    with pytest.raises(DataValidationError, match=r"cut\.json: is not valid JSON"):
        read_aggs_file(bad)


def test_results_without_a_required_field_name_the_file_and_field(tmp_path: Path) -> None:
    body = {"ticker": "NVDA", "status": "OK", "results": [{"t": 1700663400000, "o": 1.0}]}
    path = tmp_path / "short.json"
    path.write_text(json.dumps(body))
    with pytest.raises(DataValidationError, match=r"short\.json: the results lack .*h, l, c, v"):
        read_aggs_file(path)


def test_the_ticker_comes_from_the_response_or_from_symbol_never_both_disagreeing(
    tmp_path: Path,
) -> None:
    path = save_live_response(tmp_path)
    with pytest.raises(InputError, match=r"--symbol MSFT contradicts .* holds bars for NVDA"):
        read_bar_file(path, symbol="MSFT")
    body = json.loads(path.read_text())
    del body["ticker"]
    anonymous = tmp_path / "anonymous.json"
    anonymous.write_text(json.dumps(body))
    with pytest.raises(DataValidationError, match="names no ticker; pass --symbol"):
        read_bar_file(anonymous)
    assert read_bar_file(anonymous, symbol="AMD").frame["symbol"].iloc[0] == "AMD"


def test_column_mapping_does_not_apply_to_a_response(tmp_path: Path) -> None:
    path = save_live_response(tmp_path)
    with pytest.raises(InputError, match="--map applies to CSV and Parquet files"):
        read_bar_file(path, mapping={"close": "c"})
