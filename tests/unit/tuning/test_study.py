"""Study mechanics with cheap deterministic objectives: workers, resume, pruning, failures.

These objectives test the search machinery (storage, queue, pruning, resume), not training.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from stairways.errors import ConfigError, SplitOverlapError
from stairways.tuning.search import run_search
from stairways.tuning.space import SearchSpace
from stairways.tuning.study import all_trials, load_study, prepare_study
from tests.paths import REPO_ROOT
from tests.unit.tuning.conftest import make_request, make_space
from tests.unit.tuning.objectives import FailingObjective, QuadraticObjective, read_log


def _points(log: list[dict], event: str) -> collections.Counter[str]:
    return collections.Counter(
        json.dumps(e["params"], sort_keys=True) for e in log if e["event"] == event
    )


def test_grid_with_two_worker_processes_then_every_point_runs_once_in_a_worker(
    tmp_path: Path, log_path: str
) -> None:
    request = make_request(tmp_path, make_space(), workers=2)
    outcome = run_search(request, QuadraticObjective(log_path=log_path, rendezvous=2))

    assert outcome.progress.complete == 4
    assert outcome.progress.failed == 0
    log = read_log(log_path)
    ends = _points(log, "end")
    assert len(ends) == 4 and set(ends.values()) == {1}
    pids = {e["pid"] for e in log}
    # Both worker processes ran trials, and none ran in this (the driver's) process.
    assert len(pids) == 2 and os.getpid() not in pids
    assert {s.pid for s in outcome.workers} == pids
    # The best point of the quadratic is clip 2.0, strength 1.0.
    assert outcome.best is not None
    assert outcome.best.params == {"data.features.clip": 2.0, "data.synthetic.signal_strength": 1.0}


def test_restart_with_same_storage_then_finished_trials_are_not_rerun(
    tmp_path: Path, log_path: str
) -> None:
    objective = QuadraticObjective(log_path=log_path, steps=1)
    first = run_search(make_request(tmp_path, make_space(n_trials=2)), objective)
    assert first.progress.complete == 2

    second = run_search(make_request(tmp_path, make_space()), objective)

    assert second.progress.complete == 4
    starts = _points(read_log(log_path), "start")
    assert len(starts) == 4 and set(starts.values()) == {1}
    # A third run has nothing left to do.
    third = run_search(make_request(tmp_path, make_space()), objective)
    assert third.progress.complete == 4
    assert sum(_points(read_log(log_path), "start").values()) == 4


def test_killed_search_then_restart_reruns_only_the_interrupted_trial(
    tmp_path: Path, log_path: str
) -> None:
    script = f"""
from pathlib import Path
from stairways.tuning.search import run_search
from stairways.tuning.space import SearchSpace
from tests.unit.tuning.conftest import make_request, make_space
from tests.unit.tuning.objectives import QuadraticObjective
if __name__ == "__main__":
    run_search(make_request(Path({str(tmp_path)!r}), make_space()),
               QuadraticObjective(log_path={log_path!r}, sleep_s=0.4))
