"""Checking a journal's hash chain, and naming the first record that was tampered with.

Walking the records in sequence order, the first record that breaks the chain is classified:

- **edited**: its MAC does not match its content (or its sequence number was changed);
- **inserted**: its MAC does not match and the chain continues past it (a later record links
  to the record before it), or it is a copy of another record;
- **deleted**: its MAC matches but it links to a record that is no longer in the journal;
- **reordered**: its MAC matches but it links to a record stored elsewhere in the journal.

Records removed from the end leave no trace in the chain itself: compare the head that
``verify`` prints with one noted earlier (``--expect-head``) to catch that.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Literal

from stairways.errors import InputError
from stairways.journal.chain import MacKey, genesis_mac, key_check, record_mac
from stairways.journal.store import JournalKeyError, JournalReader

__all__ = ["Tamper", "VerifyReport", "parse_head", "verify_journal"]

TamperKind = Literal["edited", "inserted", "deleted", "reordered", "truncated"]


@dataclass(frozen=True)
class Tamper:
    """The first break in the chain.

    :param what: how the journal was changed
    :param seq: the stored sequence number of the record where the chain breaks
    :param detail: a sentence for the operator
    """

    what: TamperKind
    seq: int
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_journal`."""

    location: str
    records: int
    head_seq: int | None
    head_mac: str | None
    tamper: Tamper | None
    missing_triggers: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether the whole chain verified and the append-only triggers are in place."""
        return self.tamper is None and not self.missing_triggers


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:MAC`` (as ``verify`` prints it) into its parts; InputError otherwise."""
    seq_text, sep, mac = text.partition(":")
    if not sep or not seq_text.isdigit() or len(mac) != 64:
        raise InputError(f"--expect-head must be SEQ:MAC as verify prints it, got {text!r}")
    return int(seq_text), mac.lower()


def _self_ok(key: MacKey, row: tuple[Any, ...]) -> bool:
    _seq, ts_us, kind, payload, prev_mac, mac = row
    if not (
        isinstance(ts_us, int)
        and isinstance(kind, str)
        and isinstance(payload, str)
        and isinstance(prev_mac, str)
        and isinstance(mac, str)
    ):
        return False
    return hmac.compare_digest(record_mac(key, ts_us, kind, payload, prev_mac), mac)


def _classify(
    reader: JournalReader, key: MacKey, row: tuple[Any, ...], prev_seq: int, prev_mac: str
) -> Tamper | None:
    seq, _ts, _kind, _payload, row_prev, row_mac = row
    after = f"seq {prev_seq}" if prev_seq else "the start of the journal"
    if not _self_ok(key, row):
        successor = reader.seq_where("prev_mac", prev_mac, other_than=seq)
        if successor is not None and successor > seq:
            return Tamper(
                "inserted",
                seq,
                f"record seq {seq} does not belong to the chain: its MAC does not match its "
                f"content and record seq {successor} continues the chain from {after}",
            )
        return Tamper(
            "edited", seq, f"record seq {seq} was edited: its MAC does not match its content"
        )
    if row_prev != prev_mac:
        copy_of = reader.seq_where("mac", row_mac, other_than=seq)
        if copy_of is not None:
            return Tamper(
                "inserted", seq, f"record seq {seq} was inserted: it is a copy of seq {copy_of}"
            )
        linked = reader.seq_where("mac", row_prev, other_than=seq)
        if linked is None:
            return Tamper(
                "deleted",
                seq,
                f"record(s) between {after} and seq {seq} were deleted: seq {seq} follows a "
                "record that is no longer in the journal",
            )
        return Tamper(
            "reordered",
            seq,
            f"record seq {seq} is out of order: it belongs after the record stored at seq "
            f"{linked}, not after {after}",
        )
    if seq != prev_seq + 1:
        return Tamper(
            "edited",
            seq,
            f"record seq {seq} was renumbered: it directly follows {after} in the chain",
        )
    return None


def verify_journal(
    reader: JournalReader, key: MacKey, *, expect_head: tuple[int, str] | None = None
) -> VerifyReport:
    """Check every record's MAC and link, the append-only triggers, and optionally a head.

    :param reader: the journal
    :param key: its MAC key (a wrong key is a JournalKeyError, not a tampered journal)
    :param expect_head: a (seq, mac) noted earlier that must still be in the chain
    """
    journal_id = reader.journal_id
    meta_check = reader.meta.get("key_check", "")
    if not hmac.compare_digest(meta_check, key_check(key, journal_id)):
        raise JournalKeyError(
            f"the MAC key does not match journal {reader.location}: it was created with another "
            "key, or its meta table was altered"
        )
    prev_mac = genesis_mac(key, journal_id)
    prev_seq = 0
    count = 0
    tamper: Tamper | None = None
    seen_head = expect_head is None
    for row in reader.raw_rows():
        tamper = _classify(reader, key, row, prev_seq, prev_mac)
        if tamper is not None:
            break
        prev_seq, prev_mac = int(row[0]), str(row[5])
        count += 1
        if expect_head is not None and expect_head == (prev_seq, prev_mac):
            seen_head = True
    if tamper is None and not seen_head and expect_head is not None:
        tamper = Tamper(
            "truncated",
            expect_head[0],
            f"the expected head seq {expect_head[0]} with that MAC is not in the chain: records "
            f"were removed from the end (the chain now ends at seq {prev_seq})",
        )
    return VerifyReport(
        location=str(reader.location),
        records=count,
        head_seq=prev_seq or None,
        head_mac=prev_mac if prev_seq else None,
        tamper=tamper,
        missing_triggers=tuple(reader.missing_triggers()),
    )
