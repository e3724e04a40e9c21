"""The weekly one-pager rendered: one page of HTML, and the same page as PDF (WeasyPrint).

:class:`WeekReport` holds a week's figures (computed from the journal by
:func:`stairways.weekly.collect.collect_week`; nothing here reads data), :func:`week_blocks`
turns them into the blocks of :mod:`stairways.reports.html` (the verdict first) and
:func:`render_weekly` writes ``weekly-<week>.html`` and ``weekly-<week>.pdf``. Rehearsed
sessions (simulated broker, replayed bars) and models trained on synthetic data are labelled
as such on the page; a week without trading says so. :data:`PRINT_CSS` fits the page on one
A4 sheet.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from stairways.clock import EXCHANGE_TZ
from stairways.errors import InputError
from stairways.reports.html import (
    Block,
    Heading,
    Level,
    Markup,
    Paragraph,
    TableBlock,
    Verdict,
    block_html,
    render_page,
)
from stairways.reports.tables import (
    Column,
    dollars,
    integer,
    number,
    percent,
    table,
    text,
)

__all__ = [
    "PRINT_CSS",
    "IsoWeek",
    "LadderLine",
    "ModelInfo",
    "StressLine",
    "StressSummary",
    "WeekReport",
    "parse_week",
    "render_weekly",
    "summary_text",
    "week_blocks",
    "week_of",
]

log = logging.getLogger(__name__)

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")

# One A4 page: small type, tight margins; tables do not scroll on paper.
PRINT_CSS = """
@page { size: A4; margin: 10mm 11mm; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 7.4pt; line-height: 1.25; }
  h1 { font-size: 13pt; margin: 0 0 2pt 0; }
  h2 { font-size: 9pt; margin: 5pt 0 2pt 0; padding-bottom: 1pt; }
  p { margin: 1pt 0 2pt 0; }
  table { display: table; font-size: 6.8pt; margin: 1pt 0 3pt 0; overflow: visible; }
  th, td { padding: 0.5pt 3pt; }
  .verdict { padding: 2pt 6pt; margin: 2pt 0 4pt 0; }
  .verdict ul { margin: 0; }
}
.cols { display: flex; gap: 1.2em; } .cols > div { flex: 1 1 0; min-width: 0; }
.label { display: inline-block; border: 1px solid #9a6700; color: #9a6700; padding: 0 0.4em;
         font-weight: 600; border-radius: 3px; }
"""


@dataclass(frozen=True)
class IsoWeek:
    """An ISO week (Monday to Sunday)."""

    year: int
    week: int

    @property
    def label(self) -> str:
        """``2026-W48``."""
        return f"{self.year}-W{self.week:02d}"

    @property
    def monday(self) -> date:
        """The week's Monday."""
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        """The week's Sunday."""
        return self.monday + timedelta(days=6)

    def bounds(self) -> tuple[datetime, datetime]:
        """Monday 00:00 to the next Monday 00:00, exchange time."""
        start = datetime.combine(self.monday, time(0), tzinfo=EXCHANGE_TZ)
        return start, start + timedelta(days=7)


def parse_week(value: str) -> IsoWeek:
    """``2026-W48`` as an :class:`IsoWeek` (InputError naming the expected form otherwise)."""
    m = _WEEK.match(value.strip())
    if m is None:
        raise InputError(f"--week {value!r} is not an ISO week such as 2026-W48")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise InputError(f"--week {value!r}: {year} has no ISO week {week}") from None
    return IsoWeek(year, week)


def week_of(day: date) -> IsoWeek:
    """The ISO week holding ``day``."""
    iso = day.isocalendar()
    return IsoWeek(iso.year, iso.week)


@dataclass(frozen=True)
class ModelInfo:
    """What the report says about a model that traded in the week (its lineage).

    :param evaluation: the registry's evaluation of the model on the evaluation split
        (``metrics``, ``passed``, ``synthetic``), empty when not registered or not evaluated
    :param eval_actions: the evaluation trace's action counts (empty when no trace)
    :param eval_note: why there is no evaluation trace ("" when there is)
    """

    model_id: str
    fingerprint: str
    run_dir: str
    checkpoint: str
    config_name: str
    data_fingerprint: str
    synthetic: bool | None = None
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    eval_actions: Mapping[int, int] = field(default_factory=dict)
    eval_note: str = ""


