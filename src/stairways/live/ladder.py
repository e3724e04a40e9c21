"""The promotion ladder: research -> paper -> micro_10 -> scale_50, through gates and approvals.

- **Entry to paper**: the model's out-of-sample gates passed on the test split (its
  registration holds the verdict of ``stairways evaluate --split test``).
- **paper -> micro_10, micro_10 -> scale_50**: the evidence of the stage the model is in,
  computed from the journal (:mod:`stairways.live.evidence`), must pass every gate of
  ``config/ladder.yaml`` (trading days, P&L, drawdowns, latency, error rate, fees, breaches),
  and the risk committee must approve (:mod:`stairways.live.approvals`).
- A model moves one stage at a time, and only with the files it was registered with.
- **Auto-demotion** (:meth:`Ladder.review`): a hard-limit breach, an emergency stop, or a failing
  stage gate demotes the model one stage (or halts it, per config), journals why and raises an
  alert. Before the stage's trading days are done only the checks a model can fail for good
  (drawdowns, latency, error rate, breaches) apply; after them every gate does.

Every refusal raises :class:`LadderRefusedError` (or :class:`GatesNotPassedError`) before
anything is written: a refused action leaves the journal as it was. Every action that succeeds
is one journal append (a stage change and its alert are written together). Between the checks
and the append another process must not act on the ladder: callers hold
:meth:`stairways.live.registry.RegistryIndex.exclusive` around an action (the CLI does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from stairways.clock import Clock
from stairways.errors import InputError, InternalError, MissingResourceError, StairwaysError
from stairways.journal import Journal, MacKey
from stairways.journal.schema import JournalLocation
from stairways.live.approvals import (
    APPROVE,
    KIND_APPROVAL,
    REJECT,
    REQUEST_TYPE,
    Answer,
    KeyLookup,
    PromotionRequest,
    answer_content,
    read_answers,
    read_requests,
    request_id_for,
    sign,
    signature_valid,
)
from stairways.live.evidence import SessionEvidence, StageEvidence, collect_sessions, stage_evidence
from stairways.live.ladder_config import LadderConfig, StageGates
from stairways.live.model import ModelFingerprintError
from stairways.live.registry import (
    KIND_CONFIG,
    REGISTERED_TYPE,
    STAGE_TYPE,
    STAGES,
    RegisteredModel,
    RegistryIndex,
    StageChange,
    check_files,
    index_location,
    read_models,
    read_stage_changes,
    resolve_model,
    stages_now,
)

__all__ = [
    "GateCheck",
    "GatesNotPassedError",
    "Ladder",
    "LadderRefusedError",
    "LadderReview",
    "LastReview",
    "ModelStatus",
    "PromoteOutcome",
    "SessionReviewer",
    "check_stage_gates",
    "entry_checks",
    "review_session",
    "stage_failures",
]

log = logging.getLogger(__name__)

KIND_ALERT = "alert"
DEMOTION_ALERT = "ladder_demotion"
REVIEW_TYPE = "ladder_review"
# What a review concluded: not on the ladder yet, gates not all passed yet, every gate passed
# (a promotion can be requested), or moved down.
REVIEW_OUTCOMES = ("research", "hold", "ready", "demoted", "halted")


class LadderRefusedError(InputError):
    """A ladder action was refused; nothing was written. The message says why."""


class GatesNotPassedError(StairwaysError):
    """A promotion was refused because the model's gates did not pass (exit code 3)."""

    exit_code = 3

    def __init__(self, message: str, checks: Sequence[GateCheck]) -> None:
        super().__init__(message)
        self.checks = list(checks)


class _Log(Protocol):
    def records(self, *, after_seq: int = 0, kinds: Any = None) -> Any: ...

    def append(self, kind: str, payload: Mapping[str, Any], ts: datetime) -> Any: ...


@dataclass(frozen=True)
class GateCheck:
    """One gate: the figure, the rule and whether it passed."""

    name: str
    value: float | None
    op: str
    threshold: float
    passed: bool
    detail: str = ""

    def line(self) -> str:
        """``name value op threshold: PASS|FAIL``, for a person."""
        shown = "n/a" if self.value is None else f"{self.value:.6g}"
        verdict = "pass" if self.passed else "FAIL"
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.name} {shown} {self.op} {self.threshold:g}: {verdict}{extra}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "value": self.value,
            "op": self.op,
            "threshold": self.threshold,
            "passed": self.passed,
            "detail": self.detail,
        }


# Checks a model can fail for good while in a stage (they demote before the days are done).
HOLD_CHECKS = frozenset(
    {"max_drawdown", "daily_drawdown", "latency_p99_ms", "error_rate", "hard_limit_breaches"}
)


