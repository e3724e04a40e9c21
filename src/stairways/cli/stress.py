"""``stairways stress run``: the stress suite against the live loop with the simulated broker.

Exit codes: 0 every gate held; 3 a gate failed (results and report written); 2 bad input
(config, unknown scenario, no run); 1 any other failure.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from stairways.cli.common import ConfigOption, build_config
from stairways.cli.journal import journal_location
from stairways.clock import ExchangeClock
from stairways.config import StairwaysConfig
from stairways.errors import InputError
from stairways.journal import JournalReader
from stairways.live.model import ModelRef
from stairways.stress.settings import StressConfig, load_stress_config
from stairways.stress.suite import build_context, run_suite, write_report

app = typer.Typer(help="The nightly stress suite of the live stack.", no_args_is_help=True)

EXIT_GATES = 3


def _registered(cfg: StressConfig, app_cfg: StairwaysConfig, registry: str | None) -> ModelRef:
    """The registered model the config names (``model``: an id or a stage alias)."""
    from stairways.live.registry import load_model_ref

    if cfg.model is None:
        raise InputError(
            "the stress suite needs a model: pass --run RUN_DIR, or set run_dir or model in the "
            "stress config (config/stress/suite.yaml)"
        )
    location, _ = journal_location(app_cfg, registry, need_key=False)
    path = location.path
    if path is not None and not path.is_file():
        raise InputError(
            f"the stress suite stresses the registered model {cfg.model!r}, but there is no "
            f"model registry at {path}; register and promote a model (stairways models "
            "register, stairways ladder promote), pass --run RUN_DIR or set run_dir in the "
            "stress config"
        )
    with JournalReader.open(location) as reader:
        try:
            return load_model_ref(reader, cfg.model)
        except InputError as err:
            raise InputError(
                f"{err}; the stress suite stresses the model named by 'model' in the stress "
                "config (pass --run RUN_DIR or set run_dir to stress a run instead)"
            ) from None


@app.command("run")
def run(
    scenario: list[str] = typer.Option(
        [],
        "--scenario",
        "-s",
        help="Scenario to run (repeatable; default all): see config/stress/suite.yaml.",
    ),
    short: bool = typer.Option(
        False, "--short", help="The short form (the default test run); the same sessions today."
    ),
    out: Path | None = typer.Option(None, "--out", help="Results folder (default: out_dir)."),
    run_dir: Path | None = typer.Option(None, "--run", help="Trained run (default: run_dir)."),
    stress_config: Path | None = typer.Option(
        None, "--stress-config", help="Suite settings (default: config/stress/suite.yaml)."
    ),
    registry: str | None = typer.Option(
        None, "--registry-journal", help="Journal holding the model registry (default: config)."
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Run the scenarios, write results.json and report.html; exit 3 when a gate fails.

    The model: --run, else run_dir of the suite config, else its registered ``model`` (by
    default the model at the paper stage now); never any other.
    """
    cfg = load_stress_config(stress_config)
    clock = ExchangeClock()
    target = out if out is not None else cfg.out_dir
    model: Path | ModelRef | None = run_dir
    if run_dir is None and cfg.run_dir is None:
        model = _registered(cfg, build_config(config), registry)
    with tempfile.TemporaryDirectory(prefix="stairways-stress-") as work:
        ctx = build_context(cfg, model, Path(work))
        result = run_suite(ctx, cfg, scenario, short=short, clock=clock)
    report = write_report(result, target, ctx.day, clock.now())
    typer.echo(f"model: {result.model} ({ctx.policy.ref.run_dir}, {ctx.policy.ref.checkpoint})")
    for s in result.scenarios:
        typer.echo(f"{s.name:<20} {'PASS' if s.passed else 'FAIL'}")
        if s.error:
            typer.echo(f"    {s.error}")
        for g in s.gates:
            typer.echo(f"    {g.line()}")
    typer.echo(f"report: {report}")
    if not result.passed:
        raise typer.Exit(EXIT_GATES)
