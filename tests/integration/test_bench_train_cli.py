"""``stairways bench train`` and ``bench learning`` run both backends and print the comparison."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

STAIRWAYS = str(Path(sys.executable).with_name("stairways"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STAIRWAYS, "bench", *args], capture_output=True, text=True, timeout=1200, check=False
    )


def _small_config(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    training = {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2, "tensorboard": False}
    path.write_text(yaml.safe_dump({"name": "small", "training": training}))
    return path


def _readme(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text(f"# t\n\n<!-- {name}:begin -->\nold\n<!-- {name}:end -->\n\nafter\n")
    return path


def test_bench_train_prints_both_backends_and_their_ratio(tmp_path: Path) -> None:
    readme = _readme(tmp_path, "train-bench")
    done = _run(
        "train",
        "--config",
        str(_small_config(tmp_path)),
        "--timesteps",
        "256",
        "--passes",
        "1",
        "--same-hyperparameters",
        "--readme",
        str(readme),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    row = re.search(
        r"^end to end \(setup \+ learn \+ saves\)\s+([\d,]+)\s+([\d,]+)\s+([\d.]+)x", out, re.M
    )
    assert row is not None, out
    sb3, fused, ratio = (float(g.replace(",", "")) for g in row.groups())
    assert sb3 > 0 and fused > 0
    assert ratio == pytest.approx(fused / sb3, rel=0.06, abs=0.06)  # printed to one decimal
    assert re.search(r"^timesteps trained\s+256\s+256$", out, re.M), out
    # the README block holds the same figures, between its markers, and nothing else changed
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- train-bench:end -->\n\nafter\n")
    cells = re.search(
        r"^\| end to end \(setup \+ learn \+ saves\) \| ([\d,]+) steps/s \| ([\d,]+) steps/s \| "
        r"([\d.]+)x \|$",
        text,
        re.M,
    )
    assert cells is not None, text
    assert [float(g.replace(",", "")) for g in cells.groups()] == [sb3, fused, ratio]


@pytest.mark.parametrize("command", ["train", "learning"])
def test_bench_refuses_a_readme_without_markers_before_running(
    command: str, tmp_path: Path
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    out = ["--out", str(tmp_path / "out")] if command == "learning" else []
    done = _run(command, "--readme", str(readme), *out)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"--readme {readme}" in done.stderr and ":begin" in done.stderr
    assert readme.read_text() == "# no markers\n"
    assert not (tmp_path / "out").exists()


def test_bench_train_refuses_too_few_timesteps_with_exit_2(tmp_path: Path) -> None:
    done = _run("train", "--config", str(_small_config(tmp_path)), "--timesteps", "100")
    assert done.returncode == 2
    assert "under two rollouts" in done.stderr


@pytest.mark.slow
def test_bench_learning_prints_both_backends_per_strength(tmp_path: Path) -> None:
    done = _run(
        "learning",
        "--config",
        str(_small_config(tmp_path)),
        "--strengths",
        "0,1",
        "--market-seeds",
        "101",
        "--training-seeds",
        "0",
        "--total-timesteps",
        "256",
        "--same-hyperparameters",
        "--out",
        str(tmp_path / "out"),
        "--readme",
        str(_readme(tmp_path, "learning-table")),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = re.findall(r"^\| (0|1) \| (sb3|fused) \| 1 \| ([01])/1 \|", done.stdout, re.M)
    assert sorted((s, b) for s, b, _ in rows) == [
        ("0", "fused"),
        ("0", "sb3"),
        ("1", "fused"),
        ("1", "sb3"),
    ]
    assert re.search(r"^fused matches sb3: (yes|no)$", done.stdout, re.M)
    block = (tmp_path / "README.md").read_text()
    assert re.findall(r"^\| (0|1) \| (sb3|fused) \| 1 \| ([01])/1 \|", block, re.M) == rows
    assert "folders" not in block  # the run folders are the machine's, not the README's
