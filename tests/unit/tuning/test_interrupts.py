"""Ctrl-C and SIGTERM during a search, with real processes and real signals.

The search runs in its own process group (``search_process``), as ``stairways tune`` runs in a
terminal; Ctrl-C is SIGINT to the whole group, a process manager's stop is SIGTERM to the
driver alone. Every wait is bounded.
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
from optuna.trial import TrialState

from stairways.tuning.search import run_search
from stairways.tuning.settings import HeartbeatConfig
from stairways.tuning.storage import default_storage_url, open_storage
from tests.unit.tuning.conftest import make_request, make_space
from tests.unit.tuning.objectives import QuadraticObjective, read_log

# The checkout the search process imports `tests` from.
REPO_ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 90.0


def _start_search(
    tmp_path: Path, log_path: str, workers: int, backend: str = "local"
) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "tests.unit.tuning.search_process",
        "--dir",
        str(tmp_path),
        "--log",
        log_path,
        "--workers",
        str(workers),
        "--sleep",
        "2.0",
        "--rendezvous",
        str(workers if workers > 1 else 0),
        "--backend",
        backend,
    ]
    return subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
    )


def _study(url: str) -> optuna.Study:
    return optuna.load_study(study_name="study", storage=open_storage(url, HeartbeatConfig()))


def _wait_until_trials_report(proc: subprocess.Popen[str], url: str, running: int) -> None:
    """Block until ``running`` trials run and each reported an intermediate score."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the search ended before the signal: {proc.communicate()[1][-3000:]}")
        try:
            trials = _study(url).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except KeyError:  # the driver has not created the study yet
            trials = []
        if len(trials) >= running and all(t.intermediate_values for t in trials):
            return
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"{running} trials did not start reporting within {START_TIMEOUT_S:.0f} s")


def _finish(proc: subprocess.Popen[str]) -> str:
    try:
        _, err = proc.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the search did not stop within {STOP_TIMEOUT_S:.0f} s of the signal")
    return err


def _starts(log_path: str) -> collections.Counter[str]:
    return collections.Counter(
        json.dumps(e["params"], sort_keys=True) for e in read_log(log_path) if e["event"] == "start"
    )


@pytest.mark.parametrize(
    ("workers", "signum", "to_group", "backend"),
    [
        pytest.param(2, signal.SIGINT, True, "local", id="ctrl-c-two-worker-processes"),
        pytest.param(2, signal.SIGTERM, False, "local", id="sigterm-to-the-driver-only"),
        pytest.param(1, signal.SIGINT, True, "local", id="ctrl-c-worker-in-the-driver"),
        # A private Ray head in the search's process group, as `tune --backend ray` starts it.
        pytest.param(2, signal.SIGINT, True, "ray", id="ctrl-c-ray-tasks", marks=pytest.mark.slow),
    ],
)
def test_signal_during_trials_then_running_trials_requeued_not_failed_and_nothing_new_starts(
    tmp_path: Path,
    log_path: str,
    workers: int,
    signum: signal.Signals,
    to_group: bool,
    backend: str,
) -> None:
    url = default_storage_url(tmp_path / "out")
    proc = _start_search(tmp_path, log_path, workers, backend)
    _wait_until_trials_report(proc, url, running=workers)

    if to_group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    stderr = _finish(proc)

    assert proc.returncode == 128 + signum, stderr[-3000:]
    assert "Traceback" not in stderr, stderr
    assert "went back to the queue (not failed)" in stderr
    assert "Run the same command again to resume" in stderr
    trials = _study(url).get_trials()
    states = collections.Counter(t.state for t in trials)
    assert states == {TrialState.WAITING: 4}
    requeued = [t for t in trials if t.user_attrs.get("requeued")]
    assert len(requeued) == workers
    # Back in the queue as before they started: no intermediate score, no start time.
    assert all(t.intermediate_values == {} and t.datetime_start is None for t in requeued)
    # Only the interrupted trials ever started; none started after the signal, none ended.
    assert sum(_starts(log_path).values()) == workers
    assert not [e for e in read_log(log_path) if e["event"] == "end"]

    # The interrupted attempts left files in their trial directories; the rerun starts over.
    assert all(any((tmp_path / "out" / "trials").glob(f"trial_{t.number:04d}/*")) for t in requeued)
    resumed = run_search(
        make_request(tmp_path, make_space()),
        QuadraticObjective(log_path=log_path, steps=3, exclusive_dir=True),
    )

    assert resumed.progress.complete == 4
    assert resumed.progress.failed == 0
    starts = _starts(log_path)
    assert sorted(starts.values()) == sorted([2] * workers + [1] * (4 - workers))
    # The rerun reported its own three scores; the interrupted attempt left none behind.
    for trial in _study(url).get_trials():
        assert sorted(trial.intermediate_values) == [1, 2, 3]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_requeue_trial_then_same_point_is_claimed_again_and_finished_one_is_refused(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = (
        default_storage_url(tmp_path)
        if backend == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    storage = open_storage(url, HeartbeatConfig())
    study = optuna.create_study(study_name="q", storage=storage)
    study.enqueue_trial({"x": 1.5})
    trial = study.ask()
    assert trial.suggest_float("x", 0.0, 2.0) == 1.5
    trial.report(0.25, 1)
    storage.record_heartbeat(trial._trial_id)

    assert storage.requeue_trial(trial._trial_id)

    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.number for t in waiting] == [trial.number]
    assert waiting[0].intermediate_values == {}
    again = study.ask()
    assert again.number == trial.number
    assert again.suggest_float("x", 0.0, 2.0) == 1.5
    study.tell(again, 1.0)
    assert not storage.requeue_trial(again._trial_id)  # finished: stays complete
    assert study.trials[0].state == TrialState.COMPLETE
