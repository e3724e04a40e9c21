"""The shortcuts in the governor's types give what the plain calls give: epoch seconds equal to
``datetime.timestamp()`` in every zone and fold, and journal payloads of plain strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.risk.types import (
    AccountState,
    Check,
    Decision,
    Directive,
    MarketMark,
    Reason,
    SessionPhase,
    TradingState,
    Verdict,
    _epoch,
)

_ZONES = st.sampled_from(
    [
        ZoneInfo("America/New_York"),
        ZoneInfo("Europe/London"),
        ZoneInfo("Australia/Lord_Howe"),  # a 30-minute DST shift
        UTC,
        timezone(timedelta(hours=-3, minutes=-30)),
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
    _ZONES,
    st.integers(0, 1),
)
def test_epoch_seconds_are_the_timestamp_in_every_zone_and_fold(
    naive: datetime, zone: timezone | ZoneInfo, fold: int
) -> None:
    at = naive.replace(tzinfo=zone, fold=fold)
    assert _epoch(at, "t") == at.timestamp()
    assert MarketMark(1.0, at).at_ts == at.timestamp()


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**62), 2**62), _ZONES)
def test_epoch_seconds_of_a_pandas_timestamp_are_its_timestamp(
    ns: int, zone: timezone | ZoneInfo
) -> None:
    at = pd.Timestamp(ns, tz=zone)
    assert _epoch(at, "t") == at.timestamp()


def test_a_naive_instant_is_still_refused() -> None:
    with pytest.raises(ValueError, match="has no timezone"):
        _epoch(datetime(2024, 3, 5, 11, 0), "AccountState.now")
    with pytest.raises(ValueError, match="has no timezone"):
        AccountState(now=datetime(2024, 3, 5, 11, 0), cash=0.0, positions={})


def _plain(value: object) -> bool:
    """True when every string in ``value`` is a plain str (no enum member)."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return not isinstance(value, str) or type(value) is str


@pytest.mark.parametrize("binding", [None, *Check])
def test_payloads_hold_the_enum_values_as_plain_strings(binding: Check | None) -> None:
    at = datetime(2024, 3, 5, 11, 0, tzinfo=UTC)
    for decision in Decision:
        for state in TradingState:
            v = Verdict(
                decision=decision,
                intent_id="i",
                decision_id="d",
                model_id="m",
                symbol="NVDA",
                requested=1.0,
                approved=1.0,
                price=100.0,
                position_before=0.0,
                reasons=(Reason(binding or Check.NO_PRICE, "x {}", (1,)),),
                binding=binding,
                state=state,
                stage="paper",
                at=at,
            )
            event = v.as_event()
            assert event["decision"] == decision.value and event["state"] == state.value
            assert event["binding"] == (None if binding is None else binding.value)
            assert event["reasons"][0]["check"] == (binding or Check.NO_PRICE).value
            assert _plain(event)
    for phase in SessionPhase:
        d = Directive(at=at, state=TradingState.RUNNING, phase=phase)
        event = d.as_event()
        assert event["phase"] == phase.value and event["state"] == "RUNNING"
        assert _plain(event)
