from pathlib import Path

from typer.testing import CliRunner

from stairways.cli.main import app
from stairways.cli.train import FLAG_KEYS, collect_overrides
from stairways.config import load_config


def test_flags_not_given_produce_no_overrides() -> None:
    assert collect_overrides(**dict.fromkeys(FLAG_KEYS)) == {}


def test_given_flags_map_to_their_config_keys() -> None:
    got = collect_overrides(
        total_timesteps=50_000,
        learning_rate=1e-4,
        early_exit_tax=2.5,
        early_exit_threshold=60,
        store=Path("s.duckdb"),
        seed=None,
    )
    assert got == {
        "training.total_timesteps": 50_000,
        "training.learning_rate": 1e-4,
        "reward.refined.early_exit_tax": 2.5,
        "reward.refined.min_episode_length": 60,
        "data.store_path": "s.duckdb",
    }


def test_every_flag_key_is_a_real_config_key() -> None:
    values = {
        "training.total_timesteps": 10,
        "training.learning_rate": 1e-3,
        "training.target_kl": 0.02,
        "training.ent_coef": 0.0,
        "reward.refined.early_exit_tax": 1.0,
        "reward.refined.min_episode_length": 10,
        "training.seed": 1,
        "training.n_envs": 2,
        "training.runs_dir": "r",
        "data.store_path": "s.duckdb",
    }
    assert set(values) == set(FLAG_KEYS.values())
    cfg = load_config(None, values)
    assert cfg.training.n_envs == 2
    assert cfg.reward.refined.early_exit_tax == 1.0


def test_overridden_value_out_of_range_is_a_config_error_naming_the_key() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--n-envs", "0", "--no-progress"])
    assert result.exit_code != 0
    assert "training.n_envs" in str(result.exception)


def test_snake_case_aliases_are_accepted() -> None:
    import typer.main

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    names = {opt for param in command.params for opt in param.opts}
    for flag in (
        "total_timesteps",
        "learning_rate",
        "target_kl",
        "ent_coef",
        "early_exit_tax",
        "early_exit_threshold",
        "run_dir",
        "n_envs",
    ):
        assert f"--{flag}" in names
        assert f"--{flag.replace('_', '-')}" in names
