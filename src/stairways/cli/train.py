"""``stairways train``: run, resume or warm-start a PPO training run."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer

from stairways.cli.common import ConfigOption, StoreOption
from stairways.config import StairwaysConfig, load_config
from stairways.errors import ConfigError
from stairways.training.curriculum import SHADOWED_SETTINGS, shadows
from stairways.writable import require_writable_dir

# Flag name -> dotted config key. A flag left out (None) never replaces a config value.
FLAG_KEYS: dict[str, str] = {
    "total_timesteps": "training.total_timesteps",
    "learning_rate": "training.learning_rate",
    "target_kl": "training.target_kl",
    "ent_coef": "training.ent_coef",
    "early_exit_tax": "reward.refined.early_exit_tax",
    "early_exit_threshold": "reward.refined.min_episode_length",
    "seed": "training.seed",
    "n_envs": "training.n_envs",
    "backend": "training.backend",
    "runs_dir": "training.runs_dir",
    "store": "data.store_path",
}


def refuse_shadowed_flags(
    overrides: Mapping[str, Any], load: Callable[[Mapping[str, Any]], StairwaysConfig]
) -> None:
    """Refuse a flag whose setting a curriculum phase of the config replaces.

    The config validator refuses the conflict too, but names only key paths; here the message
    names the flag the user typed.

    :param overrides: dotted overrides of the flags that were given
    :param load: loads the run's config with the given overrides
    """
    flagged = [key for key in overrides if key in SHADOWED_SETTINGS.values()]
    if not flagged:
        return
    cfg = load({k: v for k, v in overrides.items() if k not in flagged})
    found = shadows(cfg.training.curriculum)
    by_key = {key: name for name, key in FLAG_KEYS.items()}
    for key in flagged:
        if key in found:
            flag = "--" + by_key[key].replace("_", "-")
            raise ConfigError(
                f"{flag} sets {key}, but the curriculum of config {cfg.name!r} replaces it: "
                f"{found[key].describe()}. The flag would be ignored; drop it, or change "
                "the phases in the config (training.curriculum.phases)"
            )


def collect_overrides(**flags: Any) -> dict[str, Any]:
    """Dotted config overrides for the flags that were given (None means not given)."""
    unknown = sorted(set(flags) - set(FLAG_KEYS))
    if unknown:
        raise ValueError(f"no config key for flags {unknown}")
    out: dict[str, Any] = {}
    for name, value in flags.items():
        if value is None:
            continue
        out[FLAG_KEYS[name]] = str(value) if isinstance(value, Path) else value
    return out


_TOTAL = typer.Option(
    None, "--total-timesteps", "--total_timesteps", min=1, help="training.total_timesteps"
)
_LR = typer.Option(
    None,
    "--learning-rate",
    "--learning_rate",
    min=0.0,
    help="Constant training.learning_rate (refused when curriculum phases set one)",
)
_KL = typer.Option(None, "--target-kl", "--target_kl", help="training.target_kl")
_ENT = typer.Option(
    None,
    "--ent-coef",
    "--ent_coef",
    help="training.ent_coef (refused when curriculum phases set one)",
)
_TAX = typer.Option(
    None, "--early-exit-tax", "--early_exit_tax", help="reward.refined.early_exit_tax"
)
_THRESHOLD = typer.Option(
    None,
    "--early-exit-threshold",
    "--early_exit_threshold",
    help="reward.refined.min_episode_length (steps below which an exit is early)",
)
_SEED = typer.Option(None, "--seed", help="training.seed (Python, numpy, torch and the env)")
_N_ENVS = typer.Option(None, "--n-envs", "--n_envs", help="training.n_envs")
_BACKEND = typer.Option(
    None,
    "--backend",
    help="training.backend: fused (the default) or sb3; the settings the config leaves unset "
    "(n_envs, n_steps, batch_size, n_epochs, learning_rate) take that backend's defaults",
)
_RUNS_DIR = typer.Option(None, "--runs-dir", "--runs_dir", help="training.runs_dir")
_RUN_DIR = typer.Option(
    None, "--run-dir", "--run_dir", help="Exact run directory (default runs/<name>_seed<s>_<UTC>)"
)
_RESUME = typer.Option(
    None, "--resume", help="Continue a run directory (or a checkpoint zip into a new run)"
)
_INIT_FROM = typer.Option(
    None, "--init-from", "--init_from", help="Start a new run from a model zip's weights"
)
_ALLOW = typer.Option(
    False,
    "--allow-test-overlap",
    "--allow_test_overlap",
    help="Allow training on protected (test) dates; recorded in the manifest",
)
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar.")


def train_command(
    config: Path | None = ConfigOption,
    total_timesteps: int | None = _TOTAL,
    learning_rate: float | None = _LR,
    target_kl: float | None = _KL,
    ent_coef: float | None = _ENT,
    early_exit_tax: float | None = _TAX,
    early_exit_threshold: int | None = _THRESHOLD,
    seed: int | None = _SEED,
    n_envs: int | None = _N_ENVS,
    backend: str | None = _BACKEND,
    store: Path | None = StoreOption,
    runs_dir: Path | None = _RUNS_DIR,
    run_dir: Path | None = _RUN_DIR,
    resume: Path | None = _RESUME,
    init_from: Path | None = _INIT_FROM,
    allow_test_overlap: bool = _ALLOW,
    progress: bool = _PROGRESS,
) -> None:
    """Train a PPO agent; every hyperparameter comes from the config, flags override it."""
    # Imported here, not at module level: `stairways --help` and light commands stay fast.
    from stairways.training.trainer import TrainOptions, config_for_resume, train

    overrides = collect_overrides(
        total_timesteps=total_timesteps,
        learning_rate=learning_rate,
        target_kl=target_kl,
        ent_coef=ent_coef,
        early_exit_tax=early_exit_tax,
        early_exit_threshold=early_exit_threshold,
        seed=seed,
        n_envs=n_envs,
        backend=backend,
        runs_dir=runs_dir,
        store=store,
    )

    def load(given: Mapping[str, Any]) -> StairwaysConfig:
        if resume is not None:
            return config_for_resume(resume, config, given)
        return load_config(config, given)

    refuse_shadowed_flags(overrides, load)
    cfg = load(overrides)
    # Before minutes of loading data: the directory the run will be written to.
    if resume is not None and resume.is_dir() and run_dir is None:
        require_writable_dir(resume, "--resume")
    elif run_dir is not None:
        require_writable_dir(run_dir, "--run-dir")
    else:
        require_writable_dir(cfg.training.runs_dir, "--runs-dir or training.runs_dir")
    options = TrainOptions(
        run_dir=run_dir,
        resume=resume,
        init_from=init_from,
        allow_test_overlap=allow_test_overlap,
        overrides=overrides,
        command=["stairways", *sys.argv[1:]],
        progress=progress,
    )
    result = train(cfg, options)
    typer.echo(f"run directory: {result.run_dir}")
    typer.echo(f"status: {result.status} at {result.timesteps} timesteps")
    if result.stop_reason:
        typer.echo(f"reason: {result.stop_reason}")
    first = "n/a" if result.first_rolling_reward is None else f"{result.first_rolling_reward:.4f}"
    last = "n/a" if result.rolling_reward is None else f"{result.rolling_reward:.4f}"
    window = cfg.training.rolling_window
    typer.echo(
        f"episodes: {result.episodes}; mean reward of the first {window}: {first}; "
        f"of the last {window}: {last}"
    )
    typer.echo(f"best checkpoint: {result.best_checkpoint or 'none'}")
    typer.echo(f"speed: {result.steps_per_second:.0f} timesteps/s")
