"""The journal's canonical encoding: the built-in types' fast path gives the general path's
text for any payload (the MAC is over that text)."""

from __future__ import annotations

import hmac
import json
import math
import numbers
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.errors import InputError
from stairways.journal import chain
from stairways.journal.chain import MacKey, encode_payload, record_mac, record_macs


class Side(Enum):
    BUY = "buy"
    SELL = "sell"


def _reference(value: Any) -> Any:
    """The encoding's rules before the fast path, written out independently."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, Enum):
        return _reference(value.value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _reference(v) for k, v in value.items()}
    return [_reference(v) for v in value]


def _general(value: Any) -> str:
    return json.dumps(_reference(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.builds(np.float64, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(np.int64, st.integers(-(2**62), 2**62)),
    st.builds(Decimal, st.integers(-(10**6), 10**6)),
    st.just(datetime(2025, 3, 3, 9, 30, tzinfo=UTC)),
    st.just(date(2025, 3, 3)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6), values, max_size=6))
def test_fast_and_general_paths_encode_alike(payload: dict[str, Any]) -> None:
    assert encode_payload(payload) == _general(payload)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused_naming_the_key(bad: float) -> None:
    with pytest.raises(InputError, match=r"payload\.x\[1\]"):
        encode_payload({"x": [1.0, bad]})


def test_a_key_that_is_not_text_is_refused() -> None:
    with pytest.raises(InputError, match="is not text"):
        encode_payload({"a": {1: 2}})


# ---------------------------------------------------------------------------------------------
# The plain-types fast path (exact dict/list/tuple/str/int/bool/float/None: the payload goes to
# the strict C encoder as it is) against the general rules (_plain, then the canonical encoder).

plain_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
plain_values = st.recursive(
    plain_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
    ),
    max_leaves=25,
)
plain_payloads = st.dictionaries(st.text(max_size=6), plain_values, max_size=8)


def _general_path(payload: dict[str, Any]) -> str:
    return chain._canonical(chain._plain(payload, "payload"))


@given(plain_payloads)
def test_plain_payloads_take_the_fast_path_and_encode_as_the_general_path(
    payload: dict[str, Any],
) -> None:
    assert chain._is_plain(payload)
    text = encode_payload(payload)
    assert text == chain._canonical_strict(payload) == _general_path(payload) == _general(payload)
    key = MacKey(b"fast-path-journal-mac-key-0123456789")
    assert record_mac(key, 1, "decision", text, "0" * 64) == record_mac(
        key, 1, "decision", _general_path(payload), "0" * 64
    )


@given(plain_payloads, st.data())
def test_fast_path_refuses_nan_and_infinities_as_the_general_path_does(
    payload: dict[str, Any], data: st.DataObject
) -> None:
    """A non-finite float planted anywhere: the same InputError (naming its key) as before."""
    bad = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    node: Any = payload
    while True:  # walk down to a container, then plant the bad float there
        inner = [v for v in (node.values() if isinstance(node, dict) else node)]
        nested = [v for v in inner if isinstance(v, dict | list)]
        if not nested or not data.draw(st.booleans()):
            break
        node = data.draw(st.sampled_from(nested))
    if isinstance(node, dict):
        node[data.draw(st.text(max_size=3))] = bad
    else:
        node.insert(data.draw(st.integers(0, len(node))), bad)
    assert chain._is_plain(payload)  # the fast path is tried: its encoder raises
    with pytest.raises(InputError) as general:
        _general_path(payload)
    with pytest.raises(InputError) as fast:
        encode_payload(payload)
    assert str(fast.value) == str(general.value)
    assert "which JSON cannot hold" in str(fast.value)


@pytest.mark.parametrize(
    "payload",
    [
        {"a": {1: 2}},
        {"a": [{"b": 1, 2.5: "x"}]},
        {"a": ({None: 1},)},
        {"a": {True: 1}},
    ],
)
def test_fast_path_leaves_keys_that_are_not_text_to_the_refusal(payload: dict[str, Any]) -> None:
    assert not chain._is_plain(payload)  # the encoder would have written them as text
    with pytest.raises(InputError, match="is not text"):
        encode_payload(payload)


@pytest.mark.parametrize(
    ("payload", "fast"),
    [
        ({"a": 1, "b": [1.5, None, True, "x", (2, {"c": []})]}, True),
        ({"a": Side.BUY}, False),
        ({"a": [np.float64(1.5)]}, False),
        ({"a": {"b": Decimal("1.5")}}, False),
        ({"a": (datetime(2025, 3, 3, tzinfo=UTC),)}, False),
        ({"a": {"b": {"c": np.int64(3)}}}, False),
    ],
)
def test_only_exact_builtin_types_take_the_fast_path(payload: dict[str, Any], fast: bool) -> None:
    assert chain._is_plain(payload) is fast
    assert encode_payload(payload) == _general(payload)


def test_a_mapping_that_is_not_a_dict_takes_the_general_path() -> None:
    from types import MappingProxyType

    payload = MappingProxyType({"b": 1.5, "a": [1, 2]})
    assert encode_payload(payload) == '{"a":[1,2],"b":1.5}'


@given(st.binary(min_size=32, max_size=200), st.binary(max_size=2000))
def test_mac_key_is_hmac_sha256(key: bytes, data: bytes) -> None:
    """The prepared-pads HMAC gives the standard library's HMAC-SHA256, for keys shorter and
    longer than SHA-256's 64-byte block (a longer key is hashed first)."""
    assert MacKey(key).mac(data) == hmac.digest(key, data, "sha256").hex()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["decision", "fill", "order"]),
            st.text(max_size=30),
            st.integers(0, 2**62),
        ),
        max_size=6,
    )
)
def test_record_macs_chain_record_mac(records: list[tuple[str, str, int]]) -> None:
    key = MacKey(b"fast-path-journal-mac-key-0123456789")
    prev = "ab" * 32
    expected = []
    for kind, payload, ts_us in records:
        prev = record_mac(key, ts_us, kind, payload, prev)
        expected.append(prev)
    assert record_macs(key, records, "ab" * 32) == expected