@dataclass(frozen=True)
class LadderLine:
    """One model's ladder stage and gate progress (from :meth:`Ladder.status`)."""

    model_id: str
    stage: str
    next_stage: str
    gates_passed: int
    gates_total: int
    failing: tuple[str, ...]
    approvals_missing: int


def _tv_distance(a: Mapping[int, int], b: Mapping[int, int]) -> float:
    """Half the L1 distance between the two count vectors' shares (0 same mix, 1 disjoint)."""
    na, nb = sum(a.values()), sum(b.values())
    keys = set(a) | set(b)
    return 0.5 * sum(abs(a.get(k, 0) / na - b.get(k, 0) / nb) for k in keys)


@dataclass(frozen=True)
class StressLine:
    """One scenario of the last stress run: its verdict and its gates in words."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class StressSummary:
    """The last nightly stress run as the report shows it."""

    started: str
    short: bool
    passed: bool
    scenarios: tuple[StressLine, ...]


@dataclass
class WeekReport:
    """Everything the one-pager shows, computed from the journal."""

    week: IsoWeek
    session_ids: list[str]
    rehearsal: bool
    by_day: list[dict[str, Any]]
    by_symbol: list[dict[str, Any]]
    trades: int
    hits: int
    fills: int
    sharpe: float | None
    week_drawdown: float
    worst_sessions: list[dict[str, Any]]
    governor_events: list[dict[str, Any]]
    breaches: list[str]
    verdicts: Counter[str]
    live_actions: Counter[int]
    flip_rate: float | None
    flip_threshold: float | None
    models: list[ModelInfo]
    ladder: list[LadderLine] | None = None
    stress: StressSummary | None = None
    stress_note: str = ""
    ladder_note: str = ""

    @property
    def traded(self) -> bool:
        """Whether any session ran in the week."""
        return bool(self.session_ids)

    @property
    def net(self) -> float:
        """The week's net P&L."""
        return float(sum(d["net"] for d in self.by_day))

    @property
    def hit_rate(self) -> float | None:
        """Share of round trips with positive net P&L."""
        return self.hits / self.trades if self.trades else None

    @property
    def action_drift(self) -> float | None:
        """Total-variation distance of the week's action mix from the evaluation's."""
        evals = [m.eval_actions for m in self.models if m.eval_actions]
        if not evals or not self.live_actions:
            return None
        ev: Counter[int] = Counter()
        for counts in evals:
            ev.update(counts)
        return _tv_distance(self.live_actions, ev)


def _sharpe_text(r: WeekReport) -> str:
    if r.sharpe is not None:
        return f"{r.sharpe:.2f}"
    if len(r.by_day) < 2:
        return "n/a (fewer than two sessions)"
    return "n/a (every day returned the same)"


def _verdict(r: WeekReport) -> Verdict:
    label = " (REHEARSAL: simulated broker, replayed bars)" if r.rehearsal else ""
    if not r.traded:
        return Verdict(
            "info",
            f"No trading in {r.week.label}: the journal holds no live or rehearsed session "
            f"between {r.week.monday:%d %b} and {r.week.sunday:%d %b %Y}.",
        )
    details = [
        f"{len(r.session_ids)} session(s), {r.fills} fills, {r.trades} round trips"
        + (f", hit rate {r.hit_rate:.0%}" if r.hit_rate is not None else ""),
        f"Sharpe {_sharpe_text(r)}; max drawdown {r.week_drawdown:.2%} of capital over the week",
    ]
    if r.breaches:
        details.append(f"{len(r.breaches)} limit breach(es): see governor events")
    if r.stress is not None and not r.stress.passed:
        details.append("the last nightly stress run FAILED a gate")
    level: Level = "fail" if r.breaches else ("pass" if r.net >= 0 else "warn")
    headline = f"Net P&L {dollars(r.net)} in {r.week.label}{label}."
    return Verdict(level, headline, tuple(details))