"""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = read_log(log_path) if Path(log_path).exists() else []
            if (
                sum(e["event"] == "end" for e in log) >= 2
                and sum(e["event"] == "start" for e in log) >= 3
            ):
                break
            assert proc.poll() is None, "the search ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the search did not reach its third trial within 120 s")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    killed = [
        p
        for p, n in _points(read_log(log_path), "start").items()
        if p not in _points(read_log(log_path), "end")
    ]
    assert len(killed) == 1
    # Let the dead worker's heartbeat go stale (grace period 2 s in the test space).
    time.sleep(3.0)

    outcome = run_search(
        make_request(tmp_path, make_space()), QuadraticObjective(log_path=log_path)
    )

    assert outcome.progress.complete == 4
    assert outcome.progress.failed == 1  # the killed trial, failed by its stale heartbeat
    log = read_log(log_path)
    starts, ends = _points(log, "start"), _points(log, "end")
    assert set(ends.values()) == {1} and len(ends) == 4
    assert starts[killed[0]] == 2
    assert all(n == 1 for p, n in starts.items() if p != killed[0])


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_trial_left_running_by_dead_worker_then_reclaim_reruns_its_point(
    tmp_path: Path, log_path: str
) -> None:
    request = make_request(tmp_path, make_space())
    setup = request.setup()
    prepare_study(setup)
    # A worker took a queued point and died before sending any heartbeat.
    orphan = load_study(setup).ask()
    assert orphan.user_attrs["grid_point"]

    without = run_search(request, QuadraticObjective(log_path=log_path, steps=1))
    assert without.progress.complete == 3 and without.progress.running == 1
    assert without.passed  # the report is still written from the three finished trials

    reclaimed = run_search(
        make_request(tmp_path, make_space(), reclaim_running=True),
        QuadraticObjective(log_path=log_path, steps=1),
    )
    assert reclaimed.progress.complete == 4 and reclaimed.progress.running == 0
    record = next(r for r in reclaimed.records if r.number == orphan.number)
    assert record.state == "failed" and "reclaim" in record.error


def test_hopeless_trial_with_threshold_pruner_then_pruned_at_first_report(
    tmp_path: Path, log_path: str
) -> None:
    space = make_space(
        pruner={"kind": "threshold", "lower": 0.0},
        parameters={
            "data.features.clip": {"choices": [2.0, 9.0]},
            "data.synthetic.signal_strength": {"choices": [1.0]},
        },
    )
    outcome = run_search(make_request(tmp_path, space), QuadraticObjective(log_path=log_path))

    by_clip = {r.params["data.features.clip"]: r for r in outcome.records}
    assert by_clip[9.0].state == "pruned"
    assert by_clip[9.0].pruned_at_step == 1
    assert by_clip[2.0].state == "complete"
    ends = _points(read_log(log_path), "end")
    assert all('"data.features.clip": 9.0' not in p for p in ends)  # stopped before its end


def test_hopeless_trial_with_median_pruner_then_pruned_after_startup_trials(
    tmp_path: Path, log_path: str
) -> None:
    space = make_space(
        pruner={"kind": "median", "n_startup_trials": 2},
        parameters={
            "data.features.clip": {"choices": [2.0, 2.2, 6.0]},
            "data.synthetic.signal_strength": {"choices": [1.0]},
        },
    )
    outcome = run_search(make_request(tmp_path, space), QuadraticObjective(log_path=log_path))

    states = {r.params["data.features.clip"]: r.state for r in outcome.records}
    assert states == {2.0: "complete", 2.2: "complete", 6.0: "pruned"}
    assert outcome.progress.pruned == 1


def test_trial_raising_runtime_error_then_failed_and_requeued_on_resume(
    tmp_path: Path, log_path: str
) -> None:
    first = run_search(make_request(tmp_path, make_space()), FailingObjective(fail_clip=1.0))
    assert first.progress.complete == 2 and first.progress.failed == 2
    failed = [r for r in first.records if r.state == "failed"]
    assert all("diverged" in r.error for r in failed)

    second = run_search(
        make_request(tmp_path, make_space()), QuadraticObjective(log_path=log_path, steps=1)
    )

    assert second.progress.complete == 4
    reran = _points(read_log(log_path), "start")
    assert len(reran) == 2  # only the two failed points ran again
    assert all('"data.features.clip": 1.0' in p for p in reran)


def test_trial_raising_programming_error_then_search_stops(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="diverged"):
        run_search(
            make_request(tmp_path, make_space()),
            FailingObjective(fail_clip=1.0, error=TypeError),
        )


def test_resume_with_different_space_then_config_error_names_the_change(
    tmp_path: Path,
) -> None:
    run_search(make_request(tmp_path, make_space(n_trials=1)), QuadraticObjective(steps=1))
    other = make_space(
        parameters={
            "data.features.clip": {"choices": [1.0, 3.0]},
            "data.synthetic.signal_strength": {"choices": [0.5, 1.0]},
        }
    )
    with pytest.raises(ConfigError, match="parameters"):
        run_search(make_request(tmp_path, other), QuadraticObjective(steps=1))


def test_tpe_with_trial_target_then_exact_count_and_resume_adds_only_the_rest(
    tmp_path: Path, log_path: str
) -> None:
    def space(n: int) -> SearchSpace:
        return make_space(
            sampler="tpe",
            n_trials=n,
            tpe_startup_trials=2,
            parameters={
                "data.features.clip": {"type": "float", "low": 0.5, "high": 4.0},
                "data.synthetic.signal_strength": {"type": "float", "low": 0.1, "high": 2.0},
            },
        )

    objective = QuadraticObjective(log_path=log_path, steps=1)
    assert run_search(make_request(tmp_path, space(4)), objective).progress.complete == 4
    outcome = run_search(make_request(tmp_path, space(6)), objective)

    assert outcome.progress.complete == 6
    assert sum(_points(read_log(log_path), "start").values()) == 6
    clips = [r.params["data.features.clip"] for r in outcome.records]
    assert all(0.5 <= c <= 4.0 for c in clips)


def test_two_drivers_on_one_sqlite_study_then_no_grid_point_runs_twice(
    tmp_path: Path, log_path: str
) -> None:
    script = f"""
from pathlib import Path
from stairways.tuning.search import run_search
from stairways.tuning.space import SearchSpace
from tests.unit.tuning.conftest import make_request, make_space
from tests.unit.tuning.objectives import QuadraticObjective
if __name__ == "__main__":
    space = make_space(parameters={{
        "data.features.clip": {{"choices": [1.0, 1.5, 2.0, 2.5]}},
        "data.synthetic.signal_strength": {{"choices": [0.5, 1.0]}},
    }})
    run_search(make_request(Path({str(tmp_path)!r}), space),
               QuadraticObjective(log_path={log_path!r}, steps=2, sleep_s=0.05, rendezvous=2))
"""
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT) for _ in range(2)]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0]

    log = read_log(log_path)
    ends = _points(log, "end")
    assert len(ends) == 8 and set(ends.values()) == {1}
    assert len({e["pid"] for e in log}) == 2
    request = make_request(tmp_path, make_space())
    trials = all_trials(request.setup())
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 8


@pytest.mark.parametrize("split", ["test", "feb2024", "train"])
def test_objective_on_test_or_training_split_then_refused(tmp_path: Path, split: str) -> None:
    space = make_space(objective={"split": split})
    # feb2024: a slice lying inside the protected test year.
    splits = {
        "train": {"start": "2022-01-03", "end": "2023-06-30"},
        "validation": {"start": "2023-07-03", "end": "2023-12-29"},
        "test": {"start": "2024-01-02", "end": "2024-12-31"},
        "feb2024": {"start": "2024-02-01", "end": "2024-02-29"},
    }
    overrides = {"data.splits": splits} if split == "feb2024" else None
    kw = {"base_overrides": overrides} if overrides is not None else {}
    with pytest.raises(SplitOverlapError):
        run_search(make_request(tmp_path, space, **kw), QuadraticObjective())
