"""``stairways tune``: grid or Bayesian hyperparameter search over a config.

Exit codes: 0 when at least one trial completed and met the pass criteria (best_config.yaml
written); 3 when none did (the results table is still written); 2 for bad input (space file,
flags, config, a protected tuning split, an --out that is not writable); 1 for other failures
(a Ray address where no cluster answers, a database that cannot be opened); 130 (143) when
Ctrl-C (SIGTERM) stopped the search: running trials went back to the queue, rerun to resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stairways.cli.common import ConfigOption
from stairways.evaluation.gates import GATES_FAILED_EXIT_CODE


def tune(
    space_file: Annotated[
        Path, typer.Option("--space", "-s", help="Search-space YAML (config/tuning/*.yaml).")
    ],
    config: Path | None = ConfigOption,
    sampler: Annotated[
        str | None, typer.Option("--sampler", help="grid or tpe (default: the space file's).")
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option("--trials", min=1, help="Finished trials wanted (grid: at most its size)."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=256, help="Parallel workers.")
    ] = 1,
    seeds_per_trial: Annotated[
        int | None, typer.Option("--seeds-per-trial", min=1, max=64, help="Seeds per trial.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Study database: postgresql://user@host/db to share it between machines "
            "(default: an SQLite file in --out).",
        ),
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="local (processes) or ray.")] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (with --backend ray).")
    ] = None,
    total_timesteps: Annotated[
        int | None, typer.Option("--total-timesteps", min=1, help="Training budget per trial.")
    ] = None,
    study_name: Annotated[
        str | None, typer.Option("--study-name", help="Study name (default: the space's name).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: tuning/<study>).")
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="Bar store (overrides data.store_path).")
    ] = None,
    reclaim_running: Annotated[
        bool,
        typer.Option(
            "--reclaim-running", help="Mark trials left running by dead workers failed now."
        ),
    ] = False,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Only rewrite the reports of the study.")
    ] = False,
) -> None:
    """Search hyperparameters: each trial trains at a fixed budget, scored on validation."""
    # Imported here, not at module level: `stairways --help` and light commands stay fast.
    from stairways.tuning.search import SearchRequest, run_search, write_reports
    from stairways.tuning.space import load_space, override_settings
    from stairways.tuning.train_objective import TrainingObjective

    space = load_space(space_file)
    updates: dict[str, Any] = {}
    if sampler is not None:
        updates["sampler"] = sampler
    if trials is not None:
        updates["n_trials"] = trials
    if seeds_per_trial is not None:
        updates["budget.seeds_per_trial"] = seeds_per_trial
    if total_timesteps is not None:
        updates["budget.total_timesteps"] = total_timesteps
    if updates:
        space = override_settings(space, updates, f"{space_file} with command-line flags")
    name = study_name or space.name
    base_overrides = {"data.store_path": str(store)} if store is not None else {}
    request = SearchRequest(
        space=space,
        out_dir=out or Path("tuning") / name,
        study_name=name,
        storage_url=storage,
        workers=workers,
        backend=backend,
        address=address,
        base_config=config,
        base_overrides=base_overrides,
        reclaim_running=reclaim_running,
    )
    if report_only:
        outcome = write_reports(request)
    else:
        objective = TrainingObjective(
            base_config=config,
            study_name=name,
            split=space.objective.split,
            metric=space.objective.metric,
            total_timesteps=space.budget.total_timesteps,
            eval_every=space.budget.eval_every,
            base_overrides=base_overrides,
        )
        outcome = run_search(request, objective)
    p = outcome.progress
    typer.echo(
        f"study {outcome.study_name} ({outcome.storage_url}): {p.complete} complete, "
        f"{p.pruned} pruned, {p.failed} failed, {p.running} running, {p.waiting} queued"
    )
    for w in outcome.workers:
        typer.echo(
            f"  worker {w.worker_index} ({w.backend} {w.host} pid {w.pid}): trials "
            f"{list(w.trials)}; {w.stop_reason}"
        )
    typer.echo(f"results: {outcome.files['csv']} and {outcome.files['html']}")
    typer.echo(outcome.verdict.message)
    if outcome.best is None:
        typer.echo("no trial met the pass criteria; no best config written (exit code 3)")
        raise typer.Exit(GATES_FAILED_EXIT_CODE)
    typer.echo(
        f"best: trial {outcome.best.number}, score {outcome.best.score:.6g}, "
        f"params {outcome.best.params}"
    )
    typer.echo(f"best config: {outcome.files['best_config']}")