def summary_text(r: WeekReport) -> str:
    """The verdict and its details as plain text (webhook and email body)."""
    v = _verdict(r)
    return "\n".join([v.text, *(f"- {d}" for d in v.details)])


def _stress_blocks(r: WeekReport) -> list[Block]:
    out: list[Block] = [Heading(2, "Nightly stress suite")]
    if r.stress is None:
        out.append(Paragraph(r.stress_note or "The stress suite has not run yet.", muted=True))
        return out
    s = r.stress
    rows = [
        {"scenario": sc.name, "result": "PASS" if sc.passed else "FAIL", "gates": sc.detail}
        for sc in s.scenarios
    ]
    out.append(
        TableBlock(
            table([Column("scenario"), Column("result"), Column("gates")], rows),
            caption=f"Run of {s.started[:16]} ({'short' if s.short else 'full'} form): "
            f"{'all gates held' if s.passed else 'a gate failed'}",
            status_classes={"PASS": "pass", "FAIL": "fail"},
        )
    )
    return out


def week_blocks(r: WeekReport) -> list[Block]:
    """The one-pager's blocks, verdict first."""
    blocks: list[Block] = [Markup(f"<style>{PRINT_CSS}</style>")]
    if r.rehearsal:
        blocks.append(
            Markup(
                '<p><span class="label">REHEARSED DATA</span> sessions replayed on the simulated '
                "broker; no real orders.</p>",
                "**REHEARSED DATA**: sessions replayed on the simulated broker; no real orders.",
            )
        )
    if any(m.synthetic for m in r.models):
        blocks.append(
            Markup(
                '<p><span class="label">SYNTHETIC DATA</span> the model was trained and '
                "evaluated on synthetic bars.</p>",
                "**SYNTHETIC DATA**: the model was trained and evaluated on synthetic bars.",
            )
        )
    blocks.append(_verdict(r))
    if r.traded:
        day_cols = [
            Column("day"),
            Column("kind"),
            Column("fills", fmt=integer),
            Column("gross", "gross P&L", dollars),
            Column("fees", fmt=dollars),
            Column("net", "net P&L", dollars),
            Column("drawdown", "max DD", percent()),
        ]
        sym_cols = [
            Column("symbol"),
            Column("fills", fmt=integer),
            Column("gross", "gross P&L", dollars),
            Column("fees", fmt=dollars),
            Column("net", "net P&L", dollars),
            Column("trades", fmt=integer),
            Column("hit_rate", "hit rate", percent(0)),
        ]
        left: list[Block] = [
            Heading(2, "P&L per day"),
            TableBlock(table(day_cols, r.by_day)),
        ]
        right: list[Block] = [
            Heading(2, "P&L per symbol"),
            TableBlock(table(sym_cols, r.by_symbol)),
        ]
        blocks.append(_columns(left, right))
    blocks.extend(_ladder_and_governor(r))
    blocks.extend(_stress_blocks(r))
    blocks.extend(_risks(r))
    blocks.extend(_lineage(r))
    return blocks


def _columns(left: Sequence[Block], right: Sequence[Block]) -> Markup:
    body = "".join(block_html(b) for b in left), "".join(block_html(b) for b in right)
    return Markup(f'<div class="cols"><div>{body[0]}</div><div>{body[1]}</div></div>')


