import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stairways.config import load_config
from stairways.errors import InputError, MissingResourceError
from stairways.training.monitor import read_monitor_file
from stairways.training.rundir import (
    CheckpointRecord,
    DataProvenance,
    Manifest,
    RunDirectory,
    git_state,
    package_versions,
    run_name,
)
from stairways.training.runlock import RunLock
from stairways.training.runs import list_runs

WHEN = datetime(2024, 3, 5, 14, 30, 1, tzinfo=UTC)


def _manifest(name: str, **kw: object) -> Manifest:
    data = DataProvenance(
        symbols=["NVDA", "MSFT"],
        split="train",
        split_range={"start": "2022-01-03", "end": "2022-01-31"},
        splits={},
        panel_fingerprint="abc",
        n_sessions=20,
        synthetic=True,
        store_path="s.duckdb",
    )
    base: dict[str, object] = dict(
        run_name=name,
        config_name="cfg",
        algo="ppo",
        seed=1,
        total_timesteps=1000,
        start_time="2024-03-05T14:30:01+00:00",
        git_commit="unknown",
        git_dirty=None,
        python="3.11",
        platform="linux",
        versions={},
        torch_threads=1,
        data=data,
    )
    base.update(kw)
    return Manifest.model_validate(base)


def _monitor(path: Path, rewards: list[float]) -> None:
    lines = ['#{"t_start": 1.0, "env_id": "None"}', "r,l,t,episode_pnl"]
    lines += [f"{r},390,{i}.5,0.0" for i, r in enumerate(rewards)]
    path.write_text("\n".join(lines) + "\n")


def test_run_name_has_config_seed_and_utc_time() -> None:
    assert run_name("reward_v3", 7, WHEN) == "reward_v3_seed7_20240305T143001Z"


def test_two_runs_in_the_same_second_get_distinct_directories(tmp_path: Path) -> None:
    a = RunDirectory.create(tmp_path, "cfg", 1, WHEN)
    b = RunDirectory.create(tmp_path, "cfg", 1, WHEN)
    assert a.path != b.path
    assert b.name == "cfg_seed1_20240305T143001Z-1"


def test_explicit_run_dir_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(InputError, match="not empty"):
        RunDirectory.at(tmp_path / "x")
    assert (tmp_path / "x" / "file").read_text() == "keep me"


def test_manifest_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "cfg", 1, WHEN)
    m = _manifest(
        run.name,
        checkpoints=[CheckpointRecord(timesteps=5, path="p", rolling_reward=None, episodes=0)],
    )
    run.write_manifest(m)
    assert run.read_manifest() == m
    assert sorted(p.name for p in run.path.iterdir()) == ["manifest.json"]


def test_corrupt_manifest_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "cfg", 1, WHEN)
    run.manifest_path.write_text('{"run_name": 3')
    with pytest.raises(InputError, match=r"manifest\.json is not valid JSON"):
        run.read_manifest()


def test_opening_a_folder_without_manifest_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MissingResourceError, match="stairways train"):
        RunDirectory.open(tmp_path)


def test_resolved_config_records_overrides_and_loads_back(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "cfg", 1, WHEN)
    cfg = load_config(None, {"name": "cfg"})
    run.write_config(cfg, {"training.total_timesteps": 1234})
    text = run.config_path.read_text()
    assert "#   training.total_timesteps = 1234" in text
    assert load_config(run.config_path) == cfg


def test_only_complete_checkpoints_are_listed_newest_last(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "cfg", 1, WHEN)
    run.checkpoints_dir.mkdir()
    for t in (100, 2000, 300):
        f = run.checkpoint_files(t)
        for p in (f.model, f.vecnormalize, f.reward_state):
            p.write_text("x")
    run.checkpoint_files(5000).model.write_text("no statistics beside it")
    assert [c.timesteps for c in run.checkpoints()] == [100, 300, 2000]
    assert run.latest_checkpoint().timesteps == 2000


def test_run_without_checkpoints_cannot_be_resumed(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "cfg", 1, WHEN)
    with pytest.raises(MissingResourceError, match="no complete checkpoint"):
        run.latest_checkpoint()


