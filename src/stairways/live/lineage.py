"""Lineage of an order: fills, verdict, intent, decision, model, run, config and data.

``stairways lineage ORDER_ID`` reads the journal once and follows the ids the live loop wrote:
the order's records (client order id) -> its fills -> the governor's verdict (intent id) ->
the policy's intent -> the decision (decision id; observation hash, action, latency) -> the
model (id and fingerprint; the registry's record when registered) -> the session's start
record -> the training run (directory, checkpoint, config, data fingerprint).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stairways.errors import InputError
from stairways.live.records import INTENT_TYPE, SESSION_TYPE

__all__ = ["Lineage", "trace_order"]


class _Source(Protocol):
    def records(
        self, *, after_seq: int = 0, kinds: Iterable[str] | None = None
    ) -> Iterator[Any]: ...


@dataclass
class Lineage:
    """The chain of one order, each link a journal record's payload (and its sequence number)."""

    order_id: str
    orders: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    statuses: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    fills: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    verdict: tuple[int, dict[str, Any]] | None = None
    intent: tuple[int, dict[str, Any]] | None = None
    decision: tuple[int, dict[str, Any]] | None = None
    session: tuple[int, dict[str, Any]] | None = None
    model: tuple[int, dict[str, Any]] | None = None

    @property
    def complete(self) -> bool:
        """Whether every link from the order to the run was found."""
        return None not in (self.verdict, self.intent, self.decision, self.session)

    def lines(self) -> list[str]:
        """The chain for a person, order first, run last."""
        out = [f"order {self.order_id}"]
        for seq, p in self.orders:
            extra = f" {p.get('quantity', ''):+g} {p.get('symbol', '')}" if "quantity" in p else ""
            out.append(f"  #{seq} order {p['type']}{extra} {p.get('reason') or ''}".rstrip())
        for seq, p in self.statuses:
            out.append(f"  #{seq} status {p.get('state')} filled {p.get('filled', '')}")
        if not self.fills:
            out.append("  fills: none")
        for seq, p in self.fills:
            out.append(
                f"  #{seq} fill {p['exec_id']}: {p['quantity']:+g} {p['symbol']} at "
                f"${p['price']:,.4f}, fee ${p['fee']:,.2f}"
                + (" (recovered)" if p.get("recovered") else "")
            )
        if self.verdict is not None:
            seq, v = self.verdict
            why = "; ".join(r["detail"] for r in v.get("reasons", [])) or "within every limit"
            out.append(
                f"verdict #{seq}: {v['decision']} {v['approved']:+g} of {v.get('requested')} "
                f"(stage {v['stage']}, state {v['state']}): {why}"
            )
        if self.intent is not None:
            seq, i = self.intent
            out.append(
                f"intent #{seq} {i['intent_id']}: target {i['target_shares']:+g} {i['symbol']} "
                f"at decision price ${i['decision_price']:,.4f} ({i['reason']})"
            )
        if self.decision is not None:
            seq, d = self.decision
            out.append(
                f"decision #{seq} {d['decision_id']}: bar {d['bar']} ({d['bar_start']}), action "
                f"{d['action']}, targets {d['targets_before']} -> {d['targets_after']}, "
                f"observation {d['observation_hash']}, {d.get('latency_ms', 0):.3f} ms"
            )
            out.append(f"model {d['model_id']} fingerprint {d['fingerprint']}")
        if self.model is not None:
            seq, m = self.model
            out.append(
                f"registered #{seq}: run {m.get('run_dir')} checkpoint {m.get('checkpoint')}, "
                f"data fingerprint {m.get('data_fingerprint')}"
            )
        if self.session is not None:
            seq, s = self.session
            run = Path(str(s.get("run_dir", "")))
            out.append(
                f"session #{seq} {s['session_id']} {s['day']} stage {s['stage']}"
                f"{' (REHEARSAL)' if s.get('rehearsal') else ''}, broker {s['broker']}, "
                f"clock {s['clock']}"
            )
            out.append(
                f"run {run} checkpoint {s.get('checkpoint')}, config {run / 'config.yaml'} "
                f"({s.get('config_name')}), data fingerprint {s.get('data_fingerprint')}"
            )
        if not self.complete:
            out.append("lineage INCOMPLETE: a link is missing from the journal")
        return out


def trace_order(source: _Source, order_id: str) -> Lineage:
    """Follow ``order_id`` (a client order id) through the journal."""
    lin = Lineage(order_id)
    wanted_intent = wanted_decision = wanted_session = ""
    by_intent: dict[str, tuple[int, dict[str, Any]]] = {}
    verdicts: dict[str, tuple[int, dict[str, Any]]] = {}
    decisions: dict[str, tuple[int, dict[str, Any]]] = {}
    sessions: dict[str, tuple[int, dict[str, Any]]] = {}
    models: dict[str, tuple[int, dict[str, Any]]] = {}
    kinds = ["order", "order_status", "fill", "verdict", "intent", "decision", "config"]
    for rec in source.records(kinds=kinds):
        p: Mapping[str, Any] = rec.payload
        seq, kind = int(rec.seq), rec.kind
        if kind == "order" and p.get("client_order_id") == order_id:
            lin.orders.append((seq, dict(p)))
            wanted_intent = wanted_intent or str(p.get("intent_id") or "")
            wanted_decision = wanted_decision or str(p.get("decision_id") or "")
            wanted_session = wanted_session or str(p.get("session_id") or "")
        elif kind == "order_status" and p.get("client_order_id") == order_id:
            lin.statuses.append((seq, dict(p)))
        elif kind == "fill" and p.get("client_order_id") == order_id:
            lin.fills.append((seq, dict(p)))
        elif kind == "verdict" and p.get("type") == "intent":
            verdicts[str(p["intent_id"])] = (seq, dict(p))
        elif kind == "intent" and p.get("type") == INTENT_TYPE:
            by_intent[str(p["intent_id"])] = (seq, dict(p))
        elif kind == "decision":
            decisions[str(p.get("decision_id"))] = (seq, dict(p))
        elif kind == "config" and p.get("type") == SESSION_TYPE:
            sessions.setdefault(str(p["session_id"]), (seq, dict(p)))
        elif kind == "config" and p.get("type") == "model_registered":
            models[str(p.get("model_id"))] = (seq, dict(p))
    if not lin.orders and not lin.fills:
        raise InputError(
            f"no order {order_id!r} in the journal; client order ids look like "
            "sw-<session>-<bar>-<SYMBOL> (stairways journal tail --kind order lists them)"
        )
    lin.verdict = verdicts.get(wanted_intent)
    lin.intent = by_intent.get(wanted_intent)
    lin.decision = decisions.get(wanted_decision)
    lin.session = sessions.get(wanted_session)
    if lin.decision is not None:
        lin.model = models.get(str(lin.decision[1].get("model_id")))
    return lin
