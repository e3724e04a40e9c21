"""``stairways validate``: walk-forward validation (``temporal``) and the power study (``power``).

Exit codes of ``temporal``: 0 every pair passed every success gate; 3 at least one did not
(outputs were written). Of ``power``: 0 no arm's observed false-positive rate at strength 0 is
above its goal (the verdict lines say whether the goal is also *shown*: the exact upper bound
within it); 3 one is above. Both: 2 bad input; 1 any other failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stairways.cli.common import StoreOption
from stairways.cli.task_backend import AddressOption, BackendOption, task_backend
from stairways.config import load_config
from stairways.errors import InputError
from stairways.evaluation.gates import GatesFailedError

app = typer.Typer(help="Out-of-sample validation.", no_args_is_help=True)


_CONFIG = typer.Option(None, "--config", "-c", help="YAML config to train.")
_PAIRS = typer.Option(
    [], "--pair", help="Temporal pair to run (repeatable; default: all, the primary first)."
)
_STEPS = typer.Option(
    None, "--total-timesteps", min=1, help="Timesteps per pair (training.total_timesteps)."
)
_OUT = typer.Option(
    None, "--out", help="Output directory (default runs/temporal_<config>_<UTC time>)."
)
_WORKERS = typer.Option(None, "--workers", min=1, help="Cap on worker processes.")
_OUT_POWER = typer.Option(
    None, "--out", help="Output directory (default runs/power_<config>_<UTC time>)."
)


@app.command("temporal")
def temporal(
    config: Path | None = _CONFIG,
    pairs: list[str] = _PAIRS,
    total_timesteps: int | None = _STEPS,
    out: Path | None = _OUT,
    workers: int | None = _WORKERS,
    store: Path | None = StoreOption,
) -> None:
    """Train on each pair's training period, evaluate on its test period, report the gates."""
    from stairways.evaluation.temporal import run_temporal_validation, summary_table

    overrides = {"data.store_path": str(store)} if store is not None else {}
    cfg = load_config(config, overrides)
    report = run_temporal_validation(
        cfg, pairs=pairs or None, total_timesteps=total_timesteps, out_dir=out, workers=workers
    )
    typer.echo(summary_table(report))
    typer.echo(f"summary: {report.csv_path}")
    if not report.passed:
        failed = [p.name for p in report.pairs if not p.gates_passed]
        raise GatesFailedError(f"success gates failed for pairs {failed} (see {report.json_path})")


_POWER_CONFIG = typer.Option(
    None,
    "--config",
    "-c",
    help="YAML config: gates, training, market and the evaluation.power grid "
    "(config/power.yaml ships one with a validation split).",
)


