"""The synthetic market: structure, reproducibility, and the planted signal (on and off)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stairways.cli.main import app
from stairways.data import calendar as cal
from stairways.data.panel import SessionPanel
from stairways.data.panel_builder import panel_from_bars
from stairways.data.schema import BAR_COLUMNS, conform
from stairways.data.settings import DataConfig, DateRange, SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate
from stairways.errors import InputError

QUARTER = SyntheticConfig(start=date(2023, 10, 2), end=date(2023, 12, 29))


@pytest.fixture(scope="module")
def quarter() -> pd.DataFrame:
    return generate(QUARTER)


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return generate(SyntheticConfig())


def _split(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    g = frame[frame["symbol"] == symbol].reset_index(drop=True)
    local = g["ts"].dt.tz_convert(cal.EXCHANGE_TZ)
    g["day"] = local.dt.date
    g["k"] = g.groupby("day").cumcount()
    return g


def _intraday_returns(g: pd.DataFrame) -> np.ndarray:
    """Close-to-close log returns, NaN at each session's first bar (which holds the gap)."""
    r = np.log(g["close"]).diff().to_numpy(copy=True)
    r[(g["k"] == 0).to_numpy()] = np.nan
    return r


def test_full_default_range_has_753_sessions_and_canonical_frame(full: pd.DataFrame) -> None:
    assert tuple(full.columns) == BAR_COLUMNS
    pd.testing.assert_frame_equal(full, conform(full))
    expected = len(cal.session_minutes("2022-01-03", "2024-12-31"))
    assert len(full) == 2 * expected
    nvda = _split(full, "NVDA")
    assert nvda["day"].nunique() == 753
    per_day = nvda.groupby("day").size()
    assert per_day[date(2023, 11, 24)] == 210
    assert per_day[date(2023, 11, 22)] == 390


def test_price_levels_are_in_the_documented_ranges(full: pd.DataFrame) -> None:
    nvda = full.loc[full["symbol"] == "NVDA", "close"]
    msft = full.loc[full["symbol"] == "MSFT", "close"]
    assert nvda.min() > 8.0 and nvda.max() < 180.0  # split-adjusted, about $11-$150
    assert msft.min() > 190.0 and msft.max() < 500.0  # about $220-$450
    nvda_2024 = full[(full["symbol"] == "NVDA") & (full["ts"].dt.year == 2024)]["close"]
    nvda_2022 = full[(full["symbol"] == "NVDA") & (full["ts"].dt.year == 2022)]["close"]
    assert nvda_2024.median() > 2.5 * nvda_2022.median()


def test_ohlc_vwap_volume_and_trade_count_are_consistent(quarter: pd.DataFrame) -> None:
    f = quarter
    assert (f["low"] <= f[["open", "close"]].min(axis=1)).all()
    assert (f["high"] >= f[["open", "close"]].max(axis=1)).all()
    assert (f["low"] > 0).all()
    assert ((f["vwap"] >= f["low"]) & (f["vwap"] <= f["high"])).all()
    assert (f["volume"] >= 1).all() and (f["volume"] == f["volume"].round()).all()
    assert (f["trade_count"] >= 1).all()
    cents = f[["open", "high", "low", "close"]].to_numpy() * 100
    assert np.allclose(cents, np.round(cents), atol=1e-6)
    # High and low come from an intrabar path, so most bars have wicks beyond open and close.
    wick = (f["high"] > f[["open", "close"]].max(axis=1)).mean()
    assert wick > 0.5


