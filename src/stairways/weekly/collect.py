"""A week of live (or rehearsed) trading from the journal: the weekly one-pager's figures.

:func:`collect_week` reads the journal records of one ISO week (exchange time) written by the
live loop and the governor (see :mod:`stairways.live.records` and
:mod:`stairways.live.evidence`): session starts and ends, decisions, fills, verdicts, governor
state changes and stop alerts.

Figures: P&L per day and per symbol from the fills (gross = cash flow of the fills, net after
fees); Sharpe over the week's daily returns (net P&L over the session's capital, annualised
with 252 sessions); maximum drawdown of the week's cumulative net P&L over the capital, and the
worst session drawdowns (from the sessions' end figures); a trade is a round trip of one symbol
from flat to flat, a hit a round trip with positive net P&L; the flip-flop rate follows
:mod:`stairways.analysis.flipflop` on the decisions' targets. The action-mix drift (in
:class:`~stairways.reports.weekly.WeekReport`) compares the week's used actions with the
evaluation trace's.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stairways.analysis.flipflop import FlipFlopRule, count_flips, flip_rate
from stairways.errors import DataValidationError, InputError, MissingResourceError
from stairways.evaluation.metrics import max_drawdown, sharpe_ratio
from stairways.evaluation.traces import read_run_trace
from stairways.live.evidence import collect_sessions
from stairways.live.records import SESSION_TYPE
from stairways.live.registry import RegisteredModel, read_models
from stairways.reports.weekly import IsoWeek, ModelInfo, WeekReport

__all__ = ["PERIODS_PER_YEAR", "collect_week", "model_info"]

PERIODS_PER_YEAR = 252
FLAT = 1e-9


class _Source(Protocol):
    def records(
        self,
        *,
        after_seq: int = 0,
        kinds: Iterable[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Iterator[Any]: ...


@dataclass
class _Trip:
    cash: float = 0.0
    fees: float = 0.0
    position: float = 0.0


def collect_week(
    source: _Source,
    week: IsoWeek,
    *,
    eval_split: str = "test",
    flip_rule: FlipFlopRule | None = None,
) -> WeekReport:
    """The week's figures from the journal.

    :param source: the journal (a reader)
    :param week: the ISO week
    :param eval_split: the evaluation whose action mix and gates the week is compared with
    :param flip_rule: the flip-flop definition (default :class:`FlipFlopRule`)
    """
    rule = flip_rule or FlipFlopRule()
    start, end = week.bounds()
    in_week = [
        s
        for s in collect_sessions(source)
        if week.monday <= date.fromisoformat(s.day) <= week.sunday
    ]
    ids = {s.session_id for s in in_week}
    starts: dict[str, Mapping[str, Any]] = {}
    fills_by: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    targets: dict[str, list[list[float]]] = defaultdict(list)
    live_actions: Counter[int] = Counter()
    verdicts: Counter[str] = Counter()
    events: list[dict[str, Any]] = []
    breaches: list[str] = []
    kinds = ("config", "decision", "fill", "verdict", "governor_state", "alert")
    for rec in source.records(kinds=kinds, start=start, end=end):
        p = rec.payload
        sid = str(p.get("session_id", ""))
        if rec.kind == "config" and p.get("type") == SESSION_TYPE and sid in ids:
            starts.setdefault(sid, p)
        elif rec.kind == "fill" and sid in ids:
            fills_by[sid].append(p)
        elif rec.kind == "decision" and sid in ids:
            targets[sid].append([float(x) for x in p.get("targets_after", [])])
            if p.get("used", True):
                live_actions[int(p["action"])] += 1
        elif rec.kind == "verdict" and p.get("type") == "intent":
            verdicts[str(p.get("decision"))] += 1
        elif rec.kind == "governor_state":
            events.append(
                {
                    "time": rec.ts.strftime("%a %d %b %H:%M"),
                    "event": f"{p.get('previous', '?')} -> {p.get('state', '?')}",
                    "who": str(p.get("who", "")),
                    "why": str(p.get("why", "")),
                }
            )
        elif rec.kind == "alert" and p.get("kind") == "stop":
            breaches.append(
                f"{rec.ts:%a %H:%M} {p.get('rule', 'stop')}: {p.get('message', '')}".strip()
            )

    by_day: dict[str, dict[str, Any]] = {}
    symbols: dict[str, dict[str, Any]] = {}
    trades = hits = n_fills = 0
    for s in in_week:
        row = by_day.setdefault(
            s.day,
            {
                "day": s.day,
                "sessions": 0,
                "fills": 0,
                "gross": 0.0,
                "fees": 0.0,
                "net": 0.0,
                "drawdown": 0.0,
                "capital": 0.0,
                "kind": set(),
            },
        )
        row["sessions"] += 1
        row["fills"] += s.fills
        row["gross"] += s.gross_pnl
        row["fees"] += s.fees
        row["net"] += s.net_pnl
        row["drawdown"] = max(row["drawdown"], s.max_drawdown)
        row["capital"] = max(row["capital"], s.capital)
        row["kind"].add("rehearsal" if s.is_rehearsal else "live")
        trips: dict[str, _Trip] = defaultdict(_Trip)
        for f in fills_by.get(s.session_id, []):
            sym = str(f.get("symbol", "?"))
            q, px, fee = float(f["quantity"]), float(f["price"]), float(f["fee"])
            sr = symbols.setdefault(
                sym,
                {
                    "symbol": sym,
                    "fills": 0,
                    "gross": 0.0,
                    "fees": 0.0,
                    "net": 0.0,
                    "trades": 0,
                    "hits": 0,
                },
            )
            sr["fills"] += 1
            sr["gross"] -= q * px
            sr["fees"] += fee
            sr["net"] -= q * px + fee
            n_fills += 1
            t = trips[sym]
            t.cash -= q * px
            t.fees += fee
            t.position += q
            if abs(t.position) <= FLAT:
                trades += 1
                sr["trades"] += 1
                if t.cash - t.fees > 0.0:
                    hits += 1
                    sr["hits"] += 1
                trips[sym] = _Trip()
    days = [by_day[d] for d in sorted(by_day)]
    for d in days:
        d["kind"] = " + ".join(sorted(d["kind"]))
    for sr in symbols.values():
        sr["hit_rate"] = sr["hits"] / sr["trades"] if sr["trades"] else None
    daily = np.array([d["net"] for d in days], dtype=np.float64)
    capital = max((s.capital for s in in_week), default=0.0)
    returns = np.array([d["net"] / d["capital"] for d in days if d["capital"] > 0.0])
    sharpe = sharpe_ratio(returns, PERIODS_PER_YEAR) if len(returns) else None
    week_dd = max_drawdown(np.cumsum(daily), capital) if capital > 0.0 else 0.0
    worst = sorted(in_week, key=lambda s: s.max_drawdown, reverse=True)[:3]
    worst_rows = [
        {"session": s.session_id, "day": s.day, "drawdown": s.max_drawdown, "net": s.net_pnl}
        for s in worst
        if s.max_drawdown > 0.0
    ]
    flips = steps = 0
    n_tickers = 0
    for rows in targets.values():
        if len(rows) < 2 or not rows[0]:
            continue
        pos = np.asarray(rows, dtype=np.float64)
        n_tickers = pos.shape[1]
        flips += int(count_flips(pos, rule.window, rule.tolerance).sum())
        steps += len(rows)
    rate = flip_rate(flips, steps) if steps else None
    threshold = rule.threshold(n_tickers) if n_tickers else None
    registered = read_models(source)
    lineage: dict[str, ModelInfo] = {}
    for sid in sorted(starts):
        p = starts[sid]
        mid = str(p["model_id"])
        if mid not in lineage:
            lineage[mid] = model_info(p, registered.get(mid), eval_split)
    return WeekReport(
        week=week,
        session_ids=[s.session_id for s in in_week],
        rehearsal=any(s.is_rehearsal for s in in_week),
        by_day=days,
        by_symbol=[symbols[k] for k in sorted(symbols)],
        trades=trades,
        hits=hits,
        fills=n_fills,
        sharpe=sharpe,
        week_drawdown=week_dd,
        worst_sessions=worst_rows,
        governor_events=events,
        breaches=breaches,
        verdicts=verdicts,
        live_actions=live_actions,
        flip_rate=rate,
        flip_threshold=threshold,
        models=list(lineage.values()),
    )


def _run_evaluation(folder: Path) -> dict[str, Any]:
    """An unregistered model's evaluation as ``stairways evaluate`` wrote it (empty if none)."""
    metrics_path, gates_path = folder / "metrics.json", folder / "gates.json"
    if not (metrics_path.is_file() and gates_path.is_file()):
        return {}
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        gates = json.loads(gates_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read the evaluation in {folder}: {err}") from None
    return {
        "passed": gates.get("passed") is True,
        "metrics": dict(metrics.get("agent", {})),
        "synthetic": metrics.get("synthetic"),
    }


def model_info(start: Mapping[str, Any], model: RegisteredModel | None, split: str) -> ModelInfo:
    """A model's lineage (from its session start record and the registry) and the action mix
    of its evaluation trace on ``split`` (``eval_note`` says why there is none)."""
    run_dir = str(start.get("run_dir", ""))
    checkpoint = str(start.get("checkpoint", ""))
    evaluation = dict(model.evaluations.get(split, {})) if model is not None else {}
    note = "" if model is not None else "not in the model registry"
    if model is None and run_dir and checkpoint:
        evaluation = _run_evaluation(Path(run_dir) / "eval" / split / checkpoint)
    actions: dict[int, int] = {}
    if run_dir and checkpoint:
        try:
            trace = read_run_trace(Path(run_dir), split, checkpoint)
        except (MissingResourceError, DataValidationError) as err:
            note = f"no evaluation trace on {split} ({err})"
        else:
            values, counts = np.unique(trace.frame["action"].to_numpy(), return_counts=True)
            actions = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    synthetic = model.synthetic if model is not None else evaluation.get("synthetic")
    return ModelInfo(
        model_id=str(start["model_id"]),
        fingerprint=str(start.get("fingerprint", "")),
        run_dir=run_dir,
        checkpoint=checkpoint,
        config_name=str(start.get("config_name", "")),
        data_fingerprint=str(start.get("data_fingerprint", "")),
        synthetic=None if synthetic is None else bool(synthetic),
        evaluation=evaluation,
        eval_actions=actions,
        eval_note=note,
    )
