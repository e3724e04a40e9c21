"""``stairways stress run``: the stress suite against the live loop with the simulated broker.

Exit codes: 0 every gate held; 3 a gate failed (results and report written); 2 bad input
(config, unknown scenario, no run); 1 any other failure.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from stairways.clock import ExchangeClock
from stairways.stress.settings import load_stress_config
from stairways.stress.suite import build_context, run_suite, write_report

app = typer.Typer(help="The nightly stress suite of the live stack.", no_args_is_help=True)

EXIT_GATES = 3


@app.command("run")
def run(
    scenario: list[str] = typer.Option(
        [],
        "--scenario",
        "-s",
        help="Scenario to run (repeatable): flash_crash, broker_disconnect, order_burst.",
    ),
    short: bool = typer.Option(
        False, "--short", help="The short form (the default test run); the same sessions today."
    ),
    out: Path | None = typer.Option(None, "--out", help="Results folder (default: out_dir)."),
    run_dir: Path | None = typer.Option(None, "--run", help="Trained run (default: run_dir)."),
    stress_config: Path | None = typer.Option(
        None, "--stress-config", help="Suite settings (default: config/stress/suite.yaml)."
    ),
) -> None:
    """Run the scenarios, write results.json and report.html; exit 3 when a gate fails."""
    cfg = load_stress_config(stress_config)
    clock = ExchangeClock()
    target = out if out is not None else cfg.out_dir
    with tempfile.TemporaryDirectory(prefix="stairways-stress-") as work:
        ctx = build_context(cfg, run_dir, Path(work))
        result = run_suite(ctx, cfg, scenario, short=short, clock=clock)
    report = write_report(result, target, ctx.day, clock.now())
    for s in result.scenarios:
        typer.echo(f"{s.name:<20} {'PASS' if s.passed else 'FAIL'}")
        if s.error:
            typer.echo(f"    {s.error}")
        for g in s.gates:
            typer.echo(f"    {g.line()}")
    typer.echo(f"report: {report}")
    if not result.passed:
        raise typer.Exit(EXIT_GATES)
