"""Canonical payloads and the MAC of a record."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.errors import InputError
from stairways.journal.chain import (
    MIN_KEY_LENGTH,
    MacKey,
    encode_payload,
    from_us,
    genesis_mac,
    key_check,
    record_mac,
    to_us,
)
from stairways.journal.store import EXCHANGE_TZ
from stairways.security.secret import Secret

KEY = MacKey(b"k" * 32)


class Side(Enum):
    BUY = "buy"


def test_payload_is_canonical_whatever_the_key_order() -> None:
    a = encode_payload({"b": 1, "a": {"y": [1, 2.5], "x": "é"}})
    b = encode_payload({"a": {"x": "é", "y": (1, 2.5)}, "b": 1})
    assert a == b == '{"a":{"x":"\\u00e9","y":[1,2.5]},"b":1}'


def test_payload_converts_dates_decimals_enums_and_numpy_numbers() -> None:
    ts = datetime(2025, 3, 3, 9, 30, tzinfo=EXCHANGE_TZ)
    text = encode_payload(
        {
            "ts": ts,
            "day": date(2025, 3, 3),
            "fee": Decimal("0.35"),
            "side": Side.BUY,
            "qty": np.int64(3),
            "px": np.float64(101.25),
        }
    )
    assert json.loads(text) == {
        "ts": "2025-03-03T09:30:00-05:00",
        "day": "2025-03-03",
        "fee": "0.35",
        "side": "buy",
        "qty": 3,
        "px": 101.25,
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"x": float("nan")}, "payload.x is nan"),
        ({"x": [1, float("inf")]}, r"payload.x\[1\] is inf"),
        ({"when": datetime(2025, 3, 3, 9, 30)}, "payload.when is a datetime without a timezone"),
        ({"k": Secret("a-secret-in-a-payload")}, "payload.k holds a Secret"),
        ({"nested": {1: "a"}}, "is not text"),
        ({"obj": object()}, "payload.obj holds a object"),
    ],
)
def test_payload_refusals_name_the_key(payload: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        encode_payload(payload)


def test_payload_holding_a_known_secret_value_is_refused_without_showing_it() -> None:
    value = Secret("known-secret-value-xyz").reveal()
    with pytest.raises(InputError) as info:
        encode_payload({"note": f"the key is {value}"})
    assert value not in str(info.value)


def test_key_shorter_than_the_minimum_is_refused_and_never_shown() -> None:
    with pytest.raises(InputError, match="--generate"):
        MacKey(b"x" * (MIN_KEY_LENGTH - 1))
    assert "k" * 32 not in repr(KEY)


def test_mac_depends_on_every_field_and_the_key() -> None:
    base = record_mac(KEY, 1, "fill", '{"fee":1}', "0" * 64)
    assert len(base) == 64
    assert record_mac(KEY, 1, "fill", '{"fee":1}', "0" * 64) == base
    assert record_mac(KEY, 2, "fill", '{"fee":1}', "0" * 64) != base
    assert record_mac(KEY, 1, "order", '{"fee":1}', "0" * 64) != base
    assert record_mac(KEY, 1, "fill", '{"fee":2}', "0" * 64) != base
    assert record_mac(KEY, 1, "fill", '{"fee":1}', "1" * 64) != base
    assert record_mac(MacKey(b"j" * 32), 1, "fill", '{"fee":1}', "0" * 64) != base
    assert genesis_mac(KEY, "a") != genesis_mac(KEY, "b")
    assert key_check(KEY, "a") != genesis_mac(KEY, "a")


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, EXCHANGE_TZ]),
    )
)
def test_timestamps_round_trip_to_the_microsecond(ts: datetime) -> None:
    back = from_us(to_us(ts), EXCHANGE_TZ)
    # Same instant (a wall time skipped by DST comes back as the real wall time).
    assert back.astimezone(UTC) == ts.astimezone(UTC)
    assert back.tzinfo is EXCHANGE_TZ


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(InputError, match="no timezone"):
        to_us(datetime(2025, 3, 3, 9, 30))
    assert to_us(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=7)) == 7
