"""Queued trials in a shared SQLite study are claimed by exactly one process each."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import optuna

from stairways.tuning.settings import HeartbeatConfig
from stairways.tuning.storage import default_storage_url, open_storage

QUEUED = 40
PROCESSES = 4


def _widen_the_race_window() -> None:
    """Sleep after Optuna reads a trial row, before it writes the new state back.

    The claim is read-then-write; without cross-process exclusion another process claims the
    same row during the pause, so a broken storage fails this test every time, not by luck.
    """
    from optuna.storages._rdb import models  # the row read of Optuna's claim

    model = models.TrialModel
    read = model.find_or_raise_by_id

    def slow_read(trial_id: int, session: object, for_update: bool = False) -> object:
        row = read(trial_id, session, for_update=for_update)
        if for_update:
            time.sleep(0.02)
        return row

    model.find_or_raise_by_id = staticmethod(slow_read)


def _claim(url: str, count: int, out: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _widen_the_race_window()
    storage = open_storage(url, HeartbeatConfig())
    study = optuna.load_study(study_name="claims", storage=storage)
    numbers = [study.ask().number for _ in range(count)]
    out.write_text(",".join(str(n) for n in numbers))


def test_four_processes_asking_at_once_then_each_queued_trial_is_claimed_once(
    tmp_path: Path,
) -> None:
    url = default_storage_url(tmp_path)
    storage = open_storage(url, HeartbeatConfig())
    study = optuna.create_study(study_name="claims", storage=storage)
    for k in range(QUEUED):
        study.enqueue_trial({"k": k})
    ctx = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"claims_{i}.txt" for i in range(PROCESSES)]
    procs = [ctx.Process(target=_claim, args=(url, QUEUED // PROCESSES, out)) for out in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
        assert p.exitcode == 0
    claimed = [int(n) for out in outs for n in out.read_text().split(",")]
    assert sorted(claimed) == list(range(QUEUED))
