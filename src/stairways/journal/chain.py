"""The journal's hash chain: canonical record content and its HMAC-SHA256.

A record's MAC covers the format version, its exchange timestamp (integer microseconds since the
Unix epoch, UTC), its kind, its payload exactly as stored (canonical JSON) and the previous
record's MAC. The first record chains to a genesis value derived from the journal's random id,
so records cannot be moved between journals that share a key. The sequence number is not in the
MAC: the chain itself fixes the order, which lets :mod:`stairways.journal.verify` tell a deleted,
inserted or reordered record from an edited one.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from json.encoder import encode_basestring_ascii
from typing import Any

from stairways.errors import InputError
from stairways.security.secret import Secret, contains_secret

__all__ = [
    "EPOCH",
    "FORMAT_VERSION",
    "MIN_KEY_LENGTH",
    "MacKey",
    "encode_payload",
    "from_us",
    "genesis_mac",
    "key_check",
    "record_content",
    "record_mac",
    "record_macs",
    "to_us",
]

FORMAT_VERSION = 1
MIN_KEY_LENGTH = 32
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# HMAC's inner and outer pads: each key byte XOR 0x36, and XOR 0x5C
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class MacKey:
    """The journal's HMAC key (shown as ``***``). Build it with :meth:`from_secret`."""

    __slots__ = ("_inner", "_key", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise InputError(
                f"the journal MAC key is too short ({len(key)} bytes, at least "
                f"{MIN_KEY_LENGTH} needed): generate one with "
                "`stairways secrets set journal_mac_key --generate`"
            )
        self._key = key
        # HMAC-SHA256 (RFC 2104) with the key's padded blocks hashed once: each MAC then
        # copies the two prepared states (what the standard library's own pure-Python HMAC
        # does), under half the cost of a one-shot hmac.digest, which sets the key up anew.
        block = hashlib.sha256().block_size
        padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
        self._inner = hashlib.sha256(padded.translate(_IPAD))
        self._outer = hashlib.sha256(padded.translate(_OPAD))

    @classmethod
    def from_secret(cls, secret: Secret) -> MacKey:
        """The key held by a vault secret (its UTF-8 bytes)."""
        return cls(secret.reveal().encode("utf-8"))

    def mac(self, data: bytes) -> str:
        """HMAC-SHA256 of ``data``, hex."""
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def __repr__(self) -> str:
        return "MacKey(***)"


def to_us(ts: datetime) -> int:
    """Microseconds since the Unix epoch of an aware instant; a naive one is refused."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InputError(
            f"journal timestamp {ts.isoformat()} has no timezone: pass the clock's exchange time"
        )
    return (ts - EPOCH) // _US


def from_us(ts_us: int, tz: Any) -> datetime:
    """The instant ``ts_us`` microseconds after the epoch, shown in ``tz``."""
    return (EPOCH + timedelta(microseconds=ts_us)).astimezone(tz)


# The canonical form's encoder, made once (json.dumps with these arguments builds the same
# encoder on every call).
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode
_CONTENT_HEAD = f"[{FORMAT_VERSION},"


def _strict_encoder() -> Callable[[Any], str]:
    """The canonical encoder for :func:`_is_plain` values that refuses NaN and infinities
    (ValueError): the same text as ``_canonical``. CPython's C encoder is called directly
    (what ``JSONEncoder.encode`` runs, without its Python layers), with no circular-reference
    markers: a plain value has no cycle, or :func:`_is_plain` would not have returned."""
    options = json.JSONEncoder(
        sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    make = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed
    if make is None:  # an interpreter without the C accelerator: the same text, slower
        return options.encode
    chunks = make(
        None,  # markers
        options.default,
        encode_basestring_ascii,
        None,  # indent
        options.key_separator,
        options.item_separator,
        options.sort_keys,
        options.skipkeys,
        options.allow_nan,
    )
    join = "".join
    return lambda value: join(chunks(value, 0))


_canonical_strict = _strict_encoder()

# The exact built-in types the fast path takes as they are (see _is_plain).
_KEY_TYPES = frozenset({str})
_SCALAR_TYPES = frozenset({str, int, bool, float, type(None)})


def _is_plain(value: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """Whether ``value`` (an exact dict, list or tuple) holds only text keys and the exact
    built-in types ``str``, ``int``, ``bool``, ``float``, ``None``, ``dict``, ``list`` and
    ``tuple``, at any depth. The encoder's text of such a value is its canonical text (a tuple
    encodes as a list, as the general rules make it); floats' finiteness is not checked here
    (the strict encoder refuses NaN and infinities)."""
    if type(value) is dict:
        if not _KEY_TYPES.issuperset(map(type, value)):
            return False
        items: Any = value.values()
    else:
        items = value
    if _SCALAR_TYPES.issuperset(map(type, items)):
        return True
    for item in items:
        t = type(item)
        if t is dict or t is list or t is tuple:
            if not _is_plain(item):
                return False
        elif t not in _SCALAR_TYPES:
            return False
    return True


def _finite(kind: type, value: Any) -> bool:
    return kind is float and math.isfinite(value)


def _plain(value: Any, path: str) -> Any:
    """``value`` as plain JSON types; InputError naming ``path`` for anything else."""
    # The exact built-in types first (what nearly every payload holds): the same values as the
    # general checks below, without their abstract-class tests (the live loop encodes
    # thousands of records a second).
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise InputError(f"journal payload key {path} is {value}, which JSON cannot hold")
        return value
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"journal payload key {path}.{key!r} is not text")
            # scalars inline: no call and no path text unless something is wrong
            t = type(item)
            if t is str or t is int or t is bool or item is None or _finite(t, item):
                out[key] = item
            else:
                out[key] = _plain(item, f"{path}.{key}")
        return out
    if kind is list or kind is tuple:
        items: list[Any] = []
        for i, item in enumerate(value):
            t = type(item)
            if t is str or t is int or t is bool or item is None or _finite(t, item):
                items.append(item)
            else:
                items.append(_plain(item, f"{path}[{i}]"))
        return items
    return _plain_other(value, path)


def _plain_other(value: Any, path: str) -> Any:
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, Secret):
        raise InputError(
            f"journal payload key {path} holds a Secret: secrets never go in the journal"
        )
    if isinstance(value, Enum):
        return _plain(value.value, path)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InputError(f"journal payload key {path} is {value}, which JSON cannot hold")
        return str(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise InputError(f"journal payload key {path} is {number}, which JSON cannot hold")
        return number
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InputError(f"journal payload key {path} is a datetime without a timezone")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"journal payload key {path}.{key!r} is not text")
            out[key] = _plain(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise InputError(
        f"journal payload key {path} holds a {type(value).__name__}, which the journal cannot "
        "store (use text, numbers, booleans, lists and mappings)"
    )


def encode_payload(payload: Mapping[str, Any]) -> str:
    """Canonical JSON of a payload: sorted keys, no spaces, ASCII only, finite numbers.

    Aware datetimes and dates become ISO text, Decimals text, Enums their value. A payload that
    holds a known secret value is refused (without showing it).
    """
    text: str | None = None
    if type(payload) is dict and _is_plain(payload):
        # Built-in types only (what nearly every payload holds, thousands a second in the live
        # loop): the encoder's text as it is, without rebuilding the payload.
        try:
            text = _canonical_strict(payload)
        except ValueError:
            text = None  # a NaN or an infinity: the general rules below name its key
    if text is None:
        if not isinstance(payload, Mapping):
            raise InputError(f"a journal payload is a mapping, not {type(payload).__name__}")
        text = _canonical(_plain(payload, "payload"))
    if contains_secret(text):
        raise InputError("a journal payload holds a secret value: secrets never go in the journal")
    return text


def record_content(ts_us: int, kind: str, payload: str, prev_mac: str) -> str:
    """The text a record's MAC covers: the JSON array ``[FORMAT_VERSION, ts_us, kind, payload,
    prev_mac]`` without spaces, ASCII only (the payload is its stored text, quoted again).

    Written out for the types a record has (an int and three strings: the same text
    ``json.dumps`` gives, with the payload's text escaped once, by the same function
    ``json.dumps`` uses); anything else (a tampered row read by verification) goes through
    ``json.dumps`` itself.
    """
    if type(ts_us) is int and type(kind) is str and type(payload) is str and type(prev_mac) is str:
        return (
            f"{_CONTENT_HEAD}{ts_us},{encode_basestring_ascii(kind)},"
            f"{encode_basestring_ascii(payload)},{encode_basestring_ascii(prev_mac)}]"
        )
    return json.dumps(
        [FORMAT_VERSION, ts_us, kind, payload, prev_mac], separators=(",", ":"), ensure_ascii=True
    )


def record_mac(key: MacKey, ts_us: int, kind: str, payload: str, prev_mac: str) -> str:
    """The MAC of one record's content chained to ``prev_mac`` (see :func:`record_content`)."""
    return key.mac(record_content(ts_us, kind, payload, prev_mac).encode("ascii"))


def record_macs(key: MacKey, records: Iterable[tuple[str, str, int]], prev_mac: str) -> list[str]:
    """The MACs of ``records`` (``(kind, payload, ts_us)``, in order) chained one after
    another from ``prev_mac``: :func:`record_mac` of each, chained to the one before, in one
    loop (an append's records)."""
    mac = key.mac
    macs: list[str] = []
    prev = prev_mac
    for kind, payload, ts_us in records:
        prev = mac(record_content(ts_us, kind, payload, prev).encode("ascii"))
        macs.append(prev)
    return macs


def genesis_mac(key: MacKey, journal_id: str) -> str:
    """The value the first record chains to."""
    return key.mac(f"stairways-journal-genesis:{journal_id}".encode())


def key_check(key: MacKey, journal_id: str) -> str:
    """A value stored at creation that tells whether a key is this journal's key."""
    return key.mac(f"stairways-journal-key-check:{journal_id}".encode())
