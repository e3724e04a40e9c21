"""The diagnostic report: verdicts, the decision matrix and each part's evidence.

The report is built once as a list of blocks (headings, paragraphs, tables;
:mod:`stairways.reports.html`) and rendered to both Markdown and a self-contained HTML page,
so the two never disagree.
"""

from __future__ import annotations

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
from stairways.reports import html as html_report
from stairways.reports import tables as t
from stairways.reports.html import Block, Heading, Paragraph, TableBlock
from stairways.training.rundir import atomic_write_text

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
TITLE = "Stairways diagnostic report"


# Status words of the verdict and decision-matrix tables, coloured in the HTML page.
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


def _table(header: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> TableBlock:
    """A table of already formatted cells, status words coloured."""
    columns = [t.Column(str(i), h) for i, h in enumerate(header)]
    records = [{str(i): cell for i, cell in enumerate(row)} for row in rows]
    return TableBlock(t.table(columns, records), status_classes=_STATUS_CLASSES)


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


def _interpretation_table(items: Sequence[Interpretation]) -> TableBlock:
    return _table(
        header=("condition", "status", "interpretation", "what to do"),
        rows=tuple((i.condition, i.status, i.interpretation, i.action) for i in items),
    )


def build_blocks(results: SuiteResults) -> list[Block]:
    """The report content, independent of the output format."""
    items = interpret(findings_from(results))
    fired = [i for i in items if i.triggered is True]
    blocks: list[Block] = [
        Paragraph(
            f"Evaluation split {results.eval_split}; training seed {results.seed}; "
            f"{results.total_timesteps} training timesteps per run (freeze-early uses its own "
            "freeze points). Every evaluation is a deterministic replay with learning off."
        ),
        *(Paragraph(n) for n in results.notes),
        Heading(2, "Verdicts"),
        _table(header=("diagnostic", "verdict", "detail"), rows=tuple(_verdict_rows(results))),
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
        _table(
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
        _table(
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
        _table(
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


def render_markdown(blocks: Sequence[Block], title: str = TITLE) -> str:
    """Markdown text of the blocks under ``title``."""
    return html_report.render_markdown(title, blocks)


def render_html(blocks: Sequence[Block], title: str = TITLE) -> str:
    """A self-contained HTML page of the blocks under ``title``."""
    return html_report.render_page(title, blocks)


def write_report(results: SuiteResults, out_dir: Path) -> tuple[Path, Path]:
    """Write report.md and report.html into ``out_dir`` (atomically) and return both paths."""
    blocks = build_blocks(results)
    md = out_dir / REPORT_MD
    page = out_dir / REPORT_HTML
    title = f"{TITLE}: {results.config_name}"
    atomic_write_text(md, render_markdown(blocks, title))
    atomic_write_text(page, render_html(blocks, title))
    return md, page