def _floats(text: str | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _ints(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"{what} must be comma-separated whole numbers, got {text!r}") from None


@app.command("power")
def power(
    config: Path | None = _POWER_CONFIG,
    strengths: Annotated[
        str | None,
        typer.Option("--strengths", help="Signal strengths, e.g. 0,0.1,0.2 (0 is required)."),
    ] = None,
    market_seeds: Annotated[
        str | None,
        typer.Option(
            "--market-seeds",
            help="Market seeds of every strength above 0, e.g. 101,102 (strength 0: "
            "--null-market-seeds).",
        ),
    ] = None,
    training_seeds: Annotated[
        str | None,
        typer.Option(
            "--training-seeds",
            help="Training seeds per market above strength 0, e.g. 0,1 (strength 0: "
            "--null-training-seeds).",
        ),
    ] = None,
    null_market_seeds: Annotated[
        str | None,
        typer.Option("--null-market-seeds", help="Market seeds of strength 0, e.g. 101,102."),
    ] = None,
    null_training_seeds: Annotated[
        str | None,
        typer.Option("--null-training-seeds", help="Training seeds per strength-0 market."),
    ] = None,
    total_timesteps: Annotated[
        int | None, typer.Option("--total-timesteps", min=1, help="Timesteps per run.")
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="Split every run is judged on (not test).")
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Smoke size: strength 0 and the strongest, one market and seed."
        ),
    ] = False,
    rule_only: Annotated[
        bool,
        typer.Option(
            "--rule-only",
            help="Calibrate the strengths: markets, the signal-knowing rule and the baselines "
            "only; no training.",
        ),
    ] = False,
    progress: Annotated[
        bool,
        typer.Option(
            "--progress",
            help="Run nothing: show what the study in --out has finished so far (it may still "
            "be running).",
        ),
    ] = False,
    readme: Annotated[
        Path | None,
        typer.Option("--readme", help="Write the table between this file's power-table markers."),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(
            "--record",
            help="Copy the finished study's power.json here (docs/power_study.json is the "
            "committed record the README's table is checked against).",
        ),
    ] = None,
    from_record: Annotated[
        Path | None,
        typer.Option(
            "--from-record",
            help="Render the table (and --readme block) from this power.json; runs nothing.",
        ),
    ] = None,
    out: Path | None = _OUT_POWER,
    workers: int | None = _WORKERS,
    backend: BackendOption = "local",
    address: AddressOption = None,
) -> None:
    """Gate pass rates with and without a planted signal: false-positive rate and power.

    Resumable: every finished market and run is stored in --out as it completes; the same
    command with the same config and --out skips them. Exits 0 when no observed false-positive
    rate at strength 0 is above evaluation.power.max_false_positive_rate, 3 when one is.
    """
    from stairways.configbase import validate_model
    from stairways.evaluation.power import (
        calibration_text,
        markdown_table,
        quick_settings,
        report_from_json,
        run_power_study,
        verdict_lines,
        write_readme_block,
    )
    from stairways.evaluation.settings import PowerConfig

    runner = task_backend(backend, address, workers)
    cfg = load_config(config)
    changes: dict[str, object] = {
        "strengths": _floats(strengths, "--strengths"),
        "market_seeds": _ints(market_seeds, "--market-seeds"),
        "training_seeds": _ints(training_seeds, "--training-seeds"),
        "null_market_seeds": _ints(null_market_seeds, "--null-market-seeds"),
        "null_training_seeds": _ints(null_training_seeds, "--null-training-seeds"),
        "total_timesteps": total_timesteps,
        "split": split,
    }
    data = cfg.evaluation.power.model_dump(mode="json")
    data.update({k: v for k, v in changes.items() if v is not None})
    settings = validate_model(PowerConfig, data, "evaluation.power (command line)")
    if readme is not None and (quick or rule_only):
        raise InputError("--readme takes a full study's table, not a --quick or --rule-only one")
    if readme is not None and not readme.is_file():
        raise InputError(f"--readme {readme} is not a file")
    if quick:
        settings = quick_settings(settings)
    if from_record is not None:
        if not from_record.is_file():
            raise InputError(f"--from-record {from_record}: no such file")
        recorded = report_from_json(from_record.read_text(), str(from_record))
        typer.echo(markdown_table(recorded))
        for line in verdict_lines(recorded):
            typer.echo(line)
        if readme is not None:
            typer.echo(f"README table written: {write_readme_block(readme, recorded)}")
        return
    if record is not None and (quick or rule_only or progress):
        raise InputError(
            "--record takes a full study's results, not --quick/--rule-only/--progress"
        )
    if progress:
        if readme is not None or rule_only:
            raise InputError("--progress only reads a study; it takes no --readme or --rule-only")
        partial = run_power_study(cfg, settings=settings, out_dir=out, progress=True)
        typer.echo(
            f"{len(partial.rows)} of {partial.planned_runs} runs finished "
            f"({partial.seconds / 60:.0f} min of study time so far)"
        )
        typer.echo(markdown_table(partial))
        for line in verdict_lines(partial):
            typer.echo(line)
        return
    report = run_power_study(
        cfg, settings=settings, out_dir=out, workers=workers, backend=runner, rule_only=rule_only
    )
    typer.echo(markdown_table(report))
    if rule_only:
        for what, path in report.files.items():
            typer.echo(f"{what}: {path}")
        return
    for line in verdict_lines(report):
        typer.echo(line)
    calibration = calibration_text(report)
    if calibration:
        typer.echo(calibration)
    for what, path in report.files.items():
        typer.echo(f"{what}: {path}")
    if readme is not None:
        typer.echo(f"README table written: {write_readme_block(readme, report)}")
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(report.files["json"].read_text())
        typer.echo(f"recorded the study in {record}")
    if not report.passed:
        above = [f.text() for f in report.false_positives if f.exceeded]
        raise GatesFailedError(
            f"the gates pass too often without a signal: {'; '.join(above)} (see "
            f"{report.files['markdown']})"
        )
