"""Running the stress suite: the chosen scenarios, their results file and their report page."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from stairways.clock import Clock
from stairways.data import calendar as cal
from stairways.data.splits import resolve_split
from stairways.errors import InputError
from stairways.live.model import LivePolicy, ModelRef, ref_from_run
from stairways.reports.html import Block, Heading, Paragraph, TableBlock, Verdict, write_page
from stairways.reports.tables import Column, table
from stairways.risk.limits import RISK_CONFIG_DIR
from stairways.stress.feed import run_stale_feed
from stairways.stress.fills import run_partial_fills, run_rejects
from stairways.stress.gateway import GATEWAY_SCENARIOS
from stairways.stress.half_day import run_half_day
from stairways.stress.restart import run_restart
from stairways.stress.results import ScenarioResult, SuiteResult, write_results
from stairways.stress.scenarios import SCENARIOS, StressContext
from stairways.stress.settings import StressConfig

__all__ = ["ALL_SCENARIOS", "build_context", "run_suite", "write_report"]

log = logging.getLogger(__name__)

# Every scenario, in the order the suite runs them (each reads its section of the config).
ALL_SCENARIOS: dict[str, Callable[[StressContext, Any], ScenarioResult]] = {
    **SCENARIOS,
    "partial_fills": run_partial_fills,
    "rejects": run_rejects,
    "stale_feed": run_stale_feed,
    "restart": run_restart,
    "half_day": run_half_day,
    **GATEWAY_SCENARIOS,
}


def build_context(cfg: StressConfig, model: Path | ModelRef | None, work: Path) -> StressContext:
    """Load the model and pick the session (InputError naming the key when one is missing).

    :param model: a run directory (``--run``), a registered model's ref, or None for the
        config's ``run_dir``
    """
    if isinstance(model, ModelRef):
        ref = model
    else:
        run = model or cfg.run_dir
        if run is None:
            raise InputError(
                "the stress suite needs a model: pass --run RUN_DIR, set run_dir in the stress "
                "config (config/stress/suite.yaml), or set model to a registered model or stage"
            )
        ref = ref_from_run(run, cfg.checkpoint)
    policy = LivePolicy(ref)
    data = policy.cfg.data
    rng = resolve_split(data, cfg.split)
    day = cfg.day
    if day is None:
        sessions = cal.sessions(rng.start, rng.end, data.calendar)
        if len(sessions) == 0:
            raise InputError(f"split {cfg.split!r} ({rng.start}..{rng.end}) has no session")
        day = sessions.dates[0].date()
    return StressContext(
        policy=policy,
        store=data.store_path,
        day=day,
        split=cfg.split,
        stage=cfg.stage,
        risk_dir=cfg.risk_dir or RISK_CONFIG_DIR,
        work=work,
    )


def run_suite(
    ctx: StressContext, cfg: StressConfig, names: Sequence[str], *, short: bool, clock: Clock
) -> SuiteResult:
    """Run the named scenarios (all when empty), each to its end; an unknown name is refused.

    ``short`` reaches every scenario as ``ctx.short``: each with a duration runs its short form
    (the default test run), the full form is the nightly one.
    """
    unknown = [n for n in names if n not in ALL_SCENARIOS]
    if unknown:
        raise InputError(
            f"unknown stress scenario(s) {unknown}; the scenarios are: {', '.join(ALL_SCENARIOS)}"
        )
    ctx = replace(ctx, short=short)
    started = clock.now().isoformat()
    results: list[ScenarioResult] = []
    for name in names or list(ALL_SCENARIOS):
        log.info("stress scenario %s on %s", name, ctx.day)
        results.append(ALL_SCENARIOS[name](ctx, getattr(cfg, name)))
    return SuiteResult(
        started=started,
        finished=clock.now().isoformat(),
        short=short,
        scenarios=results,
        model=ctx.policy.ref.model_id,
    )


def write_report(result: SuiteResult, out: Path, day: date, stamp: datetime) -> Path:
    """Write ``results.json`` and ``report.html`` into ``out/<stamp>`` and ``out/latest.json``."""
    folder = out / stamp.strftime("%Y%m%dT%H%M%S")
    write_results(result, folder, out)
    rows = [
        {
            "scenario": s.name,
            "result": "PASS" if s.passed else "FAIL",
            "gate": g.metric,
            "value": "n/a" if g.value is None else f"{g.value:.6g}",
            "rule": f"{g.op} {g.threshold:g}",
            "verdict": "pass" if g.passed else "FAIL",
        }
        for s in result.scenarios
        for g in s.gates
    ]
    blocks: list[Block] = [
        Verdict(
            "pass" if result.passed else "fail",
            "Every gate held." if result.passed else "A stress gate failed.",
            tuple(f"{s.name}: {s.error}" for s in result.scenarios if s.error),
        ),
        Paragraph(
            f"Model {result.model}. Session replayed: {day}. Started {result.started}.",
            muted=True,
        ),
        TableBlock(
            table(
                [
                    Column("scenario"),
                    Column("result"),
                    Column("gate"),
                    Column("value", align="right"),
                    Column("rule"),
                    Column("verdict"),
                ],
                rows,
            ),
            status_classes={"PASS": "pass", "FAIL": "fail", "pass": "pass"},
        ),
    ]
    for s in result.scenarios:
        blocks.append(Heading(2, s.name))
        blocks.extend(Paragraph(n) for n in s.notes)
        blocks.append(
            TableBlock(
                table(
                    [Column("figure"), Column("value", align="right")],
                    [{"figure": k, "value": f"{v:.6g}"} for k, v in sorted(s.figures.items())],
                )
            )
        )
    return write_page(folder / "report.html", "Stress suite", blocks)
