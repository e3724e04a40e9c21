"""``stairways data import|info|quality`` through the real entry point and its exit codes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stairways.data import calendar as cal
from stairways.data.sources.polygon import API_KEY_ENV
from stairways.data.store import BarStore
from tests.cli_helpers import stairways
from tests.unit.data.loopback_polygon import API_KEY, loopback_polygon

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CANONICAL = FIXTURES / "bars_canonical.csv"
POLYGON = FIXTURES / "bars_polygon_nvda.csv"


def test_import_good_file_exits_0_and_reports_counts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.duckdb"
    code = stairways(monkeypatch, "data", "import", POLYGON, "--symbol", "NVDA", "--store", store)
    out = capsys.readouterr().out
    assert code == 0
    assert "390 new bars" in out and "dropped 90 bars outside regular trading hours" in out
    with BarStore(store, read_only=True) as s:
        assert s.count() == 390


def test_import_bad_file_exits_2_naming_file_line_and_rule(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = CANONICAL.read_text().splitlines()
    fields = lines[9].split(",")
    fields[1] = "not-a-time"
    lines[9] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    code = stairways(monkeypatch, "data", "import", bad, "--store", tmp_path / "s.duckdb")
    err = capsys.readouterr().err
    assert code == 2
    assert "bad.csv, line 10: ts 'not-a-time'" in err and "timestamp_unparseable" in err
    assert not (tmp_path / "s.duckdb").exists()


def test_import_missing_file_and_naive_timestamps_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert stairways(monkeypatch, "data", "import", tmp_path / "nope.csv") == 2
    naive = tmp_path / "naive.csv"
    naive.write_text("symbol,ts,open,high,low,close,volume\nNVDA,2023-11-22 09:30,1,1,1,1,1\n")
    store = tmp_path / "s.duckdb"
    assert stairways(monkeypatch, "data", "import", naive, "--store", store) == 2
    assert "--tz" in capsys.readouterr().err
    code = stairways(
        monkeypatch, "data", "import", naive, "--tz", "America/New_York", "--store", store
    )
    assert code == 0
    assert stairways(monkeypatch, "data", "import", naive, "--tz", "Mars/Olympus") == 2


def test_repair_prints_the_report_path_listing_the_dropped_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = CANONICAL.read_text().splitlines()
    lines[4] = lines[4].replace("NVDA", "N V D A")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    store = tmp_path / "store" / "s.duckdb"
    code = stairways(monkeypatch, "data", "import", bad, "--repair", "--store", store)
    out = capsys.readouterr().out
    assert code == 0
    report = Path(out.split("report: ")[1].strip())
    assert report.parent == store.parent
    with report.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["rule"]) for r in rows] == [("5", "symbol_invalid")]


def test_reimport_reports_zero_new_bars(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.duckdb"
    assert stairways(monkeypatch, "data", "import", CANONICAL, "--store", store) == 0
    capsys.readouterr()
    assert stairways(monkeypatch, "data", "import", CANONICAL, "--store", store) == 0
    assert "0 new bars, 0 replaced, 1200 already stored" in capsys.readouterr().out


def test_info_and_quality_on_a_missing_store_name_data_synth(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for command in ("info", "quality"):
        code = stairways(monkeypatch, "data", command, "--store", tmp_path / "none.duckdb")
        assert code == 1
        assert "stairways data synth" in capsys.readouterr().err
    assert not (tmp_path / "none.duckdb").exists()


def _synthetic_store(path: Path) -> None:
    ts = cal.session_minutes("2023-11-22", "2023-11-24").delete(slice(100, 103))
    n = len(ts)
    frame = pd.DataFrame(
        {
            "symbol": "NVDA",
            "ts": ts,
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
            "volume": 1.0,
            "vwap": np.nan,
            "trade_count": pd.array([None] * n, dtype="Int64"),
        }
    )
    with BarStore(path) as store:
        store.write_bars(frame, source="synthetic", synthetic=True)


def test_info_says_synthetic_loudly_and_shows_exchange_time(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.duckdb"
    _synthetic_store(store)
    assert stairways(monkeypatch, "data", "info", "--store", store) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC DATA: NVDA bars are GENERATED" in out
    row = next(line for line in out.splitlines() if line.startswith("NVDA"))
    assert "2023-11-22 09:30 EST" in row and "2023-11-24 12:59 EST" in row
    assert row.split()[1] == "597"  # 390 + 210 - 3 bars


def test_quality_lists_incomplete_sessions_and_writes_the_full_csv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.duckdb"
    _synthetic_store(store)
    table = tmp_path / "q.csv"
    code = stairways(monkeypatch, "data", "quality", "--store", store, "--csv", table)
    out = capsys.readouterr().out
    assert code == 0
    assert "incomplete sessions (1):" in out and "2023-11-22  387/390" in out
    written = pd.read_csv(table)
    assert written[["session", "expected", "present", "missing"]].values.tolist() == [
        ["2023-11-22", 390, 387, 3],
        ["2023-11-24", 210, 210, 0],
    ]
    assert stairways(monkeypatch, "data", "quality", "--store", store, "--symbol", "AAPL") == 2


def test_polygon_import_through_the_cli_uses_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.duckdb"
    args = ["data", "import", "--polygon", "--symbol", "MSFT", "--from", "2023-11-24"]
    args += ["--to", "2023-11-24", "--store", str(store)]
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    assert stairways(monkeypatch, *args) == 1
    assert API_KEY_ENV in capsys.readouterr().err
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    with loopback_polygon() as (url, state):
        assert stairways(monkeypatch, *args, "--polygon-url", url) == 0
        assert len(state.requests) == 1
    out = capsys.readouterr().out
    assert "210 new bars" in out and "dropped 2 bars outside regular trading hours" in out


def test_bench_data_imports_and_featurises_every_generated_bar(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["bench", "data", "--start", "2023-11-20", "--end", "2023-11-24"]
    assert stairways(monkeypatch, *args, "--workdir", tmp_path / "b") == 0
    out = capsys.readouterr().out
    assert "2,760 bars of NVDA, MSFT 2023-11-20..2023-11-24, 2 CSV files" in out
    for stage in ("import CSV -> store", "read store", "features", "import + read + features"):
        assert any(line.startswith(stage) for line in out.splitlines()), stage
    assert sorted(p.name for p in (tmp_path / "b" / "csv").iterdir()) == [
        "MSFT_2023.csv",
        "NVDA_2023.csv",
    ]
    with BarStore(tmp_path / "b" / "bench.duckdb", read_only=True) as store:
        assert store.count() == 2 * (3 * 390 + 210)  # 2023-11-23 closed, 11-24 half


def _spiky_store(path: Path) -> pd.Timestamp:
    """A stored NVDA session whose bar at 11:00 is a print ten times the price."""
    ts = cal.session_minutes("2023-11-22", "2023-11-22")
    close = 487.0 * np.exp(np.cumsum(np.random.default_rng(4).normal(0.0, 0.0008, len(ts))))
    frame = pd.DataFrame(
        {
            "symbol": "NVDA",
            "ts": ts,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": 1.0,
            "vwap": np.nan,
            "trade_count": pd.array([None] * len(ts), dtype="Int64"),
        }
    )
    frame.loc[90, ["open", "high", "low", "close"]] = close[89] * 10.0
    with BarStore(path) as store:
        store.write_bars(frame, source="test", synthetic=False)
    return pd.Timestamp(ts[90])


def test_quality_lists_the_price_spikes_of_stored_bars_and_writes_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.duckdb"
    spike = _spiky_store(store)
    table = tmp_path / "jumps.csv"
    code = stairways(monkeypatch, "data", "quality", "--store", store, "--jumps-csv", table)
    out = capsys.readouterr().out
    assert code == 0
    assert "price jumps (1; limit min(0.25, max(100 robust scales, 0.05)) in log return):" in out
    row = next(line for line in out.splitlines() if "price_spike" in line)
    assert row.split()[:4] == ["NVDA", "2023-11-22", "11:00", "price_spike"]
    written = pd.read_csv(table)
    assert written["rule"].tolist() == ["price_spike"]
    assert pd.Timestamp(written["ts"].iloc[0]) == spike
    assert written["log_move"].iloc[0] == pytest.approx(np.log(10.0))


def test_quality_says_so_when_no_bar_jumps(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.duckdb"
    assert stairways(monkeypatch, "data", "import", CANONICAL, "--store", store) == 0
    capsys.readouterr()
    assert stairways(monkeypatch, "data", "quality", "--store", store) == 0
    assert "price jumps: none" in capsys.readouterr().out


def test_import_of_a_spike_exits_2_naming_file_line_and_rule_and_repair_drops_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = CANONICAL.read_text().splitlines()
    fields = lines[50].split(",")  # NVDA 2023-11-22, the 50th bar
    fields[2:6] = [f"{float(v) * 10:.2f}" for v in fields[2:6]]
    lines[50] = ",".join(fields)
    bad = tmp_path / "spike.csv"
    bad.write_text("\n".join(lines) + "\n")
    store = tmp_path / "s.duckdb"
    assert stairways(monkeypatch, "data", "import", bad, "--store", store) == 2
    err = capsys.readouterr().err
    assert "spike.csv, line 51: close" in err and "[rule price_spike]" in err
    assert not store.exists()
    assert stairways(monkeypatch, "data", "import", bad, "--repair", "--store", store) == 0
    out = capsys.readouterr().out
    assert "1199 new bars" in out and "dropped 1 rows breaking rules" in out


def test_import_of_a_saved_polygon_error_response_exits_2_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    error = tmp_path / "nvda_2024-01.json"
    error.write_text('{"status": "NOT_AUTHORIZED", "request_id": "r1", "message": "Upgrade"}')
    store = tmp_path / "s.duckdb"
    assert stairways(monkeypatch, "data", "import", error, "--store", store) == 2
    err = capsys.readouterr().err
    assert f"{error}: is a Polygon error response" in err and "NOT_AUTHORIZED: Upgrade" in err
    assert "Traceback" not in err
    assert not store.exists()
