"""The Ray backend for real: a local Ray head on 127.0.0.1, trials running as Ray tasks.

The head is started by the test (``ray.init`` on 127.0.0.1, no dashboard) and shut down after.
One test drives the study from this process; the other starts ``stairways tune --backend ray
--address ADDR`` in a separate process that joins the head, with real (tiny) training trials.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stairways.tuning.search import run_search
from tests.integration.tune_helpers import run_tune, tiny_tune_config
from tests.unit.tuning.conftest import make_request, make_space
from tests.unit.tuning.objectives import QuadraticObjective, read_log

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A private Ray head on 127.0.0.1 with two CPUs; yields its GCS address."""
    info = ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=100 * 1024 * 1024,
        log_to_driver=False,
    )
    try:
        yield str(info.address_info["gcs_address"])
    finally:
        ray.shutdown()


def test_ray_backend_then_trials_run_as_ray_tasks_without_duplicates(
    ray_head: str, tmp_path: Path
) -> None:
    log_path = str(tmp_path / "executions.jsonl")
    request = make_request(tmp_path, make_space(), workers=2, backend="ray")
    # rendezvous=2: each trial waits until both Ray tasks have started one, so two trials
    # provably ran at the same time on the head.
    outcome = run_search(request, QuadraticObjective(log_path=log_path, rendezvous=2))

    assert outcome.progress.complete == 4
    assert {w.backend for w in outcome.workers} == {"ray"}
    assert all(w.node_id for w in outcome.workers)
    log = read_log(log_path)
    ends = [json.dumps(e["params"], sort_keys=True) for e in log if e["event"] == "end"]
    assert len(ends) == 4 and len(set(ends)) == 4
    pids = {e["pid"] for e in log}
    assert len(pids) == 2 and os.getpid() not in pids
    workers = {r.worker for r in outcome.records}
    assert all(w.startswith("ray:") for w in workers)


def test_tune_cli_with_address_then_training_trials_run_on_the_head(
    ray_head: str, tmp_path: Path, tiny_store: Path
) -> None:
    base = tiny_tune_config(
        tiny_store, n_epochs=1, policy={"net_arch": [16, 16]}, rolling_window=10
    )
    space: dict[str, Any] = {
        "name": "ray_grid",
        "sampler": "grid",
        "budget": {"total_timesteps": 512, "eval_every": 512},
        "pruner": {"kind": "none"},
        "parameters": {"training.learning_rate": {"choices": [1.0e-4, 5.0e-5]}},
    }
    config_path = tmp_path / "base.yaml"
    config_path.write_text(yaml.safe_dump(base))
    space_path = tmp_path / "space.yaml"
    space_path.write_text(yaml.safe_dump(space))
    out = tmp_path / "out"
    done = run_tune(
        [
            "--config",
            str(config_path),
            "--space",
            str(space_path),
            "--backend",
            "ray",
            "--address",
            ray_head,
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        timeout=600,
    )
    # 0: a trial passed the criteria; 3: none did (tiny budgets rarely pass). Both ran.
    assert done.returncode in (0, 3), done.stderr[-3000:]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] == 2
    assert {w["backend"] for w in summary["workers"]} == {"ray"}
    assert sum(len(w["trials"]) for w in summary["workers"]) == 2
    for trial in (0, 1):
        runs = list((out / "trials" / f"trial_{trial:04d}").glob("*/manifest.json"))
        assert len(runs) == 1
        manifest = json.loads(runs[0].read_text())
        assert manifest["status"] == "completed"
        assert (runs[0].parent / "eval" / "validation" / "final" / "traces.parquet").is_file()
