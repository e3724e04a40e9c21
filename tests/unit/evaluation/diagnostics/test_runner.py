import json
from pathlib import Path

import pytest

from stairways.config import load_config
from stairways.configbase import CONFIG_DIR
from stairways.errors import InputError, MissingResourceError
from stairways.evaluation.diagnostics.runner import (
    JOB_FILE,
    SuiteRequest,
    _check_out_dir,
    _spec_diff,
    execute_job_task,
    parse_parts,
    plan_jobs,
    run_jobs,
)


def test_parts_are_parsed_into_suite_order_and_unknown_parts_refused() -> None:
    assert parse_parts("leakage, freeze") == ("freeze", "leakage")
    with pytest.raises(InputError, match="freeze, abc, leakage"):
        parse_parts("freeze,seeds")
    with pytest.raises(InputError):
        parse_parts(" , ")


def test_plan_has_one_job_per_run_with_same_seed_and_data(tmp_path: Path) -> None:
    cfg = load_config(CONFIG_DIR / "diagnostics.yaml")
    jobs = plan_jobs(cfg, SuiteRequest(config_path=None, out_dir=tmp_path))
    assert [j.name for j in jobs] == [
        "freeze/main",
        "abc/reward_v3",
        "abc/reward_shim",
        "abc/reward_internal",
        *(
            f"leakage/{arm}-seed{seed}"
            for arm in ("baseline", "lagged", "lookahead")
            for seed in (0, 1, 2)
        ),
    ]
    assert {j.spec["seed"] for j in jobs} == {cfg.diagnostics.seed}
    # every leakage arm trains with every seed; start offsets share the suite seed
    leak = [j for j in jobs if j.part == "leakage"]
    assert {(j.spec["arm"], j.spec["train_seed"]) for j in leak} == {
        (a, s) for a in ("baseline", "lagged", "lookahead") for s in (0, 1, 2)
    }
    assert jobs[0].spec["checkpoints"] == [5000, 10000, 15000]
    trained = {j.arm: j.spec["train_config"] for j in jobs if j.part == "abc"}
    # arms differ in the reward section only
    for arm_cfg in trained.values():
        assert arm_cfg["data"] == trained["reward_v3"]["data"]
        assert arm_cfg["training"] == trained["reward_v3"]["training"]
    assert trained["reward_shim"]["reward"]["mode"] == "shim"
    assert trained["reward_internal"]["reward"]["mode"] == "internal"
    assert (
        trained["reward_shim"]["reward"]["refined"]
        == trained["reward_internal"]["reward"]["refined"]
    )


def test_total_timesteps_override_scales_freeze_points_and_sets_run_length(tmp_path: Path) -> None:
    cfg = load_config(CONFIG_DIR / "diagnostics.yaml")
    jobs = plan_jobs(cfg, SuiteRequest(config_path=None, out_dir=tmp_path, total_timesteps=3000))
    assert jobs[0].spec["checkpoints"] == [1000, 2000, 3000]
    assert {j.spec["total_timesteps"] for j in jobs} == {3000}


def test_out_dir_with_results_needs_resume_and_resume_needs_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "diag"
    with pytest.raises(MissingResourceError, match="nothing to resume"):
        _check_out_dir(SuiteRequest(config_path=None, out_dir=out, resume=True))
    (out / "abc" / "reward_v3").mkdir(parents=True)
    (out / "abc" / "reward_v3" / JOB_FILE).write_text("{}")
    with pytest.raises(InputError, match="--resume"):
        _check_out_dir(SuiteRequest(config_path=None, out_dir=out))
    _check_out_dir(SuiteRequest(config_path=None, out_dir=out, resume=True))


def test_resume_reads_a_finished_job_with_the_same_spec_and_refuses_a_changed_one(
    tmp_path: Path,
) -> None:
    cfg = load_config(CONFIG_DIR / "diagnostics.yaml")
    request = SuiteRequest(config_path=None, out_dir=tmp_path, parts=("leakage",), resume=True)
    jobs = plan_jobs(cfg, request)
    for job in jobs:
        folder = tmp_path / job.part / job.arm
        folder.mkdir(parents=True)
        stored = {"spec": json.loads(json.dumps(job.spec)), "result": {"arm": job.arm}}
        (folder / JOB_FILE).write_text(json.dumps(stored))
    lines: list[str] = []
    results = run_jobs(jobs, request, workers=2, progress=lines.append)
    assert results == {j.name: {"arm": j.arm} for j in jobs}
    assert len(lines) == 9 and all("reusing" in line for line in lines)
    changed = plan_jobs(
        cfg,
        SuiteRequest(config_path=None, out_dir=tmp_path, parts=("leakage",), total_timesteps=99),
    )
    with pytest.raises(InputError, match="total_timesteps"):
        run_jobs(changed, request, workers=2, progress=lines.append)


def test_spec_diff_names_nested_keys() -> None:
    assert _spec_diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": 0}) == ["a.c", "d"]


class _RecordingBackend:
    """A backend that records the tasks it is given and answers for them."""

    name = "recording"

    def __init__(self) -> None:
        self.tasks: list[object] = []

    def map(self, fn, items):  # type: ignore[no-untyped-def]
        assert fn is execute_job_task
        self.tasks.extend(items)
        return [{"arm": part_arm[1]} for part_arm in items]


def test_pending_jobs_go_to_the_backend_as_tasks_and_finished_ones_are_reused(
    tmp_path: Path,
) -> None:
    cfg = load_config(CONFIG_DIR / "diagnostics.yaml")
    request = SuiteRequest(config_path=None, out_dir=tmp_path, parts=("leakage",), resume=True)
    jobs = plan_jobs(cfg, request)
    done = jobs[0]
    folder = tmp_path / done.part / done.arm
    folder.mkdir(parents=True)
    stored = {"spec": json.loads(json.dumps(done.spec)), "result": {"arm": "from disk"}}
    (folder / JOB_FILE).write_text(json.dumps(stored))
    backend = _RecordingBackend()
    lines: list[str] = []
    results = run_jobs(jobs, request, workers=2, progress=lines.append, backend=backend)
    assert results[done.name] == {"arm": "from disk"}
    assert [t[1] for t in backend.tasks] == [j.arm for j in jobs[1:]]  # type: ignore[index]
    assert all(str(tmp_path) in t[3] for t in backend.tasks)  # type: ignore[index]
    assert "as tasks on the recording backend" in " ".join(lines)