def check_stage_gates(ev: StageEvidence, gates: StageGates) -> list[GateCheck]:
    """Every gate of a stage on its evidence (the plan's gates and the go/no-go checks)."""
    fee_share = ev.fee_share_of_gross

    def gate(
        name: str, value: float | None, op: str, threshold: float, detail: str = ""
    ) -> GateCheck:
        if value is None:
            ok = False
        elif op == ">=":
            ok = value >= threshold
        elif op == ">":
            ok = value > threshold
        elif op == "<":
            ok = value < threshold
        else:
            ok = value <= threshold
        return GateCheck(name, value, op, threshold, ok, detail)

    return [
        gate("trading_days", float(ev.trading_days), ">=", float(gates.min_trading_days)),
        gate("gross_pnl", ev.gross_pnl, ">", gates.min_gross_pnl, "stage P&L before fees, $"),
        gate("max_drawdown", ev.max_drawdown, "<", gates.max_drawdown, "fraction of capital"),
        gate(
            "latency_p99_ms",
            ev.latency_p99_ms,
            "<",
            gates.max_latency_p99_ms,
            "" if ev.latency_p99_ms is not None else "no decisions yet",
        ),
        gate("error_rate", ev.error_rate, "<", gates.max_error_rate, f"{ev.errors}/{ev.orders}"),
        gate("daily_drawdown", ev.worst_daily_drawdown, "<", gates.max_daily_drawdown, "worst"),
        gate("net_pnl", ev.net_pnl, ">=", gates.min_net_pnl, "fee-adjusted P&L, $"),
        gate(
            "hard_limit_breaches",
            float(len(ev.breaches)),
            "<=",
            float(gates.max_hard_limit_breaches),
        ),
        gate(
            "fee_share_of_gross",
            fee_share,
            "<",
            gates.max_fee_share_of_gross,
            "" if fee_share is not None else "gross P&L is not positive",
        ),
    ]


def entry_checks(model: RegisteredModel, split: str) -> list[GateCheck]:
    """The out-of-sample gates of the model's evaluation on ``split`` (entry to paper)."""
    ev = model.evaluations.get(split)
    if ev is None:
        return [
            GateCheck(
                f"{split}_evaluation",
                None,
                "==",
                1.0,
                False,
                f"no evaluation on the {split} split was registered: run `stairways evaluate "
                f"{model.run_dir} --checkpoint {model.checkpoint} --split {split}` and register "
                "again",
            )
        ]
    out = []
    for g in ev.get("gates", []):
        value = g.get("value")
        out.append(
            GateCheck(
                f"{split}.{g.get('metric')}",
                None if value is None else float(value),
                str(g.get("op", "")),
                float(g.get("threshold") or 0.0),
                g.get("passed") is True,
                str(g.get("detail") or ""),
            )
        )
    if not out:
        out.append(GateCheck(f"{split}_gates", None, "==", 1.0, False, "no gates recorded"))
    if ev.get("passed") is not True and all(c.passed for c in out):
        out.append(GateCheck(f"{split}_verdict", 0.0, "==", 1.0, False, "verdict not passed"))
    return out


def stage_failures(ev: StageEvidence, config: LadderConfig) -> list[tuple[str, str]]:
    """Why a model's stage failed, as (``demote`` or ``halt``, reason) pairs; empty when it has
    not. Before the stage's trading days are done only :data:`HOLD_CHECKS` apply."""
    rules = config.demotion
    causes: list[tuple[str, str]] = []
    if len(ev.breaches) > config.gates.max_hard_limit_breaches:
        causes.append((rules.on_hard_limit_breach, f"hard-limit breach: {'; '.join(ev.breaches)}"))
    if ev.emergency_stops:
        causes.append((rules.on_emergency_stop, f"emergency stop: {'; '.join(ev.emergency_stops)}"))
    if ev.counted:
        days_done = ev.trading_days >= config.gates.min_trading_days
        failing = [
            c
            for c in check_stage_gates(ev, config.gates)
            if not c.passed
            and c.name not in ("trading_days", "hard_limit_breaches")
            and (days_done or c.name in HOLD_CHECKS)
            and c.value is not None
        ]
        if failing:
            causes.append(
                (
                    rules.on_gate_failure,
                    "stage gate failed: " + "; ".join(c.line() for c in failing),
                )
            )
    return causes


@dataclass(frozen=True)
class ApprovalState:
    """Where a request stands: the approvals that count, and why others do not."""

    valid: tuple[Answer, ...]
    not_counted: tuple[tuple[Answer, str], ...]
    rejected_by: Answer | None


@dataclass(frozen=True)
class LastReview:
    """A model's latest ``ladder_review`` record, as ``ladder status`` shows it."""

    seq: int
    ts: datetime
    stage: str
    outcome: str
    by: str
    session: Mapping[str, Any] | None

    def line(self) -> str:
        """One line: when, the verdict, and the session that triggered it (counted or why not)."""
        text = f"last review #{self.seq} at {self.ts:%Y-%m-%d %H:%M %Z} by {self.by}: "
        text += f"{self.stage} {self.outcome}"
        if self.session:
            sid = self.session.get("session_id")
            if self.session.get("counted"):
                text += f" after session {sid} (counted)"
            else:
                why = self.session.get("not_counted_because") or "not counted"
                text += f" after session {sid} (not counted: {why})"
        return text


