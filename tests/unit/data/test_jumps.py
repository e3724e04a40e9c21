"""The per-bar jump check: spikes and level jumps found, real synthetic jumps left alone."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.data import calendar as cal
from stairways.data.importing import ImportMode, ImportOptions, import_files
from stairways.data.jumps import PRICE_JUMP, PRICE_SPIKE, find_price_jumps
from stairways.data.settings import JumpCheckConfig, SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate
from stairways.errors import DataValidationError

HEADER = "symbol,ts,open,high,low,close,volume"


def session_bars(
    closes: list[float], day: str = "2023-11-22", symbol: str = "NVDA"
) -> pd.DataFrame:
    """One bar per minute from the open with the given closes (open = previous close)."""
    minutes = cal.session_minutes(day, day)[: len(closes)]
    close = np.asarray(closes, dtype=np.float64)
    opens = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": minutes,
            "open": opens,
            "high": np.maximum(opens, close),
            "low": np.minimum(opens, close),
            "close": close,
            "volume": 100.0,
        }
    )


def plant(bars: pd.DataFrame, at: int, price: float) -> pd.DataFrame:
    """A bad bar: every price of bar ``at`` set to ``price`` (its neighbours untouched)."""
    out = bars.copy()
    out.loc[at, ["open", "high", "low", "close"]] = price
    return out


def wiggle(n: int, level: float = 860.0, seed: int = 0) -> list[float]:
    """``n`` closes moving a few basis points a minute around ``level``."""
    rng = np.random.default_rng(seed)
    return list(level * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n))))


def write_csv(path: Path, bars: pd.DataFrame) -> Path:
    rows = [
        f"{r.symbol},{pd.Timestamp(r.ts).strftime('%Y-%m-%dT%H:%M:%SZ')},{r.open!r},{r.high!r},"
        f"{r.low!r},{r.close!r},{r.volume!r}"
        for r in bars.itertuples(index=False)
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_defaults_are_pinned() -> None:
    cfg = JumpCheckConfig()
    assert cfg.enabled is True
    assert (cfg.max_log_return, cfg.scale_multiple, cfg.min_log_return) == (0.25, 100.0, 0.05)
    assert (cfg.scale_window_bars, cfg.scale_min_bars) == (390, 30)


def test_limits_that_contradict_each_other_are_refused_at_load() -> None:
    with pytest.raises(ValueError, match=r"min_log_return 0\.3 is above max_log_return 0\.25"):
        JumpCheckConfig(min_log_return=0.3)
    with pytest.raises(ValueError, match="scale_min_bars 50 is above scale_window_bars 40"):
        JumpCheckConfig(scale_window_bars=40, scale_min_bars=50)


def test_a_print_ten_times_the_price_within_a_minute_is_a_spike_and_only_that_bar() -> None:
    closes = wiggle(120)
    closes[59] = 860.0
    closes[61] = 861.0
    found = find_price_jumps(plant(session_bars(closes), 60, 8606.0))
    assert found["position"].tolist() == [60]
    (row,) = found.to_dict("records")
    assert row["rule"] == PRICE_SPIKE and row["field"] == "close"
    assert row["reference"] == pytest.approx(860.0)
    assert row["log_move"] == pytest.approx(math.log(8606.0 / 860.0))


def test_a_level_that_moves_and_stays_is_one_jump_not_a_cascade() -> None:
    closes = wiggle(100) + [c * 2.0 for c in wiggle(100, seed=1)]
    found = find_price_jumps(session_bars(closes))
    assert found["position"].tolist() == [100]
    assert found["rule"].tolist() == [PRICE_JUMP]


def test_a_spike_in_the_first_bar_of_a_session_is_judged_against_the_next_bars() -> None:
    closes = wiggle(50)
    found = find_price_jumps(plant(session_bars(closes), 0, closes[1] * 10.0))
    assert found["position"].tolist() == [0]
    assert found["rule"].tolist() == [PRICE_SPIKE]


def test_a_high_far_away_while_the_close_is_normal_is_a_spike_on_the_high() -> None:
    bars = session_bars(wiggle(80))
    bars.loc[40, "high"] = bars.loc[40, "close"] * 1.5
    found = find_price_jumps(bars)
    assert found["position"].tolist() == [40]
    assert found["field"].tolist() == ["high"]


def test_an_overnight_gap_is_never_a_jump() -> None:
    day1 = session_bars(wiggle(60), day="2023-11-21")
    day2 = session_bars(wiggle(60, level=430.0, seed=3), day="2023-11-22")  # half the price
    assert find_price_jumps(pd.concat([day1, day2], ignore_index=True)).empty


def test_the_check_can_be_switched_off() -> None:
    closes = wiggle(60)
    bars = plant(session_bars(closes), 30, closes[29] * 10.0)
    assert len(find_price_jumps(bars)) == 1
    assert find_price_jumps(bars, JumpCheckConfig(enabled=False)).empty


def test_positions_refer_to_the_caller_row_order() -> None:
    closes = wiggle(60)
    bars = plant(session_bars(closes), 30, closes[29] * 10.0)
    shuffled = bars.sample(frac=1.0, random_state=7)
    found = find_price_jumps(shuffled)
    (pos,) = found["position"].tolist()
    assert shuffled.iloc[pos]["close"] == pytest.approx(closes[29] * 10.0)


@given(
    seed=st.integers(0, 2**32 - 1),
    at=st.integers(1, 200),
    factor=st.sampled_from([0.1, 0.5, 1.5, 3.0, 10.0]),
)
@settings(max_examples=40, deadline=None)
def test_one_planted_spike_is_found_exactly_where_it_is_planted(
    seed: int, at: int, factor: float
) -> None:
    closes = wiggle(240, seed=seed)
    bars = session_bars(closes)
    assert find_price_jumps(bars).empty
    found = find_price_jumps(plant(bars, at, closes[at - 1] * factor))
    assert found["position"].tolist() == [at]
    assert found["rule"].tolist() == [PRICE_SPIKE]


@pytest.mark.parametrize(
    "synthetic",
    [SyntheticConfig(), SyntheticConfig(seed=1, signal_strength=0.0)],
    ids=["default-market", "no-signal-seed-1"],
)
def test_the_synthetic_market_and_its_real_jumps_never_trip_the_defaults(
    synthetic: SyntheticConfig,
) -> None:
    bars = generate(synthetic)
    assert len(bars) == 585_180
    assert find_price_jumps(bars).empty
    # Its jumps are there and large: a check ten times stricter finds them.
    strict = JumpCheckConfig(scale_multiple=10.0, min_log_return=0.005)
    assert len(find_price_jumps(bars, strict)) > 50


def _day_with_spike(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    closes = wiggle(390)
    closes[199] = 860.0
    closes[201] = 860.5
    bars = plant(session_bars(closes), 200, 8606.0)
    return write_csv(tmp_path / "spiky.csv", bars), bars


def test_strict_import_refuses_naming_file_line_and_rule_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path, _ = _day_with_spike(tmp_path)
    store = tmp_path / "s.duckdb"
    with pytest.raises(DataValidationError) as err:
        import_files([path], store)
    message = str(err.value)
    # Bar 201 of the session is on line 202 (the header is line 1).
    assert "spiky.csv, line 202: close 8606 is 10.01x the reference close 860" in message
    assert "[rule price_spike]" in message and "data.jumps" in message
    assert not store.exists()


def test_repair_import_drops_the_spike_reports_it_and_keeps_its_neighbours(
    tmp_path: Path,
) -> None:
    path, bars = _day_with_spike(tmp_path)
    store = tmp_path / "s.duckdb"
    report = tmp_path / "report.csv"
    summary = import_files([path], store, ImportOptions(mode=ImportMode.REPAIR), report_path=report)
    assert summary.written.rows_inserted == 389
    assert [(i.row, i.rule) for i in summary.issues] == [(202, PRICE_SPIKE)]
    text = report.read_text()
    assert "spiky.csv,line,202,price_spike," in text and "isolated bad print" in text
    with BarStore(store, read_only=True) as s:
        stored = s.read_bars(["NVDA"])
    assert bars["ts"].iloc[200] not in set(stored["ts"])
    assert {bars["ts"].iloc[199], bars["ts"].iloc[201]} <= set(stored["ts"])


def test_a_spike_on_the_boundary_of_two_files_is_found_in_the_right_file(tmp_path: Path) -> None:
    closes = wiggle(120)
    bars = plant(session_bars(closes), 60, closes[59] * 10.0)
    first = write_csv(tmp_path / "a.csv", bars.iloc[:61])
    second = write_csv(tmp_path / "b.csv", bars.iloc[61:])
    with pytest.raises(DataValidationError, match=r"a\.csv, line 62: close .*price_spike"):
        import_files([first, second], tmp_path / "s.duckdb")


def test_the_configured_limits_decide(tmp_path: Path) -> None:
    closes = wiggle(120)
    bars = plant(session_bars(closes), 60, closes[59] * 1.08)  # 7.7 % in one minute, then back
    path = write_csv(tmp_path / "eight.csv", bars)
    store = tmp_path / "s.duckdb"
    assert import_files([path], store).written.rows_inserted == 120  # within the defaults
    tight = ImportOptions(jumps=JumpCheckConfig(min_log_return=0.02, scale_multiple=20.0))
    with pytest.raises(DataValidationError, match="line 62"):
        import_files([path], tmp_path / "t.duckdb", tight)
