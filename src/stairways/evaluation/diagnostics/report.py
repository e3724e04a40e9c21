"""The diagnostic report: verdicts, the decision matrix and each part's evidence.

The report is built once as a list of blocks (headings, paragraphs, tables) and rendered to
both Markdown and a self-contained HTML page, so the two never disagree.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stairways.evaluation.diagnostics.decision_matrix import (
    Findings,
    Interpretation,
    Verdict,
    interpret,
)
from stairways.evaluation.diagnostics.freeze_early import FreezeEarlyResult
from stairways.evaluation.diagnostics.leakage import LeakageResult
from stairways.evaluation.diagnostics.reward_abc import RewardABCResult
from stairways.training.rundir import atomic_write_text

REPORT_MD = "report.md"
REPORT_HTML = "report.html"


@dataclass(frozen=True)
class Heading:
    """A section heading."""

    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of plain-text cells."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Heading | Paragraph | Table


@dataclass(frozen=True)
class SuiteResults:
    """The finished parts of a suite (None for parts not run) and what the run was."""

    config_name: str
    eval_split: str
    seed: int
    total_timesteps: int
    freeze: FreezeEarlyResult | None = None
    abc: RewardABCResult | None = None
    leakage: LeakageResult | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def findings_from(results: SuiteResults) -> Findings:
    """The decision-matrix findings of a suite (None where a part did not run)."""
    f, a, lk = results.freeze, results.abc, results.leakage
    gen = f.generalisation if f is not None else None
    return Findings(
        shim_internal_agree=None if a is None else a.judgement.shim_internal_agree,
        freeze_early_passed=None if f is None else f.judgement.verdict == Verdict.PASS,
        training_reward_fine=None if f is None else f.judgement.training_reward_fine,
        leakage_control_detected=None if lk is None else lk.judgement.control_detected,
        lagged_does_better=None if lk is None else lk.judgement.lagged_does_better,
        in_sample_passed=None if gen is None else gen.in_sample_passed,
        out_of_sample_passed=None if gen is None else gen.out_of_sample_passed,
        reward_rises=None if f is None else f.judgement.reward_rises,
        pnl_falls=None if f is None else f.judgement.pnl_falls,
    )


def suite_passed(results: SuiteResults) -> bool:
    """Whether every part that ran passed and no decision-matrix rule is triggered."""
    parts = [p for p in (results.freeze, results.abc, results.leakage) if p is not None]
    if any(p.judgement.verdict != Verdict.PASS for p in parts):
        return False
    return not any(i.triggered is True for i in interpret(findings_from(results)))


def _num(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def _verdict_rows(results: SuiteResults) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    f, a, lk = results.freeze, results.abc, results.leakage
    if f is None:
        rows.append(("freeze-early validity", Verdict.NOT_RUN.upper(), "part not run"))
        rows.append(("in-sample vs out-of-sample", Verdict.NOT_RUN.upper(), "part not run"))
        rows.append(("reward vs P&L", Verdict.NOT_RUN.upper(), "part not run"))
    else:
        rows.append(("freeze-early validity", f.judgement.verdict.upper(), f.judgement.message))
        gen = f.generalisation
        if gen is None:
            rows.append(("in-sample vs out-of-sample", Verdict.NOT_RUN.upper(), "not evaluated"))
        else:
            bad = gen.in_sample_passed and not gen.out_of_sample_passed
            rows.append(
                (
                    "in-sample vs out-of-sample",
                    (Verdict.FAIL if bad else Verdict.PASS).upper(),
                    f"gates in sample ({gen.in_sample_split}): "
                    f"{'pass' if gen.in_sample_passed else 'fail'}; out of sample "
                    f"({gen.out_of_sample_split}): "
                    f"{'pass' if gen.out_of_sample_passed else 'fail'}",
                )
            )
        j = f.judgement
        if j.reward_rises is None or j.pnl_falls is None:
            rows.append(("reward vs P&L", Verdict.NOT_RUN.upper(), "needs two frozen checkpoints"))
        else:
            hacked = j.reward_rises and j.pnl_falls
            assert j.reward_change is not None and j.pnl_change is not None
            rows.append(
                (
                    "reward vs P&L",
                    (Verdict.FAIL if hacked else Verdict.PASS).upper(),
                    f"first to last checkpoint: reward change {_num(j.reward_change.mean)} "
                    f"(t = {_num(j.reward_change.t, 3)}), net P&L change "
                    f"{_num(j.pnl_change.mean)} (t = {_num(j.pnl_change.t, 3)})",
                )
            )
    if a is None:
        rows.append(("reward A/B/C", Verdict.NOT_RUN.upper(), "part not run"))
    else:
        rows.append(("reward A/B/C", a.judgement.verdict.upper(), a.judgement.message))
    if lk is None:
        rows.append(("leakage audit", Verdict.NOT_RUN.upper(), "part not run"))
    else:
        rows.append(("leakage audit", lk.judgement.verdict.upper(), lk.judgement.message))
    return rows


def _interpretation_table(items: Sequence[Interpretation]) -> Table:
    return Table(
        header=("condition", "status", "interpretation", "what to do"),
        rows=tuple((i.condition, i.status, i.interpretation, i.action) for i in items),
    )


def build_blocks(results: SuiteResults) -> list[Block]:
    """The report content, independent of the output format."""
    items = interpret(findings_from(results))
    fired = [i for i in items if i.triggered is True]
    blocks: list[Block] = [
        Heading(1, f"Stairways diagnostic report: {results.config_name}"),
        Paragraph(
            f"Evaluation split {results.eval_split}; training seed {results.seed}; "
            f"{results.total_timesteps} training timesteps per run (freeze-early uses its own "
            "freeze points). Every evaluation is a deterministic replay with learning off."
        ),
        *(Paragraph(n) for n in results.notes),
        Heading(2, "Verdicts"),
        Table(header=("diagnostic", "verdict", "detail"), rows=tuple(_verdict_rows(results))),
        Heading(2, "Interpretation (decision matrix)"),
        Paragraph(
            "Triggered: " + ", ".join(f"{i.interpretation} ({i.condition})" for i in fired)
            if fired
            else "No rule of the decision matrix is triggered by the parts that ran."
        ),
        _interpretation_table(items),
    ]
    blocks.extend(_freeze_blocks(results.freeze))
    blocks.extend(_abc_blocks(results.abc))
    blocks.extend(_leakage_blocks(results.leakage))
    return blocks


def _freeze_blocks(f: FreezeEarlyResult | None) -> list[Block]:
    if f is None:
        return []
    rows = []
    for c in f.checkpoints:
        o = c.outcomes
        ok = (
            o.n > 0
            and o.mean("reward") >= f.min_episode_reward_mean
            and o.mean("length") > f.min_episode_length
        )
        rows.append(
            (
                str(c.target_steps),
                str(c.steps),
                _num(c.training_reward),
                _num(o.mean("reward")),
                _num(o.mean("length")),
                _num(o.mean("net_pnl")),
                str(o.n),
                "PASS" if ok else "FAIL",
            )
        )
    blocks: list[Block] = [
        Heading(2, "Freeze-early validity"),
        Paragraph(
            f"Run {f.run_dir}; thresholds: mean episode reward >= {f.min_episode_reward_mean:g} "
            f"and mean episode length > {f.min_episode_length:g} on {f.eval_split}."
        ),
        Table(
            header=(
                "freeze point",
                "checkpoint steps",
                "training reward (rolling)",
                "eval mean reward",
                "eval mean length",
                "eval mean net P&L",
                "sessions",
                "result",
            ),
            rows=tuple(rows),
        ),
    ]
    gen = f.generalisation
    if gen is not None:
        blocks.append(
            Paragraph(
                f"Last checkpoint against the evaluation gates: in sample ({gen.in_sample_split}) "
                f"{'PASS' if gen.in_sample_passed else 'FAIL'}, out of sample "
                f"({gen.out_of_sample_split}) {'PASS' if gen.out_of_sample_passed else 'FAIL'}."
            )
        )
    return blocks


def _daily_sharpe(metrics: Mapping[str, float | int | None]) -> str:
    """Daily Sharpe ratio with its bootstrap interval, as ``1.2 [-0.5, 2.9]``."""
    low, high = metrics.get("daily_sharpe_low"), metrics.get("daily_sharpe_high")
    text = _num(metrics.get("daily_sharpe"), 3)
    if low is None or high is None:
        return text
    return f"{text} [{_num(low, 3)}, {_num(high, 3)}]"


def _abc_blocks(a: RewardABCResult | None) -> list[Block]:
    if a is None:
        return []
    rows = tuple(
        (
            arm.name,
            arm.config,
            str(len(arm.training_rewards)),
            _num(
                sum(arm.training_rewards[-100:]) / len(arm.training_rewards[-100:])
                if arm.training_rewards
                else None
            ),
            _num(arm.outcomes.mean("reward")),
            _num(arm.outcomes.mean("net_pnl")),
            _num(arm.metrics.get("sharpe")),
            _daily_sharpe(arm.metrics),
        )
        for arm in a.arms
    )
    return [
        Heading(2, "Reward A/B/C"),
        Paragraph(
            f"Same data and seed; every arm evaluated on {a.eval_split} with the "
            f"{a.evaluation_reward} evaluation reward."
        ),
        Table(
            header=(
                "arm",
                "config",
                "training episodes",
                "training reward (last 100)",
                "eval mean reward",
                "eval mean net P&L",
                "eval Sharpe (30-min)",
                "eval daily Sharpe [interval]",
            ),
            rows=rows,
        ),
        Paragraph(f"Shim versus internal: {a.judgement.comparison.message}."),
    ]


def _leakage_blocks(lk: LeakageResult | None) -> list[Block]:
    if lk is None:
        return []
    j = lk.judgement
    stats = {"lagged": j.lag, "lookahead": j.control}
    rows = []
    for name in dict.fromkeys(a.name for a in lk.arms):
        runs = [a for a in lk.arms if a.name == name]
        per_seed = ", ".join(
            f"seed {a.seed}: {_num(a.outcomes.mean(j.metric))}"  # type: ignore[arg-type]
            for a in runs
        )
        d = stats.get(name)
        rows.append(
            (
                name,
                runs[0].description,
                per_seed,
                "-" if d is None else _num(d.mean),
                "-" if d is None else _num(d.t, 3),
                "-" if d is None else _num(d.critical, 3),
            )
        )
    offsets = (
        f"sessions start at random offsets of up to {lk.max_start_offset} bars (same for every arm)"
        if lk.shuffled_offsets
        else "sessions start at the open"
    )
    return [
        Heading(2, "Data-leakage audit"),
        Paragraph(
            f"Metric: per-session {j.metric} on {lk.eval_split}; {offsets}. Every arm trained "
            f"with seeds {', '.join(str(s) for s in lk.seeds)} for {lk.total_timesteps} "
            "timesteps; each run's mean is compared with the baseline run of the same seed, "
            "and the t-statistic is taken across seeds."
        ),
        Table(
            header=(
                "arm",
                "features",
                f"mean {j.metric} per run",
                "change vs baseline",
                "t (across seeds)",
                "critical t",
            ),
            rows=tuple(rows),
        ),
        Paragraph(j.message),
    ]


def render_markdown(blocks: Sequence[Block]) -> str:
    """Markdown text of the blocks."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Paragraph):
            out.append(b.text)
        else:
            cell = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
            out.append("| " + " | ".join(cell(h) for h in b.header) + " |")
            out.append("| " + " | ".join("---" for _ in b.header) + " |")
            out.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in b.rows)
        out.append("")
    return "\n".join(out)