@dataclass
class ModelStatus:
    """One model on the ladder now (what ``ladder status`` prints)."""

    model: RegisteredModel
    stage: str
    since_seq: int
    since: datetime | None
    next_stage: str | None
    evidence: StageEvidence | None = None
    checks: list[GateCheck] = field(default_factory=list)
    request: PromotionRequest | None = None
    approvals: ApprovalState | None = None
    required: int = 0
    last_review: LastReview | None = None

    @property
    def missing(self) -> int:
        """Approvals still missing for the open request (or for the next stage)."""
        have = len(self.approvals.valid) if self.approvals else 0
        return max(0, self.required - have)


@dataclass(frozen=True)
class PromoteOutcome:
    """What ``promote`` did: ``promoted`` (a stage change) or ``requested`` (waiting)."""

    action: str
    model_id: str
    from_stage: str
    to_stage: str
    message: str
    checks: tuple[GateCheck, ...] = ()
    request: PromotionRequest | None = None
    change: StageChange | None = None


@dataclass(frozen=True)
class LadderReview:
    """One review of a model's stage (a ``ladder_review`` record at ``seq``).

    :param outcome: one of :data:`REVIEW_OUTCOMES`
    :param to_stage: the stage the model is in after the review
    :param session: the triggering session: id, day, stage, rehearsal, counted, why not
    :param move: the stage change when the review demoted or halted the model
    """

    seq: int
    model_id: str
    stage: str
    outcome: str
    to_stage: str
    checks: tuple[GateCheck, ...]
    failures: tuple[tuple[str, str], ...]
    evidence: StageEvidence | None
    session: Mapping[str, Any] | None
    move: StageChange | None = None

    def lines(self) -> list[str]:
        """What a person reads after a session: the verdict first, then why."""
        head = {
            "research": f"model {self.model_id} is in research: no stage gates to review",
            "hold": f"model {self.model_id} holds {self.stage}: not every gate has passed yet",
            "ready": f"model {self.model_id} passed every {self.stage} gate: `stairways ladder "
            f"promote {self.model_id}` can request the next stage",
            "demoted": f"model {self.model_id} DEMOTED {self.stage} -> {self.to_stage}",
            "halted": f"model {self.model_id} HALTED {self.stage} -> {self.to_stage} (emergency "
            "stop latched)",
        }[self.outcome]
        out = [f"ladder review (journal #{self.seq}): {head}"]
        if self.session is not None:
            s = self.session
            counted = (
                "counts toward the stage"
                if s.get("counted")
                else f"does not count: {s.get('not_counted_because')}"
            )
            out.append(f"session {s.get('session_id')} of {s.get('day')}: {counted}")
        if self.evidence is not None:
            ev = self.evidence
            out.append(
                f"{self.stage} evidence: {ev.trading_days} trading day(s), net P&L "
                f"${ev.net_pnl:+,.2f}, max drawdown {ev.max_drawdown:.2%}"
            )
        out.extend(f"  {why}" for _, why in self.failures)
        if self.outcome in ("hold", "ready"):
            out.extend(f"  {c.line()}" for c in self.checks)
        return out


def _named(action: str, role: str, flag: str, who: str, reason: str) -> tuple[str, str]:
    """Who acts and why, stripped; refused when either is empty (``a demotion needs ...``)."""
    who, reason = who.strip(), reason.strip()
    if not who:
        raise LadderRefusedError(f"a {action} needs the {role} name ({flag})")
    if not reason:
        raise LadderRefusedError(f"a {action} needs a reason (--reason)")
    return who, reason


def _session_entry(s: SessionEvidence, ev: StageEvidence | None) -> dict[str, Any]:
    """The triggering session as a review record states it (counted or why not)."""
    why = ""
    if ev is None:
        why = "the model is in research"
    elif any(c.session_id == s.session_id for c in ev.counted):
        why = ""
    else:
        excluded = {c.session_id: r for c, r in ev.excluded}
        if s.session_id in excluded:
            why = excluded[s.session_id]
        elif any(c.session_id == s.session_id for c in ev.unfinished):
            why = "it has not ended"
        elif s.is_rehearsal:
            why = "a rehearsal (journaled apart from the ladder): rehearsals never count"
        else:
            why = (
                f"it is not in the ladder's journal or ran before the model entered {ev.stage}; "
                "only sessions journaled in the registry's journal count"
            )
    return {
        "session_id": s.session_id,
        "day": s.day,
        "stage": s.stage,
        "rehearsal": s.is_rehearsal,
        "ended": s.ended,
        "counted": why == "",
        "not_counted_because": why,
    }


