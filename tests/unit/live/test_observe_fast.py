"""The live observation's hot path gives the values of the slower general code, to the bit."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.brokers.base import MinuteBar
from stairways.data.features import FEATURE_NAMES, OnlineFeatures, compute_features, time_ns
from stairways.data.normalise import Normaliser
from stairways.data.settings import SyntheticConfig
from stairways.data.synthetic import generate
from stairways.env.settings import EnvConfig
from stairways.errors import DataValidationError
from stairways.live import observe
from stairways.live.observe import session_minutes
from stairways.market import costs
from stairways.market.settings import CostConfig, MarketConfig

NY = ZoneInfo("America/New_York")


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2040, 1, 1),
        timezones=st.sampled_from([UTC, NY, ZoneInfo("Asia/Tokyo")]),
    )
)
def test_time_ns_equals_pandas_for_aware_datetimes(ts: datetime) -> None:
    assert time_ns(ts) == int(pd.Timestamp(ts).tz_convert("UTC").as_unit("ns").value)
    assert time_ns(pd.Timestamp(ts)) == time_ns(ts)


def test_time_ns_refuses_a_naive_time() -> None:
    with pytest.raises(DataValidationError, match="no time zone"):
        time_ns(datetime(2024, 1, 3, 9, 30), "NVDA")


@pytest.mark.parametrize(
    "day",
    [date(2024, 3, 8), date(2024, 3, 11), date(2024, 11, 1), date(2024, 11, 4), date(2023, 11, 24)],
)
def test_bar_start_equals_pandas_arithmetic_around_clock_changes_and_half_days(day: date) -> None:
    open_, n = session_minutes(day)
    start = open_.to_pydatetime()
    for k in range(n):
        want = (open_ + pd.Timedelta(minutes=k)).to_pydatetime()
        got = start + timedelta(minutes=k)
        assert got == want and got.isoformat() == want.isoformat()


def test_the_observers_sigma_divisor_is_the_cost_models() -> None:
    assert observe._LN2_FACTOR == costs._LN2_FACTOR


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_advance_equals_update_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    by_dict, by_floats = OnlineFeatures("NVDA"), OnlineFeatures("NVDA")
    t = datetime(2024, 1, 3, 9, 30, tzinfo=NY)
    close = 100.0
    for k in range(60):
        close *= float(np.exp(rng.normal(0, 0.002)))
        high, low = close * (1 + abs(rng.normal(0, 0.001))), close * (1 - abs(rng.normal(0, 0.001)))
        vol = float(rng.integers(0, 5000))
        vwap = None if k % 7 == 3 else (high + low + close) / 3.0
        ts = t + timedelta(minutes=k)
        a = by_dict.update(
            {"ts": ts, "high": high, "low": low, "close": close, "volume": vol, "vwap": vwap}
        )
        b = by_floats.advance(
            time_ns(ts), high, low, close, vol, float("nan") if vwap is None else vwap
        )
        assert a.tobytes() == b.tobytes()
    assert by_dict.state.tobytes() == by_floats.state.tobytes()


def test_advance_refuses_a_bad_price_naming_the_field() -> None:
    f = OnlineFeatures("MSFT")
    ts = time_ns(datetime(2024, 1, 3, 9, 30, tzinfo=NY))
    with pytest.raises(DataValidationError, match=r"MSFT: row 0 .* has low -1\.0"):
        f.advance(ts, 10.0, -1.0, 10.0, 5.0, float("nan"))
    with pytest.raises(DataValidationError, match="has volume nan"):
        f.advance(ts, 10.0, 9.0, 10.0, float("nan"), float("nan"))


def _observer_case(seed: int, impact_sigma: float | None):  # type: ignore[no-untyped-def]
    """A warmed-up observer of a synthetic session, its bars, and the session's minutes."""
    symbols = ("NVDA", "MSFT")
    day = date(2024, 1, 5)
    bars = generate(SyntheticConfig(seed=seed, start=date(2024, 1, 3), end=day), symbols)
    local_day = bars["ts"].dt.tz_convert(NY).dt.date
    history, session = bars[local_day < day], bars[local_day == day]
    rng = np.random.default_rng(seed)
    f = len(FEATURE_NAMES)
    normaliser = Normaliser(
        symbols=symbols,
        feature_names=FEATURE_NAMES,
        mean=rng.normal(0.0, 0.01, (2, f)),
        std=np.abs(rng.normal(0.0, 0.01, (2, f))) + 1e-4,
        clip=float(rng.choice([0.5, 5.0])),
        split="train",
        start="2024-01-03",
        end="2024-01-04",
        n_obs=(1, 1),
    )
    market = MarketConfig(costs=CostConfig(impact_sigma=impact_sigma))
    obs = observe.SessionObserver(symbols, normaliser, market, EnvConfig(), day)
    obs.warm_up(history)
    minutes, vwaps = [], []
    for ts, group in session.groupby("ts", sort=True):
        rows = {r.symbol: r for r in group.itertuples()}
        minutes.append(
            {
                s: MinuteBar(s, ts.to_pydatetime(), r.open, r.high, r.low, r.close, float(r.volume))
                for s, r in rows.items()
            }
        )
        vwaps.append({s: r.vwap for s, r in rows.items() if not pd.isna(r.vwap)})
    return symbols, normaliser, obs, bars, day, minutes, vwaps


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**20), st.sampled_from([None, 0.004]))
def test_absorb_equals_the_offline_features_normaliser_and_cost_model_bit_for_bit(
    seed: int, impact_sigma: float | None
) -> None:
    symbols, normaliser, obs, bars, day, minutes, vwaps = _observer_case(seed, impact_sigma)
    for k, (minute, vwap) in enumerate(zip(minutes, vwaps, strict=True)):
        assert obs.absorb(minute, vwap) == k
        assert obs.bar_start(k) == minute[symbols[0]].start
    n = len(minutes)
    local_day = bars["ts"].dt.tz_convert(NY).dt.date
    for j, s in enumerate(symbols):
        group = bars[bars["symbol"] == s].reset_index(drop=True)
        raw, _ = compute_features(group)
        in_session = (local_day[bars["symbol"] == s] == day).to_numpy()
        raw = raw[in_session]
        sess = group[in_session]
        assert obs.raw[:n, j].tobytes() == raw.tobytes()
        assert obs.feats[0, :n, j].tobytes() == normaliser.transform_ticker(s, raw).tobytes()
        m = obs.mkt[0, :n, j]
        want_sigma = (
            costs.parkinson_sigma(sess["high"].to_numpy(), sess["low"].to_numpy())
            if impact_sigma is None
            else np.full(n, impact_sigma)
        )
        assert m[:, observe.kn.M_SIGMA].tobytes() == want_sigma.tobytes()
        assert m[:, observe.kn.M_OPEN].tobytes() == sess["open"].to_numpy(np.float64).tobytes()
        assert m[:, observe.kn.M_CLOSE].tobytes() == sess["close"].to_numpy(np.float64).tobytes()
        assert m[:, observe.kn.M_VOLUME].tobytes() == sess["volume"].to_numpy(np.float64).tobytes()
    with pytest.raises(DataValidationError, match="arrived twice"):
        obs.absorb(minutes[0], vwaps[0])


def test_observation_hash_is_the_sha256_of_the_float32_bytes() -> None:
    rng = np.random.default_rng(3)
    x64 = rng.normal(size=26)
    x32 = x64.astype(np.float32)
    want = hashlib.sha256(x32.tobytes()).hexdigest()[:32]
    assert observe.observation_hash(x32) == want
    assert observe.observation_hash(x64) == want  # cast first, as before
    assert observe.observation_hash(np.repeat(x32, 2)[::2]) == want  # a strided view
