"""Canonical payloads and the MAC of a record."""

from __future__ import annotations

import hashlib
import hmac
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
    record_content,
    record_mac,
    to_us,
)
from stairways.journal.store import EXCHANGE_TZ
from stairways.security.secret import Secret

KEY_BYTES = b"k" * 32
KEY = MacKey(KEY_BYTES)


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


# Computed by the encoder and MAC before record_content wrote the MAC's text out (json.dumps of
# the whole array, hmac.new): the format on disk must not move.
_PINNED_PAYLOAD = {
    "session_id": "S1",
    "price": 101.25,
    "qty": -3,
    "note": 'caf\u00e9 "q" \\ \u2028',
    "bars": {"NVDA": [1.0, 2.5, None]},
    "ok": True,
}
_PINNED_TEXT = (
    '{"bars":{"NVDA":[1.0,2.5,null]},"note":"caf\\u00e9 \\"q\\" \\\\ \\u2028","ok":true,'
    '"price":101.25,"qty":-3,"session_id":"S1"}'
)
_PINNED_GENESIS = "bd7398151f80fc2bdb88353f0ed32ee238d71b99c10d6abe319f5bdaf63f909f"
_PINNED_MAC_1 = "e1aa33c570d9d8e51ae4dbc1784394987ec108f1aba8a4b4b6f191953986f5ad"
_PINNED_MAC_2 = "f4422c4e6bf1c00d3d5a21d49a105f3818c1892d7195ba94e68e99b7e6e99d1a"


def test_payload_text_genesis_and_macs_are_the_former_encoders_byte_for_byte() -> None:
    text = encode_payload(_PINNED_PAYLOAD)
    assert text == _PINNED_TEXT
    genesis = genesis_mac(KEY, "0123456789abcdef0123456789abcdef")
    assert genesis == _PINNED_GENESIS
    mac1 = record_mac(KEY, 1704205800000000, "decision", text, genesis)
    assert mac1 == _PINNED_MAC_1
    assert record_mac(KEY, -1, "fill", "{}", mac1) == _PINNED_MAC_2


def _former_content(ts_us: object, kind: object, payload: object, prev: object) -> str:
    """The MAC's text as the format defines it (what the former code computed)."""
    return json.dumps([1, ts_us, kind, payload, prev], separators=(",", ":"), ensure_ascii=True)


texts = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)


@given(
    st.integers(-(2**63), 2**63 - 1),
    texts,
    st.one_of(texts, st.dictionaries(st.text(max_size=4), st.integers(), max_size=3).map(str)),
    texts,
)
def test_record_content_is_the_json_array_the_format_defines(
    ts_us: int, kind: str, payload: str, prev: str
) -> None:
    content = record_content(ts_us, kind, payload, prev)
    assert content == _former_content(ts_us, kind, payload, prev)
    expected = hmac.new(KEY_BYTES, content.encode("ascii"), hashlib.sha256).hexdigest()
    assert record_mac(KEY, ts_us, kind, payload, prev) == expected


@given(
    st.dictionaries(
        st.text(max_size=6),
        st.recursive(
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=False, allow_infinity=False),
                texts,
            ),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
            max_leaves=12,
        ),
        max_size=6,
    )
)
def test_stored_payload_text_is_what_json_dumps_gives(payload: dict[str, object]) -> None:
    assert encode_payload(payload) == json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )


@pytest.mark.parametrize(
    "row",
    [
        (True, "fill", "{}", "a" * 64),  # a bool read where the time should be
        (5, None, "{}", "a" * 64),
        (5, "fill", 3.5, "a" * 64),
        (5, "fill", "{}", b"raw"),
    ],
)
def test_record_content_of_other_types_is_json_dumps_or_its_refusal(row: tuple) -> None:
    try:
        expected: str | None = _former_content(*row)
    except TypeError:
        expected = None
    if expected is None:
        with pytest.raises(TypeError):
            record_content(*row)
    else:
        assert record_content(*row) == expected