class Ladder:
    """The ladder over one journal.

    :param journal: the journal (a writer for actions; a reader is enough for status)
    :param config: the ladder configuration
    :param clock: exchange time (never ``datetime.now()``)
    :param keys: an approver's signing key by name (from the vault); needed to approve, reject
        and to complete a promotion that needs approvals (signatures are checked then)
    """

    def __init__(
        self,
        journal: _Log,
        config: LadderConfig,
        clock: Clock,
        keys: KeyLookup | None = None,
    ) -> None:
        self.journal = journal
        self.config = config
        self.clock = clock
        self.keys = keys

    # ------------------------------------------------------------------------------------
    # reading

    def _stage(self, model_id: str) -> tuple[str, int]:
        return stages_now(self.journal).get(model_id, ("research", 0))

    def _locate(self, name: str) -> tuple[RegisteredModel, str, int, int]:
        """The model named ``name``, its stage, the seq it entered it and the stage's index."""
        model = self.find_model(name)
        current, since = self._stage(model.model_id)
        return model, current, since, STAGES.index(current)

    def find_model(self, name: str) -> RegisteredModel:
        try:
            return resolve_model(self.journal, name)
        except InputError as err:
            raise LadderRefusedError(str(err)) from None

    def evidence(self, model: RegisteredModel) -> StageEvidence:
        """The model's evidence in its current stage."""
        stage, since = self._stage(model.model_id)
        return stage_evidence(self.journal, model, stage, since)

    def open_request(self, model_id: str, to_stage: str | None = None) -> PromotionRequest | None:
        """The model's open promotion request (not promoted past, not rejected), if any."""
        stage, since = self._stage(model_id)
        rejected = {a.request_id for a in read_answers(self.journal) if a.decision == REJECT}
        found = None
        for req in read_requests(self.journal).values():
            if req.model_id != model_id or req.seq < since or req.from_stage != stage:
                continue
            if to_stage is not None and req.to_stage != to_stage:
                continue
            if req.request_id in rejected:
                continue
            found = req
        return found

    def approval_state(self, req: PromotionRequest, at: datetime) -> ApprovalState:
        """The answers to ``req``: which approvals count at ``at`` and why the others do not."""
        latest: dict[str, Answer] = {}
        for a in read_answers(self.journal, req.request_id):
            latest[a.approver] = a
        valid: list[Answer] = []
        not_counted: list[tuple[Answer, str]] = []
        rejected_by = None
        committee = set(self.config.approvals.committee)
        for a in latest.values():
            if a.decision == REJECT:
                rejected_by = a
                continue
            why = ""
            if a.approver not in committee:
                why = f"{a.approver} is not on the committee"
            elif a.approver == req.requester:
                why = f"{a.approver} requested the promotion (four eyes)"
            elif a.model_id != req.model_id or a.fingerprint != req.fingerprint:
                why = "it approves other files than the request's"
            elif a.to_stage != req.to_stage:
                why = f"it approves stage {a.to_stage}, not {req.to_stage}"
            elif a.expired(at):
                why = f"the approval by {a.approver} expired at {a.expires_at}"
            elif self.keys is not None and not signature_valid(self._key(a.approver), a):
                why = f"the signature of {a.approver} does not verify with their key"
            if why:
                not_counted.append((a, why))
            else:
                valid.append(a)
        return ApprovalState(tuple(valid), tuple(not_counted), rejected_by)

    def status(self) -> list[ModelStatus]:
        """Every registered model's stage, evidence, gate figures and approvals."""
        out: list[ModelStatus] = []
        now = self.clock.now()
        changes = {c.seq: c for c in read_stage_changes(self.journal)}
        stages = stages_now(self.journal)
        reviews = self._last_reviews()
        for model in read_models(self.journal).values():
            stage, since = stages.get(model.model_id, ("research", 0))
            index = STAGES.index(stage)
            nxt = STAGES[index + 1] if index + 1 < len(STAGES) else None
            st = ModelStatus(
                model=model,
                stage=stage,
                since_seq=since,
                since=changes[since].ts if since in changes else None,
                next_stage=nxt,
                required=self.config.approvals.required.for_stage(nxt) if nxt else 0,
                last_review=reviews.get(model.model_id),
            )
            if stage == "research":
                st.checks = entry_checks(model, self.config.entry_split)
            else:
                st.evidence = stage_evidence(self.journal, model, stage, since)
                st.checks = check_stage_gates(st.evidence, self.config.gates)
            if nxt is not None:
                st.request = self.open_request(model.model_id, nxt)
                if st.request is not None:
                    # Signatures are checked only when the approvers' keys were given.
                    st.approvals = self.approval_state(st.request, now)
            out.append(st)
        return out

    def _last_reviews(self) -> dict[str, LastReview]:
        """Each model's latest review record."""
        out: dict[str, LastReview] = {}
        for rec in self.journal.records(kinds=[KIND_CONFIG]):
            p = rec.payload
            if p.get("type") != REVIEW_TYPE:
                continue
            session = p.get("session")
            out[str(p.get("model_id", ""))] = LastReview(
                seq=int(rec.seq),
                ts=rec.ts,
                stage=str(p.get("stage")),
                outcome=str(p.get("outcome")),
                by=str(p.get("by")),
                session=dict(session) if isinstance(session, Mapping) else None,
            )
        return out

    def history(self, model_id: str | None = None) -> list[tuple[int, datetime, str, str]]:
        """Ladder events (registrations, requests, answers, stage changes, demotion alerts) as
        (seq, time, model id, text), oldest first."""
        out: list[tuple[int, datetime, str, str]] = []
        for rec in self.journal.records(kinds=[KIND_CONFIG, KIND_APPROVAL, KIND_ALERT]):
            p = rec.payload
            typ = p.get("type")
            mid = str(p.get("model_id", ""))
            if model_id is not None and mid != model_id:
                continue
            text = ""
            if rec.kind == KIND_CONFIG and typ == REGISTERED_TYPE:
                test = dict(p.get("evaluations", {})).get(self.config.entry_split)
                verdict = (
                    "no test evaluation"
                    if test is None
                    else ("test gates passed" if test.get("passed") else "test gates failed")
                )
                text = (
                    f"registered by {p.get('registered_by')} ({str(p.get('fingerprint'))[:12]}, "
                    f"{verdict})"
                )
            elif rec.kind == KIND_CONFIG and typ == STAGE_TYPE:
                text = (
                    f"{p.get('action')} {p.get('from')} -> {p.get('to')} by {p.get('by')}: "
                    f"{p.get('reason')}"
                )
            elif rec.kind == KIND_APPROVAL and typ == REQUEST_TYPE:
                text = (
                    f"request {p.get('request_id')} {p.get('from')} -> {p.get('to')} by "
                    f"{p.get('requester')} (needs {p.get('required')}): {p.get('reason')}"
                )
            elif rec.kind == KIND_APPROVAL and typ in (APPROVE, REJECT):
                text = (
                    f"{typ} {p.get('request_id')} by {p.get('approver')} (signed, expires "
                    f"{p.get('expires_at')}): {p.get('reason')}"
                )
            elif rec.kind == KIND_ALERT and typ == DEMOTION_ALERT:
                text = f"ALERT {p.get('message')}"
            elif rec.kind == KIND_CONFIG and typ == REVIEW_TYPE:
                session = p.get("session") or {}
                after = f" after session {session.get('session_id')}" if session else ""
                text = f"review{after} by {p.get('by')}: {p.get('stage')} {p.get('outcome')}"
            if text:
                out.append((int(rec.seq), rec.ts, mid, text))
        return out

    # ------------------------------------------------------------------------------------
    # actions

    def _key(self, approver: str) -> Any:
        if self.keys is None:
            raise LadderRefusedError(
                "the approvers' keys are needed to sign and to check approvals; open the vault "
                "(STAIRWAYS_VAULT or security.vault_path)"
            )
        try:
            return self.keys(approver)
        except MissingResourceError as err:
            raise LadderRefusedError(
                f"approver {approver} has no signing key: {err}. Create it with `stairways "
                f"secrets set approver_key.{approver} --generate`"
            ) from None

    def _check_unchanged(self, model: RegisteredModel) -> None:
        try:
            check_files(model)
        except ModelFingerprintError as err:
            raise LadderRefusedError(f"refused: {err}") from None

    def _append_many(self, events: list[tuple[str, Mapping[str, Any], datetime]]) -> list[Any]:
        many: Callable[..., list[Any]] | None = getattr(self.journal, "append_many", None)
        if many is not None:
            return many(events)
        return [self.journal.append(k, p, t) for k, p, t in events]

    def _stage_payload(
        self,
        model: RegisteredModel,
        from_stage: str,
        to_stage: str,
        action: str,
        by: str,
        reason: str,
        request_id: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "type": STAGE_TYPE,
            "model_id": model.model_id,
            "fingerprint": model.fingerprint,
            "from": from_stage,
            "to": to_stage,
            "action": action,
            "by": by,
            "reason": reason,
            "request_id": request_id,
            "details": dict(details or {}),
        }

    def promote(
        self, name: str, *, requester: str, reason: str, to_stage: str | None = None
    ) -> PromoteOutcome:
        """Move a model one stage up, or open the request the committee must approve.

        Checks, in order: the model exists; ``to_stage`` is the next stage (no skipping); the
        files still match the registration; the stage is free; the gates pass; the approvals
        (when the stage needs them) count. A request with enough valid approvals is completed
        by calling ``promote`` again.
        """
        requester, reason = _named("promotion", "requester's", "--requester", requester, reason)
        model, current, since, index = self._locate(name)
        if to_stage is None:
            if index + 1 >= len(STAGES):
                raise LadderRefusedError(
                    f"model {model.model_id} is in {current}, the top of the ladder"
                )
            to_stage = STAGES[index + 1]
        if to_stage not in STAGES:
            raise LadderRefusedError(
                f"unknown stage {to_stage!r}; the ladder is {' -> '.join(STAGES)}"
            )
        target = STAGES.index(to_stage)
        if target <= index:
            raise LadderRefusedError(
                f"model {model.model_id} is in {current}: {to_stage} is not above it "
                "(use `stairways ladder demote` to move down)"
            )
        if target > index + 1:
            raise LadderRefusedError(
                f"model {model.model_id} is in {current}: promoting to {to_stage} would skip "
                f"{', '.join(STAGES[index + 1 : target])}; the ladder moves one stage at a time"
            )
        self._check_unchanged(model)
        stages = stages_now(self.journal)
        holders = [m for m, (s, _) in stages.items() if s == to_stage and m != model.model_id]
        if holders:
            raise LadderRefusedError(
                f"stage {to_stage} holds model {holders[0]}: a stage is an alias for one model; "
                f"demote it first (stairways ladder demote {holders[0]} --reason ...)"
            )
        if current == "research":
            checks = entry_checks(model, self.config.entry_split)
            what = f"its out-of-sample gates on the {self.config.entry_split} split"
        else:
            ev = stage_evidence(self.journal, model, current, since)
            checks = check_stage_gates(ev, self.config.gates)
            what = f"its {current} stage gates (evidence from the journal)"
        failed = [c for c in checks if not c.passed]
        if failed:
            raise GatesNotPassedError(
                f"model {model.model_id} cannot enter {to_stage}: {what} did not pass: "
                + "; ".join(c.line() for c in failed),
                checks,
            )
        now = self.clock.now()
        required = self.config.approvals.required.for_stage(to_stage)
        details: dict[str, Any] = {"gates": [c.as_dict() for c in checks]}
        if required == 0:
            payload = self._stage_payload(
                model, current, to_stage, "promote", requester, reason, details=details
            )
            rec = self._append_many([(KIND_CONFIG, payload, now)])[0]
            change = read_stage_changes(self.journal, model.model_id)[-1]
            log.info("model %s promoted %s -> %s", model.model_id, current, to_stage)
            return PromoteOutcome(
                "promoted",
                model.model_id,
                current,
                to_stage,
                f"model {model.model_id} promoted {current} -> {to_stage} (journal #{rec.seq})",
                tuple(checks),
                change=change,
            )
        req = self.open_request(model.model_id, to_stage)
        if req is None:
            serial = len(read_requests(self.journal))
            rid = request_id_for(model.model_id, to_stage, requester, now, serial)
            payload = {
                "type": REQUEST_TYPE,
                "request_id": rid,
                "model_id": model.model_id,
                "fingerprint": model.fingerprint,
                "from": current,
                "to": to_stage,
                "requester": requester,
                "reason": reason,
                "required": required,
                "gates": [c.as_dict() for c in checks],
            }
            self._append_many([(KIND_APPROVAL, payload, now)])
            req = read_requests(self.journal)[rid]
            return PromoteOutcome(
                "requested",
                model.model_id,
                current,
                to_stage,
                f"request {rid}: {model.model_id} {current} -> {to_stage} needs {required} "
                f"approvals from {', '.join(self.config.approvals.committee)} (not {requester}); "
                f"each runs `stairways ladder approve {rid} --approver NAME --reason ...`, then "
                f"`stairways ladder promote {model.model_id}` completes it",
                tuple(checks),
                request=req,
            )
        if req.fingerprint != model.fingerprint:
            raise LadderRefusedError(
                f"request {req.request_id} was for fingerprint {req.fingerprint[:16]}, the "
                f"model's is {model.fingerprint[:16]}"
            )
        state = self.approval_state(req, now)
        if len(state.valid) < required:
            notes = [why for _, why in state.not_counted]
            have = ", ".join(a.approver for a in state.valid) or "none"
            raise LadderRefusedError(
                f"request {req.request_id} ({model.model_id} -> {to_stage}) has "
                f"{len(state.valid)} valid approval(s) ({have}) of the {required} needed"
                + (f"; not counted: {'; '.join(notes)}" if notes else "")
                + "; nothing changed"
            )
        details["approvals"] = [
            {"approver": a.approver, "seq": a.seq, "expires_at": a.expires_at} for a in state.valid
        ]
        payload = self._stage_payload(
            model,
            current,
            to_stage,
            "promote",
            requester,
            reason,
            request_id=req.request_id,
            details=details,
        )
        rec = self._append_many([(KIND_CONFIG, payload, now)])[0]
        change = read_stage_changes(self.journal, model.model_id)[-1]
        log.info("model %s promoted %s -> %s", model.model_id, current, to_stage)
        return PromoteOutcome(
            "promoted",
            model.model_id,
            current,
            to_stage,
            f"model {model.model_id} promoted {current} -> {to_stage} with the approvals of "
            f"{', '.join(a.approver for a in state.valid)} (journal #{rec.seq})",
            tuple(checks),
            request=req,
            change=change,
        )

    def answer(self, request_id: str, *, approver: str, decision: str, reason: str) -> Answer:
        """Sign and journal an approval or rejection of an open request (see the rules)."""
        approver, reason = approver.strip(), reason.strip()
        if decision not in (APPROVE, REJECT):
            raise LadderRefusedError(f"an answer is {APPROVE} or {REJECT}, not {decision!r}")
        requests = read_requests(self.journal)
        req = requests.get(request_id)
        if req is None:
            open_ids = [
                r.request_id
                for r in requests.values()
                if self.open_request(r.model_id, r.to_stage) == r
            ]
            raise LadderRefusedError(
                f"no promotion request {request_id!r}; open requests: "
                f"{', '.join(open_ids) or 'none'} (stairways ladder status)"
            )
        if self.open_request(req.model_id, req.to_stage) != req:
            raise LadderRefusedError(
                f"request {request_id} is closed (the model moved since, or it was rejected); "
                "nothing to answer"
            )
        committee = self.config.approvals.committee
        if approver not in committee:
            raise LadderRefusedError(
                f"unknown approver {approver!r}: the committee is {', '.join(committee)} "
                "(approvals.committee in the ladder config)"
            )
        if approver == req.requester:
            raise LadderRefusedError(
                f"{approver} requested this promotion and cannot {decision} it (four eyes: "
                "another committee member must answer)"
            )
        if not reason:
            raise LadderRefusedError(f"to {decision} needs a reason (--reason)")
        model = self.find_model(req.model_id)
        if model.fingerprint != req.fingerprint:
            raise LadderRefusedError(f"request {request_id} names other files than the model's")
        if decision == APPROVE:
            self._check_unchanged(model)
        key = self._key(approver)
        now = self.clock.now()
        expires = now + timedelta(hours=self.config.approvals.expiry_hours)
        content = answer_content(
            request_id=req.request_id,
            model_id=req.model_id,
            fingerprint=req.fingerprint,
            to_stage=req.to_stage,
            approver=approver,
            decision=decision,
            reason=reason,
            signed_at=now.isoformat(),
            expires_at=expires.isoformat(),
        )
        payload = {"type": decision, **content, "signature": sign(key, content)}
        self._append_many([(KIND_APPROVAL, payload, now)])
        log.info("%s of %s by %s", decision, request_id, approver)
        return read_answers(self.journal, request_id)[-1]

    def approve(self, request_id: str, *, approver: str, reason: str) -> Answer:
        """Sign an approval of ``request_id`` with ``approver``'s key."""
        return self.answer(request_id, approver=approver, decision=APPROVE, reason=reason)

    def reject(self, request_id: str, *, approver: str, reason: str) -> Answer:
        """Sign a rejection of ``request_id`` (it closes the request)."""
        return self.answer(request_id, approver=approver, decision=REJECT, reason=reason)

    def demote(
        self, name: str, *, by: str, reason: str, to_stage: str | None = None
    ) -> StageChange:
        """An operator moves a model down (one stage, or to ``to_stage`` below it)."""
        by, reason = _named("demotion", "operator's", "--by", by, reason)
        model, current, _, index = self._locate(name)
        if index == 0:
            raise LadderRefusedError(f"model {model.model_id} is in research: nothing to demote to")
        target = to_stage if to_stage is not None else STAGES[index - 1]
        if target not in STAGES or STAGES.index(target) >= index:
            raise LadderRefusedError(
                f"model {model.model_id} is in {current}; a demotion goes to one of "
                f"{', '.join(STAGES[:index])}"
            )
        events = self._move_down_events(
            model, current, target, "demote", by, reason, {}, self.clock.now()
        )
        self._append_many(events)
        log.warning("%s", events[1][1]["message"])
        return read_stage_changes(self.journal, model.model_id)[-1]

    def _move_down_events(
        self,
        model: RegisteredModel,
        current: str,
        target: str,
        action: str,
        by: str,
        reason: str,
        details: Mapping[str, Any],
        now: datetime,
    ) -> list[tuple[str, Mapping[str, Any], datetime]]:
        """The stage change and its alert (journaled together)."""
        message = f"model {model.model_id} {action}: {current} -> {target} by {by}: {reason}"
        return [
            (
                KIND_CONFIG,
                self._stage_payload(model, current, target, action, by, reason, details=details),
                now,
            ),
            (
                KIND_ALERT,
                {
                    "type": DEMOTION_ALERT,
                    "kind": DEMOTION_ALERT,
                    "model_id": model.model_id,
                    "from": current,
                    "to": target,
                    "action": action,
                    "message": message,
                },
                now,
            ),
        ]

    def review(self, *, by: str = "ladder") -> list[StageChange]:
        """Review every model on the ladder (:meth:`review_model`); returns the moves made."""
        moves: list[StageChange] = []
        stages = stages_now(self.journal)
        for model in read_models(self.journal).values():
            if stages.get(model.model_id, ("research", 0))[0] == "research":
                continue
            outcome = self.review_model(model, by=by)
            if outcome.move is not None:
                moves.append(outcome.move)
        return moves

    def review_model(
        self,
        model: RegisteredModel,
        *,
        by: str = "ladder",
        session: SessionEvidence | None = None,
    ) -> LadderReview:
        """Review one model's stage from the journal and journal the review (one transaction).

        A hard-limit breach, an emergency stop or a failing stage gate demotes the model one
        stage (or halts it, per config), with an alert; otherwise it holds (gates not all passed
        yet) or is ready for ``ladder promote``. ``session`` is the session that triggered the
        review (after every session): the record says whether it counted and why not.
        """
        current, since = self._stage(model.model_id)
        now = self.clock.now()
        payload: dict[str, Any] = {
            "type": REVIEW_TYPE,
            "model_id": model.model_id,
            "fingerprint": model.fingerprint,
            "stage": current,
            "since_seq": since,
            "by": by,
        }
        ev: StageEvidence | None = None
        checks: list[GateCheck] = []
        causes: list[tuple[str, str]] = []
        if current == "research":
            checks = entry_checks(model, self.config.entry_split)
            outcome = "research"
        else:
            ev = stage_evidence(self.journal, model, current, since)
            checks = check_stage_gates(ev, self.config.gates)
            causes = stage_failures(ev, self.config)
            if causes:
                outcome = "halted" if any(a == "halt" for a, _ in causes) else "demoted"
            elif all(c.passed for c in checks) and STAGES.index(current) + 1 < len(STAGES):
                outcome = "ready"
            else:
                outcome = "hold"
            payload["evidence"] = ev.as_dict()
        payload["outcome"] = outcome
        payload["checks"] = [c.as_dict() for c in checks]
        payload["failures"] = [{"action": a, "reason": r} for a, r in causes]
        if session is not None:
            payload["session"] = _session_entry(session, ev)
        events: list[tuple[str, Mapping[str, Any], datetime]] = [(KIND_CONFIG, payload, now)]
        target = current
        if causes:
            halt = outcome == "halted"
            target = "research" if halt else STAGES[STAGES.index(current) - 1]
            why = " | ".join(text for _, text in causes)
            payload["to"] = target
            assert ev is not None
            events = (
                self._move_down_events(
                    model,
                    current,
                    target,
                    "halt" if halt else "auto_demote",
                    by,
                    why,
                    {"evidence": ev.as_dict()},
                    now,
                )
                + events
            )
        recs = self._append_many(events)
        move = None
        if causes:
            move = read_stage_changes(self.journal, model.model_id)[-1]
            log.warning("%s", events[1][1]["message"])
            if outcome == "halted":
                self._latch_halt(model, move.reason)
        else:
            log.info("ladder review of %s in %s: %s", model.model_id, current, outcome)
        return LadderReview(
            seq=int(recs[-1].seq),
            model_id=model.model_id,
            stage=current,
            outcome=outcome,
            to_stage=target,
            checks=tuple(checks),
            failures=tuple(causes),
            evidence=ev,
            session=payload.get("session"),
            move=move,
        )

    def _latch_halt(self, model: RegisteredModel, why: str) -> None:
        """Latch the governor's emergency stop (unless trading is already stopped)."""
        from stairways.risk.operator import halt
        from stairways.risk.state import read_state
        from stairways.risk.types import TradingState

        state = read_state(self.journal).state
        if state in (TradingState.EMERGENCY_STOP, TradingState.MAINTENANCE):
            return
        halt(
            self.journal,
            "ladder",
            f"model {model.model_id} halted by the ladder: {why}"[:500],
            self.clock.now(),
        )