def _ladder_and_governor(r: WeekReport) -> list[Block]:
    ladder: list[Block] = [Heading(2, "Ladder")]
    if r.ladder:
        rows = [
            {
                "model": ln.model_id,
                "stage": ln.stage,
                "next": ln.next_stage or "top",
                "gates": f"{ln.gates_passed}/{ln.gates_total}",
                "failing": ", ".join(ln.failing) or "none",
                "approvals": ln.approvals_missing,
            }
            for ln in r.ladder
        ]
        cols = [
            Column("model"),
            Column("stage"),
            Column("next", "next stage"),
            Column("gates", "gates passed"),
            Column("failing", "failing gates"),
            Column("approvals", "approvals missing", integer),
        ]
        ladder.append(TableBlock(table(cols, rows)))
    else:
        ladder.append(Paragraph(r.ladder_note or "No model is on the ladder.", muted=True))
    gov: list[Block] = [Heading(2, "Governor")]
    v = r.verdicts
    gov.append(
        Paragraph(
            f"Verdicts: {v.get('approve', 0)} approved, {v.get('reduce', 0)} reduced, "
            f"{v.get('reject', 0)} rejected. Limit breaches: "
            + ("none." if not r.breaches else "; ".join(r.breaches[:4]))
        )
    )
    if r.governor_events:
        cols = [Column("time"), Column("event"), Column("who"), Column("why")]
        gov.append(TableBlock(table(cols, r.governor_events[-6:]), caption="State changes"))
    else:
        gov.append(Paragraph("No governor state change in the week.", muted=True))
    return [_columns(ladder, gov)]


def _risks(r: WeekReport) -> list[Block]:
    out: list[Block] = [Heading(2, "Risks")]
    lines: list[str] = []
    if r.worst_sessions:
        worst = ", ".join(
            f"{w['day']} {w['drawdown']:.2%} ({dollars(w['net'])} net)" for w in r.worst_sessions
        )
        lines.append(f"Worst session drawdowns: {worst}.")
    elif r.traded:
        lines.append("No session drew down below its starting equity.")
    if r.flip_rate is not None and r.flip_threshold is not None:
        flag = "ABOVE" if r.flip_rate > r.flip_threshold else "below"
        lines.append(
            f"Flip-flop rate {r.flip_rate:.2f} per 60 bars, {flag} the flag threshold "
            f"{r.flip_threshold:.2f}."
        )
    drift = r.action_drift
    if drift is not None:
        lines.append(
            f"Action-mix drift from the evaluation: {drift:.1%} (total-variation distance of "
            f"{sum(r.live_actions.values())} live decisions against the evaluation trace)."
        )
    elif r.traded:
        notes = "; ".join(m.eval_note for m in r.models if m.eval_note)
        lines.append(f"Action-mix drift not computed: {notes or 'no evaluation trace'}.")
    if not lines:
        lines.append("Nothing to report: no trading in the week.")
    out.extend(Paragraph(line) for line in lines)
    return out


def _lineage(r: WeekReport) -> list[Block]:
    if not r.models:
        return []
    rows = []
    for m in r.models:
        ev = m.evaluation
        metrics = dict(ev.get("metrics", {})) if ev else {}
        rows.append(
            {
                "model": m.model_id,
                "fingerprint": m.fingerprint[:12],
                "run": f"{Path(m.run_dir).name}/{m.checkpoint}" if m.run_dir else m.checkpoint,
                "data": (m.data_fingerprint[:12] + (" (synthetic)" if m.synthetic else "")),
                "eval": ("passed" if ev.get("passed") else "failed") if ev else "none",
                "eval_sharpe": metrics.get("sharpe"),
            }
        )
    cols = [
        Column("model"),
        Column("fingerprint"),
        Column("run", "run / checkpoint"),
        Column("data", "data fingerprint"),
        Column("eval", "OOS gates", text),
        Column("eval_sharpe", "OOS Sharpe", number(2)),
    ]
    return [Heading(2, "Model lineage"), TableBlock(table(cols, rows))]


def render_weekly(r: WeekReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``weekly-<week>.html`` and ``weekly-<week>.pdf`` into ``out_dir``."""
    from weasyprint import HTML  # imported here: WeasyPrint loads Pango at import

    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"Stairways weekly report {r.week.label}"
    page = render_page(
        f"{title} ({r.week.monday:%d %b} to {r.week.sunday:%d %b %Y})", week_blocks(r)
    )
    html_path = out_dir / f"weekly-{r.week.label}.html"
    pdf_path = out_dir / f"weekly-{r.week.label}.pdf"
    tmp = html_path.with_name(html_path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(html_path)
    HTML(string=page, base_url=str(out_dir), media_type="print").write_pdf(pdf_path)
    log.info("weekly report %s written to %s", r.week.label, out_dir)
    return html_path, pdf_path
