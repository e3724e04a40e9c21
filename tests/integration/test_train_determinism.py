"""Training repeats bit for bit across processes: same config and seed, same model.

The power study and the seed sweeps train in spawned worker processes, several at a time; a
figure that moved between two studies of the same seeds must be a change of code or data, never
of the process. Two processes train the tiny config at the same time, with different hash
seeds (set iteration order) and different thread settings in the environment, and must write
the same weights, optimizer state, normalisation statistics and episodes.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.integration.train_helpers import tiny_config, write_yaml

pytestmark = pytest.mark.slow

SCRIPT = """
import sys
from stairways.config import load_config
from stairways.training.trainer import TrainOptions, train
result = train(load_config(sys.argv[1], {"training.runs_dir": sys.argv[2]}), TrainOptions())
print(result.run_dir)
"""


def _weights(model_zip: Path) -> dict[str, str]:
    """Digest of every tensor of the policy and of the optimizer state in an SB3 zip."""
    out: dict[str, str] = {}
    with zipfile.ZipFile(model_zip) as z:
        policy = torch.load(io.BytesIO(z.read("policy.pth")), map_location="cpu")
        for name, tensor in policy.items():
            out[name] = hashlib.sha256(tensor.numpy().tobytes()).hexdigest()
        out["optimizer"] = hashlib.sha256(z.read("policy.optimizer.pth")).hexdigest()
    return out


def _episodes(run: Path) -> list[str]:
    """monitor.csv rows without the wall-clock column (t) and the header's start time."""
    lines = (run / "monitor.csv").read_text().splitlines()[1:]
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name != "t"]
    return [",".join(row.split(",")[i] for i in keep) for row in lines]


def test_two_processes_train_the_same_model_bit_for_bit(
    tiny_overrides: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_overrides, tmp_path / "unused")
    config = write_yaml(cfg, tmp_path / "tiny.yaml")
    procs = []
    for i, (hash_seed, threads) in enumerate((("0", "1"), ("12345", "2"))):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": threads}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", SCRIPT, str(config), str(tmp_path / f"runs{i}")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    runs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
        runs.append(Path(out.strip().splitlines()[-1]))
    a, b = runs
    assert a != b
    assert _weights(a / "final_model.zip") == _weights(b / "final_model.zip")
    assert _episodes(a) == _episodes(b) and len(_episodes(a)) > 10
    norm_a = pickle.loads((a / "final_vecnormalize.pkl").read_bytes())
    norm_b = pickle.loads((b / "final_vecnormalize.pkl").read_bytes())
    np.testing.assert_array_equal(norm_a.obs_rms.mean, norm_b.obs_rms.mean)
    np.testing.assert_array_equal(norm_a.obs_rms.var, norm_b.obs_rms.var)
    # and the weights did move: a run that learned nothing would pass the above trivially
    checkpoints = sorted((a / "checkpoints").glob("checkpoint_*.zip"))
    assert _weights(checkpoints[0]) != _weights(a / "final_model.zip")