def review_session(
    registry: _Log,
    session_log: Any,
    session_id: str,
    config: LadderConfig,
    clock: Clock,
    *,
    by: str = "ladder",
) -> LadderReview | None:
    """The review after a session ended: the ladder reviews the session's model in the
    registry's journal and journals the review. None when the model is not registered (a run
    directory rehearsed as it is has no stage to review).

    :param registry: the journal holding the model registry and the ladder (written)
    :param session_log: the journal the session was written to (the registry's, or a
        rehearsal journal)
    """
    found = [s for s in collect_sessions(session_log) if s.session_id == session_id]
    if not found:
        raise InternalError(f"session {session_id} is not in the journal it was run with")
    session = found[0]
    model = read_models(registry).get(session.model_id)
    if model is None:
        log.info("model %s is not registered: no ladder review", session.model_id)
        return None
    return Ladder(registry, config, clock).review_model(model, by=by, session=session)


class SessionReviewer:
    """Runs :func:`review_session` on the registry's journal under the registry's lock.

    :param location: the registry's journal
    :param key: its MAC key
    :param config: the ladder configuration
    :param clock: exchange time
    """

    def __init__(
        self,
        location: JournalLocation,
        key: MacKey,
        config: LadderConfig,
        clock: Clock,
        *,
        by: str = "ladder",
    ) -> None:
        self.location = location
        self.key = key
        self.config = config
        self.clock = clock
        self.by = by

    def __call__(self, session_log: Any, session_id: str) -> LadderReview | None:
        """Review the ladder after ``session_id`` (written to ``session_log``) ended; None when
        the registry's journal does not exist yet or does not hold the session's model."""
        path = self.location.path
        if self.location.is_sqlite and path is not None and not path.exists():
            log.info("no registry journal at %s: no ladder review", path)
            return None
        with (
            Journal.open(self.location, self.key) as journal,
            RegistryIndex(index_location(self.location)) as index,
            index.exclusive() as conn,
        ):
            review = review_session(
                journal, session_log, session_id, self.config, self.clock, by=self.by
            )
            index.sync(journal, conn)
        return review
