"""Promotion requests and the committee's signed approvals and rejections.

A promotion into a stage that needs approvals starts as a **request** (journal kind
``approval``, type ``promotion_request``): the model, its fingerprint, the stage asked for, who
asks and why. Each committee member answers with an **approval** or a **rejection** (kind
``approval``, type ``approve`` or ``reject``) carrying a reason, the instant it expires, and a
signature: HMAC-SHA256 with the approver's own key from the vault (``approver_key.<name>``)
over the canonical content of the answer. The journal's hash chain proves the record was not
edited; the signature proves the approver's key made it (the journal's key is not theirs).

Rules (checked by :mod:`stairways.live.ladder` before anything is written): only a committee
member answers; the requester never answers their own request (four eyes); an approval counts
until it expires; an approver's latest answer is the one that counts; a rejection closes the
request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from stairways.journal.chain import encode_payload
from stairways.live.records import typed_records
from stairways.security.secret import Secret

__all__ = [
    "APPROVE",
    "KIND_APPROVAL",
    "REJECT",
    "REQUEST_TYPE",
    "Answer",
    "KeyLookup",
    "PromotionRequest",
    "answer_content",
    "read_answers",
    "read_requests",
    "sign",
    "signature_valid",
]

KIND_APPROVAL = "approval"
REQUEST_TYPE = "promotion_request"
APPROVE = "approve"
REJECT = "reject"
SIGNATURE_SCHEME = "hmac-sha256"

# An approver's name -> their signing key (the CLI reads ``approver_key.<name>`` from the vault).
KeyLookup = Callable[[str], Secret]


class _Source(Protocol):
    def records(
        self, *, after_seq: int = 0, kinds: Iterable[str] | None = None
    ) -> Iterator[Any]: ...


@dataclass(frozen=True)
class PromotionRequest:
    """A request to move a model one stage up, waiting for the committee."""

    request_id: str
    seq: int
    ts: datetime
    model_id: str
    fingerprint: str
    from_stage: str
    to_stage: str
    requester: str
    reason: str
    required: int


@dataclass(frozen=True)
class Answer:
    """One approver's signed approval or rejection of a request."""

    seq: int
    ts: datetime
    request_id: str
    model_id: str
    fingerprint: str
    to_stage: str
    approver: str
    decision: str
    reason: str
    signed_at: str
    expires_at: str
    signature: str

    def content(self) -> dict[str, Any]:
        """What the signature covers."""
        return answer_content(
            request_id=self.request_id,
            model_id=self.model_id,
            fingerprint=self.fingerprint,
            to_stage=self.to_stage,
            approver=self.approver,
            decision=self.decision,
            reason=self.reason,
            signed_at=self.signed_at,
            expires_at=self.expires_at,
        )

    def expired(self, at: datetime) -> bool:
        """Whether the answer no longer counts at ``at``."""
        return datetime.fromisoformat(self.expires_at) <= at


def answer_content(
    *,
    request_id: str,
    model_id: str,
    fingerprint: str,
    to_stage: str,
    approver: str,
    decision: str,
    reason: str,
    signed_at: str,
    expires_at: str,
) -> dict[str, Any]:
    """The fields an approver signs (the same dict is journaled, plus the signature)."""
    return {
        "request_id": request_id,
        "model_id": model_id,
        "fingerprint": fingerprint,
        "to": to_stage,
        "approver": approver,
        "decision": decision,
        "reason": reason,
        "signed_at": signed_at,
        "expires_at": expires_at,
    }


def sign(key: Secret, content: Mapping[str, Any]) -> str:
    """HMAC-SHA256 (hex) of the canonical JSON of ``content`` with the approver's key."""
    message = f"stairways-approval:{encode_payload(content)}".encode("ascii")
    return hmac.new(key.reveal().encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_valid(key: Secret, answer: Answer) -> bool:
    """Whether ``answer`` was signed with ``key``."""
    return hmac.compare_digest(sign(key, answer.content()), answer.signature)


def read_requests(source: _Source) -> dict[str, PromotionRequest]:
    """Every promotion request in the journal, by id."""
    out: dict[str, PromotionRequest] = {}
    for rec in typed_records(source, KIND_APPROVAL, (REQUEST_TYPE,)):
        p = rec.payload
        out[str(p["request_id"])] = PromotionRequest(
            request_id=str(p["request_id"]),
            seq=int(rec.seq),
            ts=rec.ts,
            model_id=str(p["model_id"]),
            fingerprint=str(p["fingerprint"]),
            from_stage=str(p["from"]),
            to_stage=str(p["to"]),
            requester=str(p["requester"]),
            reason=str(p["reason"]),
            required=int(p["required"]),
        )
    return out


def read_answers(source: _Source, request_id: str | None = None) -> list[Answer]:
    """Every approval and rejection (of ``request_id``, if given), oldest first."""
    out: list[Answer] = []
    for rec in typed_records(source, KIND_APPROVAL, (APPROVE, REJECT), request_id=request_id):
        p = rec.payload
        out.append(
            Answer(
                seq=int(rec.seq),
                ts=rec.ts,
                request_id=str(p["request_id"]),
                model_id=str(p["model_id"]),
                fingerprint=str(p["fingerprint"]),
                to_stage=str(p["to"]),
                approver=str(p["approver"]),
                decision=str(p["decision"]),
                reason=str(p["reason"]),
                signed_at=str(p["signed_at"]),
                expires_at=str(p["expires_at"]),
                signature=str(p["signature"]),
            )
        )
    return out


def request_id_for(model_id: str, to_stage: str, requester: str, at: datetime, serial: int) -> str:
    """A short id for a request: a hash of what it asks, who asks, when, and ``serial`` (the
    number of requests before it), so a request made again at the same instant differs."""
    text = json.dumps([model_id, to_stage, requester, at.isoformat(), serial])
    return "req-" + hashlib.sha256(text.encode()).hexdigest()[:10]
