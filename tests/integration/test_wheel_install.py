"""Stairways installed from its wheel works outside the source tree.

The wheel is built from a copy of the working tree and installed, without dependencies, into a
fresh virtual environment; a ``.pth`` file written after the install points that environment at
this one's site-packages, so the dependencies (torch and the rest) are the ones already here and
nothing is downloaded. Every command then runs from an empty directory with the new
environment's ``stairways``: it must find its configs and notebook inside the installed package,
never in this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import assert_first_screen_shows_ranking_and_charts, open_report
from tests.paths import CHECKOUT_CONFIG_DIR, REPO_ROOT

SOURCES = ("pyproject.toml", "README.md", "src", "config", "notebooks")


@dataclass(frozen=True)
class Installed:
    """The built wheel and the environment it is installed in."""

    wheel: Path
    venv: Path
    site_packages: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def stairways(self) -> Path:
        return self.venv / "bin" / "stairways"


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    tree = root / "tree"
    tree.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in SOURCES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(source, tree / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    dist = root / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, tree], root, env)
    (wheel,) = dist.glob("stairways-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], root, env)
    python = venv / "bin" / "python"
    _run([*pip, "--python", python, "install", "-q", "--no-deps", wheel], root, env)
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, env
        ).strip()
    )
    # After the install, so pip never saw the editable stairways of this environment.
    (site / "zz_stairways_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Installed(wheel=wheel, venv=venv, site_packages=site, env=env)


def test_the_wheel_carries_every_shipped_config_and_the_notebook(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        for path in CHECKOUT_CONFIG_DIR.rglob("*.yaml"):
            member = f"stairways/resources/config/{path.relative_to(CHECKOUT_CONFIG_DIR)}"
            assert member in names, f"{member} is not in the wheel"
            assert wheel.read(member) == path.read_bytes()
        notebook = "stairways/resources/notebooks/action_trace_analysis.ipynb"
        assert wheel.read(notebook) == (REPO_ROOT / "notebooks" / Path(notebook).name).read_bytes()
        assert not any(n.startswith(("tests/", "config/", "notebooks/")) for n in names)


def test_the_installed_package_reads_only_its_own_files(
    installed: Installed, tmp_path: Path
) -> None:
    script = """
import json, stairways
from stairways import resources
from stairways.config import load_config
from stairways.training.rundir import git_state
suite = load_config(resources.shipped_config("diagnostics"))
print(json.dumps({
    "package": stairways.__file__,
    "configs": str(resources.config_dir()),
    "notebook": str(resources.notebook("action_trace_analysis.ipynb")),
    "arms": [str(a.config) for a in suite.diagnostics.abc.arms],
    "default_arms": [str(a.config) for a in load_config(None).diagnostics.abc.arms],
    "checkout": resources.source_checkout() is None,
    "git": git_state()[0],
}))
"""
    out = json.loads(_run([installed.python, "-c", script], tmp_path, installed.env))
    site = str(installed.site_packages / "stairways")
    paths = [out["package"], out["configs"], out["notebook"], *out["arms"], *out["default_arms"]]
    for path in paths:
        assert path.startswith(site), f"{path} is not inside the installed package {site}"
    assert str(REPO_ROOT) not in json.dumps(out)
    assert out["checkout"] is True  # no source checkout: provenance says so
    assert out["git"] == "unknown"


@pytest.mark.slow
def test_train_evaluate_and_trace_from_an_empty_directory(
    installed: Installed, tmp_path: Path
) -> None:
    work = tmp_path / "empty"
    work.mkdir()
    env = installed.env
    sw = installed.stairways
    copied = _run([sw, "config", "copy"], work, env)
    assert "into config" in copied
    # A small config that extends a copied one: extends resolves from the file's own folder.
    (work / "small.yaml").write_text(
        """extends: config/reward_v3.yaml
name: small
data:
  store_path: data/bars.duckdb
  synthetic: {start: 2024-01-02, end: 2024-02-29}
  splits:
    train: {start: 2024-01-04, end: 2024-01-31}
    validation: {start: 2024-02-01, end: 2024-02-14}
    test: {start: 2024-02-15, end: 2024-02-29}
training:
  total_timesteps: 2048
  n_envs: 8
  n_steps: 64
  batch_size: 256
  n_epochs: 2
  checkpoint_every: 1024
  tensorboard: false
  policy: {net_arch: {pi: [32], vf: [32]}}
"""
    )
    _run([sw, "data", "synth", "--config", "small.yaml"], work, env)
    trained = _run([sw, "train", "--config", "small.yaml", "--no-progress"], work, env)
    assert "status: completed" in trained
    (run,) = (work / "runs").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["git_commit"] == "unknown"  # not this checkout's commit
    proc = subprocess.run(
        [str(sw), "evaluate", str(run.relative_to(work)), "--split", "validation"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    # 0 when the gates pass, 3 when they fail (outputs written either way); never an error.
    assert proc.returncode in (0, 3), proc.stderr
    assert (run / "eval" / "validation" / "final" / "traces.parquet").is_file()
    out = work / "report.html"
    traced = _run(
        [sw, "trace", run.relative_to(work), "--split", "validation", "--top-k", "2", "--out", out],
        work,
        env,
    )
    assert f"report: {out}" in traced
    shown = open_report(out, screenshot=tmp_path / "first_screen.png")
    assert_first_screen_shows_ranking_and_charts(shown)
    # the kernel ran the installed package too: the executed notebook names no checkout path
    assert str(REPO_ROOT / "src") not in out.with_suffix(".ipynb").read_text()
