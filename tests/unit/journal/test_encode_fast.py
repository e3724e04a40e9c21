"""The journal's canonical encoding: the built-in types' fast path gives the general path's
text for any payload (the MAC is over that text)."""

from __future__ import annotations

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
from stairways.journal.chain import encode_payload


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
