"""The governor's memory is saved as the same bytes with or without the section cache: the
encoder's text equals ``json.dumps(memory.as_dict(), sort_keys=True, allow_nan=False)`` after
any sequence of changes, and a governor's saves through a store that takes the text are the
bytes the plain encoding of its memory gives."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.journal import Journal, JournalLocation, MacKey
from stairways.market.portfolio import PF_WIDTH
from stairways.risk.governor import Governor, _Memory, _MemoryEncoder, memory_key
from stairways.risk.limits import load_stage
from stairways.risk.ports import EncodedDocument, InMemoryEventLog
from stairways.risk.store import SqlStateStore
from stairways.risk.types import FillReport, TradingState
from tests.unit.risk.helpers import DAY, OPERATOR, account, intent, new_governor


def _canonical(doc: Mapping[str, Any]) -> str:
    return json.dumps(dict(doc), sort_keys=True, allow_nan=False)


_ids = st.text(alphabet='abcXYZ-09_é\u2603"\\\n', min_size=0, max_size=6)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_number = st.one_of(_finite, st.integers(-(10**20), 10**20), st.sampled_from([0.0, -0.0, 1e-320]))
_text = st.text(max_size=12)


@st.composite
def _change(draw: st.DrawFn) -> tuple[str, Any]:
    field = draw(
        st.sampled_from(
            [
                "accept",
                "accept_many",
                "unaccept",
                "fill",
                "clear",
                "order_time",
                "pop_time",
                "rt",
                "scalar",
                "close_out",
                "latency",
                "cancel_all",
                "nothing",
            ]
        )
    )
    return field, draw(st.tuples(_ids, _number, _text, st.integers(0, PF_WIDTH - 1)))


def _apply(m: _Memory, change: tuple[str, Any]) -> None:
    field, (ident, number, text, j) = change
    if field == "accept":
        m.accepted.add(ident)
    elif field == "accept_many":
        m.accepted.update({ident + "a", ident + "b", "zz" + ident})
    elif field == "unaccept":
        m.accepted.discard(min(m.accepted, default=""))
    elif field == "fill":
        m.fills.add(ident)
    elif field == "clear":
        m.new_session(text, float(number))
    elif field == "order_time":
        m.order_times.append(float(number))
    elif field == "pop_time" and m.order_times:
        m.order_times.popleft()
    elif field == "rt":
        m.rt_row[j] = number
        m.rt_shares[j % len(m.rt_shares)] = -float(number)
        m.rt_pnl[0] = float(number) / 3.0
    elif field == "scalar":
        m.peak_equity = number
        m.stop_reason = text
        m.held_alert = ident
        m.layer = j % 4
        m.loss_alert_sent = not m.loss_alert_sent
        m.lock_until = float(number)
    elif field == "close_out":
        m.last_close_out[text] = float(number)
    elif field == "latency":
        m.latencies_ms.append(float(number))
        m.latency_streak += 1
    elif field == "cancel_all":
        m.last_cancel_all = -math.inf if j % 2 else float(number)


@settings(max_examples=300, deadline=None)
@given(st.lists(_change(), max_size=40), st.integers(1, 3))
def test_the_encoder_gives_the_plain_encoding_after_any_changes(
    changes: list[tuple[str, Any]], n_symbols: int
) -> None:
    m = _Memory.restore(None, n_symbols)
    encoder = _MemoryEncoder()
    assert encoder.encode(m) == _canonical(m.as_dict())
    for change in changes:
        _apply(m, change)
        assert encoder.encode(m) == _canonical(m.as_dict()), change


def test_a_value_json_refuses_is_refused_as_the_plain_encoding_refuses_it() -> None:
    for bad in (math.nan, math.inf):
        m = _Memory.restore(None, 2)
        m.peak_equity = bad
        with pytest.raises(ValueError, match="Out of range float"):
            _canonical(m.as_dict())
        with pytest.raises(ValueError, match="Out of range float"):
            _MemoryEncoder().encode(m)
        m = _Memory.restore(None, 2)
        m.rt_avg[0] = bad
        with pytest.raises(ValueError, match="Out of range float"):
            _MemoryEncoder().encode(m)


class _CheckingStore:
    """Takes encoded documents and checks each against the plain encoding of the memory."""

    takes_encoded = True

    def __init__(self) -> None:
        self.gov: Governor | None = None
        self.saves = 0
        self.documents: dict[str, str] = {}

    def load_state(self, key: str) -> Mapping[str, Any] | None:
        text = self.documents.get(key)
        return None if text is None else json.loads(text)

    def save_state(self, key: str, value: Mapping[str, Any], ts: datetime) -> None:
        assert isinstance(value, EncodedDocument)
        assert self.gov is not None
        assert value.text == _canonical(self.gov.mem.as_dict())
        assert dict(value) == self.gov.mem.as_dict()  # read as a mapping: the same document
        self.documents[key] = value.text
        self.saves += 1


_step = st.tuples(
    st.sampled_from(["buy", "sell", "fill", "loss_fill", "assess", "slow", "reject", "later"]),
    st.integers(1, 40),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_step, min_size=1, max_size=40))
def test_a_governors_saves_are_the_plain_encoding_of_its_memory(
    steps: list[tuple[str, int]],
) -> None:
    store = _CheckingStore()
    gov = Governor(load_stage("paper"), journal=InMemoryEventLog(), store=store)
    store.gov = gov
    plain = new_governor("paper")  # the same steps on a store that takes the dict
    now = DAY
    gov.transition(TradingState.RUNNING, OPERATOR, "start trading", now)
    shares = {"NVDA": 0.0}
    for n, (what, size) in enumerate(steps, start=1):
        acct = account(now, positions=shares, realised=-3.0 * n if what == "later" else 0.0)
        for g in (gov, plain):
            if what in ("buy", "sell"):
                g.check(intent(target=size if what == "buy" else -size, intent_id=f"i{n}"), acct)
                g.flush(now)
            elif what in ("fill", "loss_fill"):
                price = 100.0 if what == "fill" else 90.0
                qty = size if n % 2 else -size
                g.record_fill(
                    FillReport(
                        symbol="NVDA",
                        quantity=qty,
                        price=price,
                        commission=0.5,
                        at=now,
                        exec_id=f"x{n}",
                    )
                )
                g.flush(now)
            elif what == "assess":
                g.assess(acct)
            elif what == "slow":
                g.record_decision(size, f"d{n}", now)
            elif what == "reject":
                g.record_reject(f"o{n}", "refused", now)
        if what == "later":
            now += timedelta(minutes=size * 20)
    for g in (gov, plain):
        g.assess(account(now, positions=shares))  # a new memory's first assessment saves
    assert store.saves > 0
    assert gov.memory() == plain.memory()


KEY = MacKey(b"memory-encoding-test-journal-mac-key-012345")


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 30)), min_size=1, max_size=15))
def test_the_sql_store_writes_the_bytes_of_the_plain_encoding(
    tmp_path: Path, steps: list[tuple[bool, int]]
) -> None:
    path = tmp_path / f"j{len(list(tmp_path.iterdir()))}.sqlite"
    location = JournalLocation.sqlite(path)
    with Journal.open(location, KEY) as journal:
        store = SqlStateStore(location, journal=journal)
        gov = Governor(load_stage("paper"), journal=journal, store=store)
        gov.transition(TradingState.RUNNING, OPERATOR, "start trading", DAY)
        for n, (buy, size) in enumerate(steps):
            gov.check(intent(target=size if buy else 0, intent_id=f"i{n}"), account())
            gov.flush(DAY)
            journal.flush()
            with contextlib.closing(sqlite3.connect(path)) as conn:
                (text,) = conn.execute(
                    "SELECT document FROM risk_memory WHERE key = ?", (memory_key("paper"),)
                ).fetchone()
            assert text == _canonical(gov.memory())
        store.close()


def test_an_encoded_document_reads_as_its_json_object() -> None:
    doc = EncodedDocument('{"a": [1, 2.5], "b": null}')
    assert dict(doc) == {"a": [1, 2.5], "b": None} and len(doc) == 2 and doc["b"] is None
    with pytest.raises(TypeError, match="JSON object"):
        dict(EncodedDocument("[1]"))
    assert np.array_equal(np.asarray(doc["a"]), [1.0, 2.5])
