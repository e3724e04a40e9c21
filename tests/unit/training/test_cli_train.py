from pathlib import Path

import pytest
from typer.testing import CliRunner

from stairways.cli.main import app
from stairways.cli.train import FLAG_KEYS, collect_overrides
from stairways.config import CONFIG_DIR, dump_config, load_config
from tests.cli_helpers import stairways


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
        "training.backend": "sb3",
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


PHASE2 = CONFIG_DIR / "curriculum" / "phase2_oos.yaml"


@pytest.mark.parametrize(
    ("flag", "value", "key"),
    [("--ent-coef", "0.03", "ent_coef"), ("--learning-rate", "1e-4", "learning_rate")],
)
def test_a_flag_the_curriculum_replaces_is_refused_naming_flag_and_phase(
    flag: str,
    value: str,
    key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = stairways(monkeypatch, "train", "--config", PHASE2, flag, value, "--no-progress")
    err = capsys.readouterr().err
    assert code == 2
    assert (
        f"{flag} sets training.{key}, but the curriculum of config 'phase2_oos' replaces it: "
        f"training.curriculum.phases[0].{key} (phase 'lenient') from timestep 0"
    ) in err
    assert "Traceback" not in err


def test_a_flag_the_curriculum_replaces_is_refused_on_resume_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    (run / "config.yaml").write_text(dump_config(load_config(PHASE2)))
    code = stairways(monkeypatch, "train", "--resume", run, "--ent-coef", "0.03")
    assert code == 2
    assert "--ent-coef sets training.ent_coef" in capsys.readouterr().err


def test_a_flag_the_curriculum_does_not_set_still_applies() -> None:
    cfg = load_config(PHASE2, collect_overrides(target_kl=0.01, ent_coef=None))
    assert cfg.training.target_kl == 0.01
