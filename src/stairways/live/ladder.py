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
from stairways.errors import InputError, MissingResourceError, StairwaysError
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
from stairways.live.evidence import StageEvidence, stage_evidence
from stairways.live.ladder_config import LadderConfig, StageGates
from stairways.live.model import ModelFingerprintError
from stairways.live.registry import (
    KIND_CONFIG,
    REGISTERED_TYPE,
    STAGE_TYPE,
    STAGES,
    RegisteredModel,
    StageChange,
    check_files,
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
    "ModelStatus",
    "PromoteOutcome",
    "check_stage_gates",
    "entry_checks",
    "stage_failures",
]

log = logging.getLogger(__name__)

KIND_ALERT = "alert"
DEMOTION_ALERT = "ladder_demotion"


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
        requester, reason = requester.strip(), reason.strip()
        if not requester:
            raise LadderRefusedError("a promotion needs the requester's name (--requester)")
        if not reason:
            raise LadderRefusedError("a promotion needs a reason (--reason)")
        model = self.find_model(name)
        current, since = self._stage(model.model_id)
        index = STAGES.index(current)
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
        by, reason = by.strip(), reason.strip()
        if not by:
            raise LadderRefusedError("a demotion needs the operator's name (--by)")
        if not reason:
            raise LadderRefusedError("a demotion needs a reason (--reason)")
        model = self.find_model(name)
        current, _ = self._stage(model.model_id)
        index = STAGES.index(current)
        if index == 0:
            raise LadderRefusedError(f"model {model.model_id} is in research: nothing to demote to")
        target = to_stage if to_stage is not None else STAGES[index - 1]
        if target not in STAGES or STAGES.index(target) >= index:
            raise LadderRefusedError(
                f"model {model.model_id} is in {current}; a demotion goes to one of "
                f"{', '.join(STAGES[:index])}"
            )
        return self._move_down(model, current, target, "demote", by, reason, {})

    def _move_down(
        self,
        model: RegisteredModel,
        current: str,
        target: str,
        action: str,
        by: str,
        reason: str,
        details: Mapping[str, Any],
    ) -> StageChange:
        now = self.clock.now()
        message = f"model {model.model_id} {action}: {current} -> {target} by {by}: {reason}"
        events: list[tuple[str, Mapping[str, Any], datetime]] = [
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
        self._append_many(events)
        log.warning("%s", message)
        return read_stage_changes(self.journal, model.model_id)[-1]

    def review(self, *, by: str = "ladder") -> list[StageChange]:
        """Demote (or halt) every model whose stage failed: a hard-limit breach, an emergency
        stop, or a failing stage gate. Returns the moves made (journaled, each with an alert)."""
        moves: list[StageChange] = []
        stages = stages_now(self.journal)
        for model in read_models(self.journal).values():
            current, since = stages.get(model.model_id, ("research", 0))
            if current == "research":
                continue
            ev = stage_evidence(self.journal, model, current, since)
            causes = stage_failures(ev, self.config)
            if not causes:
                continue
            halt = any(action == "halt" for action, _ in causes)
            target = "research" if halt else STAGES[STAGES.index(current) - 1]
            why = " | ".join(text for _, text in causes)
            move = self._move_down(
                model,
                current,
                target,
                "halt" if halt else "auto_demote",
                by,
                why,
                {"evidence": ev.as_dict()},
            )
            moves.append(move)
            if halt:
                self._latch_halt(model, why)
        return moves

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