_CSS = (
    "body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #bbb;padding:.3em .6em;vertical-align:top;text-align:left}"
    "th{background:#eee}.pass{color:#176117}.fail{color:#a31515;font-weight:bold}"
    ".broken{color:#a35a00;font-weight:bold}.muted{color:#777}"
)


_STATUS_CLASSES = {
    "PASS": "pass",
    "clear": "pass",
    "FAIL": "fail",
    "TRIGGERED": "fail",
    "AUDIT BROKEN": "broken",
    "INSUFFICIENT BUDGET": "broken",
    "NOT RUN": "muted",
    "undetermined": "muted",
}


def _cell(text: str) -> str:
    css = _STATUS_CLASSES.get(text)
    attr = f' class="{css}"' if css else ""
    return f"<td{attr}>{html.escape(text)}</td>"


def render_html(blocks: Sequence[Block], title: str) -> str:
    """A self-contained HTML page of the blocks."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            out.append(f"<p>{html.escape(b.text)}</p>")
        else:
            out.append("<table><thead><tr>")
            out.extend(f"<th>{html.escape(h)}</th>" for h in b.header)
            out.append("</tr></thead><tbody>")
            for row in b.rows:
                cells = "".join(_cell(c) for c in row)
                out.append(f"<tr>{cells}</tr>")
            out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(results: SuiteResults, out_dir: Path) -> tuple[Path, Path]:
    """Write report.md and report.html into ``out_dir`` (atomically) and return both paths."""
    blocks = build_blocks(results)
    md = out_dir / REPORT_MD
    page = out_dir / REPORT_HTML
    atomic_write_text(md, render_markdown(blocks))
    atomic_write_text(
        page, render_html(blocks, f"Stairways diagnostic report: {results.config_name}")
    )
    return md, page