def test_same_seed_reproduces_bars_and_another_seed_differs(quarter: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(quarter, generate(QUARTER))
    other = generate(QUARTER.model_copy(update={"seed": QUARTER.seed + 1}))
    assert not np.allclose(other["close"].to_numpy(), quarter["close"].to_numpy())


def test_asking_for_one_ticker_returns_the_same_bars_as_asking_for_both(
    quarter: pd.DataFrame,
) -> None:
    alone = generate(QUARTER, symbols=("NVDA",))
    both = quarter[quarter["symbol"] == "NVDA"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, both)


def test_unknown_ticker_is_refused_with_the_known_ones_named() -> None:
    with pytest.raises(InputError, match=r"NVDA, MSFT"):
        generate(QUARTER, symbols=("AAPL",))


def test_volume_and_absolute_returns_are_u_shaped_within_the_session(
    quarter: pd.DataFrame,
) -> None:
    for symbol in ("NVDA", "MSFT"):
        g = _split(quarter, symbol)
        g = g[g.groupby("day")["k"].transform("size") == 390]
        g["absr"] = np.abs(_intraday_returns(g))
        by_k = g.groupby("k")[["volume", "absr"]].mean()
        midday = by_k.loc[150:239].mean()
        first = by_k.loc[1:30].mean()
        last = by_k.loc[360:389].mean()
        assert first["volume"] > 1.5 * midday["volume"]
        assert last["volume"] > 1.5 * midday["volume"]
        assert first["absr"] > 1.4 * midday["absr"]
        assert last["absr"] > 1.1 * midday["absr"]


def test_one_minute_returns_of_the_two_tickers_correlate_between_half_and_seven_tenths(
    quarter: pd.DataFrame,
) -> None:
    rn = _intraday_returns(_split(quarter, "NVDA"))
    rm = _intraday_returns(_split(quarter, "MSFT"))
    ok = np.isfinite(rn) & np.isfinite(rm)
    corr = np.corrcoef(rn[ok], rm[ok])[0, 1]
    assert 0.5 <= corr <= 0.7


def test_deseasonalised_absolute_returns_are_autocorrelated(quarter: pd.DataFrame) -> None:
    g = _split(quarter, "MSFT")
    absr = pd.Series(np.abs(_intraday_returns(g)))
    # Divide out the intraday U-shape so that what remains is clustering, not the clock.
    seasonal = absr.groupby(g["k"]).transform("mean")
    x = (absr / seasonal).to_numpy()
    for lag in (1, 10):
        a, b = x[:-lag], x[lag:]
        same_day = (g["day"].to_numpy()[:-lag] == g["day"].to_numpy()[lag:]) & np.isfinite(a)
        same_day &= np.isfinite(b)
        assert np.corrcoef(a[same_day], b[same_day])[0, 1] > 0.05


def test_volatility_changes_regime_across_sessions(full: pd.DataFrame) -> None:
    g = _split(full, "MSFT")
    r = pd.Series(_intraday_returns(g))
    daily = r.groupby(g["day"]).std()
    assert daily.quantile(0.9) > 1.6 * daily.quantile(0.1)


def test_sessions_open_with_overnight_gaps_and_returns_have_jumps(full: pd.DataFrame) -> None:
    g = _split(full, "NVDA")
    prev_close = g["close"].shift()
    first = g["k"] == 0
    gaps = np.log(g.loc[first, "open"] / prev_close[first]).dropna()
    r = _intraday_returns(g)
    r = r[np.isfinite(r)]
    assert gaps.std() > 5 * r.std()
    excess_kurtosis = np.mean((r - r.mean()) ** 4) / r.var() ** 2 - 3
    assert excess_kurtosis > 3


def test_signal_strength_changes_prices_but_not_volumes(quarter: pd.DataFrame) -> None:
    off = generate(QUARTER.model_copy(update={"signal_strength": 0.0}))
    assert np.array_equal(off["volume"].to_numpy(), quarter["volume"].to_numpy())
    msft = quarter["symbol"] == "MSFT"
    # MSFT leads and is not moved by the lead-lag signal; NVDA follows and is.
    assert np.array_equal(off.loc[msft, "close"].to_numpy(), quarter.loc[msft, "close"].to_numpy())
    assert not np.array_equal(
        off.loc[~msft, "close"].to_numpy(), quarter.loc[~msft, "close"].to_numpy()
    )


# ------------------------------------------------------------------ the planted signal
HOLD = 10
HALF_SPREAD = 1e-4
PER_SHARE = 0.0035
MIN_COMMISSION = 0.35
NOTIONAL = 5_000.0


def _edge_panel(strength: float, signal: str = "lead_lag") -> SessionPanel:
    """2024 as the test split, normalised with statistics fitted on 2023Q4 only."""
    syn = SyntheticConfig(
        start=date(2023, 10, 2), end=date(2024, 12, 31), signal_strength=strength, signal=signal
    )
    cfg = DataConfig(
        splits={
            "train": DateRange(start=date(2023, 10, 2), end=date(2023, 12, 29)),
            "test": DateRange(start=date(2024, 1, 2), end=date(2024, 12, 31)),
        }
    )
    return panel_from_bars(generate(syn), cfg, "test", synthetic=True)


def _rule_pnl(panel: SessionPanel, leader: str, feature: str, sign: float) -> dict[str, float]:
    """Trade NVDA with the sign of a feature at bar t, fill at t+1's open, exit HOLD bars later.

    Costs: a 1 bp half-spread on each fill plus $0.0035 a share (at least $0.35) per fill, on
    positions of about $5,000 in whole shares.
    """
    nvda = panel.symbols.index("NVDA")
    lead = panel.symbols.index(leader)
    f = panel.feature_names.index(feature)
    gross, net = [], []
    for s in range(panel.n_sessions):
        length = int(panel.lengths[s])
        for t in range(HOLD, length - HOLD - 1, HOLD):
            side = sign * np.sign(panel.features[s, t, lead, f])
            if side == 0:
                continue
            entry = panel.open[s, t + 1, nvda]
            exit_ = panel.open[s, t + 1 + HOLD, nvda]
            shares = np.floor(NOTIONAL / entry)
            g = side * shares * (exit_ - entry)
            cost = HALF_SPREAD * shares * (entry + exit_) + 2 * max(
                MIN_COMMISSION, PER_SHARE * shares
            )
            gross.append(g)
            net.append(g - cost)
    g_arr, n_arr = np.array(gross), np.array(net)
    return {
        "trades": len(n_arr),
        "gross": float(g_arr.sum()),
        "net": float(n_arr.sum()),
        "gross_t": float(g_arr.mean() / g_arr.std() * np.sqrt(len(g_arr))),
        "net_t": float(n_arr.mean() / n_arr.std() * np.sqrt(len(n_arr))),
    }


def test_lead_lag_rule_on_features_earns_net_of_costs_in_2024_when_signal_is_on() -> None:
    panel = _edge_panel(1.0)
    assert panel.n_sessions == 252
    result = _rule_pnl(panel, "MSFT", "ret_5", 1.0)
    assert result["trades"] > 8000
    assert result["net"] > 5_000.0
    assert result["net_t"] > 4.0


def test_lead_lag_rule_earns_nothing_beyond_costs_when_signal_is_off() -> None:
    result = _rule_pnl(_edge_panel(0.0), "MSFT", "ret_5", 1.0)
    assert abs(result["gross_t"]) < 3.0
    assert result["net"] < 0.0


def test_vwap_reversion_rule_earns_when_that_signal_is_planted_and_not_otherwise() -> None:
    on = _rule_pnl(_edge_panel(1.0, "vwap_reversion"), "NVDA", "vwap_gap", -1.0)
    off = _rule_pnl(_edge_panel(0.0, "vwap_reversion"), "NVDA", "vwap_gap", -1.0)
    assert on["net"] > 0.0 and on["net_t"] > 3.0
    assert abs(off["gross_t"]) < 3.0 and off["net"] < 0.0


def test_synth_command_writes_labelled_synthetic_bars_with_seed_and_signal(tmp_path: Path) -> None:
    store_path = tmp_path / "bars.duckdb"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "synth",
            "--store",
            str(store_path),
            "--seed",
            "11",
            "--signal-strength",
            "0.5",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-05",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "seed 11" in result.output and "1,560 bars" in result.output
    with BarStore(store_path, read_only=True) as store:
        infos = {i.symbol: i for i in store.symbols()}
        assert set(infos) == {"NVDA", "MSFT"}
        assert store.is_synthetic(["NVDA", "MSFT"])
        details = infos["NVDA"].details
        assert details["seed"] == 11 and details["signal_strength"] == 0.5
        assert details["signal"] == "lead_lag" and infos["NVDA"].sessions == 4