def test_git_state_and_versions_are_recorded() -> None:
    commit, _dirty = git_state()
    assert commit == "unknown" or len(commit) == 40
    versions = package_versions()
    assert versions["torch"].startswith("2.13.0")
    assert set(versions) >= {"stable-baselines3", "gymnasium", "numpy", "pandas", "stairways"}


def test_git_state_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    assert git_state(tmp_path) == ("unknown", None)


def test_runs_list_reports_rolling_reward_from_monitor_and_unreadable_runs(
    tmp_path: Path,
) -> None:
    good = RunDirectory.create(tmp_path, "a", 1, WHEN)
    good.write_manifest(
        _manifest(
            good.name,
            status="completed",
            timesteps=1000,
            best_checkpoint="checkpoints/checkpoint_500.zip",
        )
    )
    _monitor(good.monitor_path, [1.0, 2.0, 3.0, 5.0])
    bad = RunDirectory.create(tmp_path, "b", 1, WHEN)
    bad.manifest_path.write_text("{}")
    (tmp_path / "not_a_run").mkdir()
    runs = {r.path.name: r for r in list_runs(tmp_path, window=2)}
    assert set(runs) == {good.name, bad.name}
    assert runs[good.name].rolling_reward == 4.0
    assert runs[good.name].episodes == 4
    assert runs[good.name].best_checkpoint == "checkpoints/checkpoint_500.zip"
    assert runs[bad.name].status == "unreadable"
    assert "not a valid run manifest" in (runs[bad.name].problem or "")


def test_monitor_with_a_truncated_last_line_keeps_the_complete_rows(tmp_path: Path) -> None:
    p = tmp_path / "monitor.csv"
    _monitor(p, [1.0, 2.0])
    with p.open("a") as fh:
        fh.write("3.5,39")
    assert read_monitor_file(p).rewards == [1.0, 2.0]


def test_monitor_with_a_bad_row_in_the_middle_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "monitor.csv"
    _monitor(p, [1.0, 2.0])
    text = p.read_text().replace("1.0,390", "oops,390")
    p.write_text(text + "4.0,390,3.0,0.0\n")
    with pytest.raises(InputError, match="line 3 column 'r' is not a number: 'oops'"):
        read_monitor_file(p)


def test_missing_runs_folder_is_reported_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MissingResourceError, match="stairways train"):
        list_runs(tmp_path / "nope")


def test_manifest_json_is_plain_json(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "cfg", 1, WHEN)
    run.write_manifest(_manifest(run.name))
    raw = json.loads(run.manifest_path.read_text())
    assert raw["status"] == "running"
    assert raw["data"]["panel_fingerprint"] == "abc"


@pytest.mark.parametrize(
    ("status", "stop_reason", "expected"),
    [
        ("completed", None, "its manifest says it completed, but"),
        ("stopped", "speed-bump: rolling Sharpe -1", "the speed-bump stopped it before the end"),
        ("failed", "RuntimeError: boom", "it ended failed: RuntimeError: boom before saving one"),
        ("interrupted", None, "it ended interrupted before saving one"),
        ("running", None, "its process was killed before saving one"),
    ],
)
def test_why_there_is_no_final_model_agrees_with_the_status(
    tmp_path: Path, status: str, stop_reason: str | None, expected: str
) -> None:
    run = RunDirectory.create(tmp_path, "a", 1, WHEN)
    manifest = _manifest(run.name, status=status, stop_reason=stop_reason)
    text = run.why_no_final_model(manifest)
    assert expected in text
    assert "did not finish" not in text
    if status in ("failed", "interrupted", "running"):
        assert f"stairways train --resume {run.path}" in text


def test_a_running_run_whose_lock_is_held_is_reported_as_running(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path, "a", 1, WHEN)
    with RunLock(run.path, "2024-03-05T14:30:01+00:00", "stairways train"):
        text = run.why_no_final_model(_manifest(run.name, status="running"))
    assert text.startswith(f"it is still running (pid {os.getpid()} on host")
