"""The run directory: the contract every downstream step (evaluation, tuning, registry) reads.

Layout of ``runs/<config-name>_seed<seed>_<UTC timestamp>/``::

    config.yaml          fully resolved config (command-line overrides listed in a comment)
    command.txt          the command line that started (or resumed) the run
    manifest.json        provenance and status (see :class:`Manifest`), written atomically
    normaliser.json      feature normalisation statistics fitted on the training split
    monitor.csv          SB3 Monitor format plus episode summary columns
    checkpoints/         checkpoint_<t>.zip, vecnormalize_<t>.pkl, reward_state_<t>.json
    final_model.zip      with final_vecnormalize.pkl and final_reward_state.json
    tensorboard/         TensorBoard event files
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import re
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stairways.config import StairwaysConfig, dump_config
from stairways.errors import InputError, MissingResourceError, StairwaysError
from stairways.resources import source_checkout
from stairways.training.curriculum import shadows
from stairways.training.runlock import live_holder

log = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_PATTERN",
    "MANIFEST_SCHEMA_VERSION",
    "CheckpointFiles",
    "CheckpointRecord",
    "DataProvenance",
    "GateVerdict",
    "Manifest",
    "RunDirectory",
    "RunStatus",
    "git_state",
    "package_versions",
    "run_name",
]

MANIFEST_SCHEMA_VERSION = 1
RunStatus = Literal["running", "completed", "stopped", "interrupted", "failed"]
# Periodic checkpoints are checkpoints/checkpoint_<timesteps>.zip (see RunDirectory).
CHECKPOINT_PATTERN = re.compile(r"^checkpoint_(\d+)\.zip$")
_VERSIONED_PACKAGES = (
    "stairways",
    "torch",
    "stable-baselines3",
    "sb3-contrib",
    "gymnasium",
    "numpy",
    "pandas",
)


class _Record(BaseModel):
    """Base of the manifest records: unknown keys are refused so typos cannot hide."""

    model_config = ConfigDict(extra="forbid")


class DataProvenance(_Record):
    """What the run trained on."""

    symbols: list[str]
    split: str
    split_range: dict[str, str]
    splits: dict[str, dict[str, str]]
    panel_fingerprint: str
    n_sessions: int
    synthetic: bool
    store_path: str
    allow_test_overlap: bool = False
    overlapping_splits: list[str] = Field(default_factory=list)


class CheckpointRecord(_Record):
    """One saved checkpoint and the rolling episode reward when it was saved."""

    timesteps: int
    path: str
    rolling_reward: float | None
    episodes: int
    reason: str = "periodic"


class GateVerdict(_Record):
    """A quality gate's check on the rolling episode reward."""

    name: str
    timesteps: int
    rolling_reward: float | None
    threshold: float
    passed: bool


class Manifest(_Record):
    """Provenance and status of one run (``manifest.json``)."""

    schema_version: int = MANIFEST_SCHEMA_VERSION
    run_name: str
    config_name: str
    status: RunStatus = "running"
    stop_reason: str | None = None
    error: str | None = None
    algo: str
    seed: int
    total_timesteps: int
    timesteps: int = 0
    episodes: int = 0
    rolling_reward: float | None = None
    start_time: str
    end_time: str | None = None
    git_commit: str
    git_dirty: bool | None
    python: str
    platform: str
    versions: dict[str, str]
    torch_threads: int
    data: DataProvenance
    overrides: dict[str, Any] = Field(default_factory=dict)
    command: list[str] = Field(default_factory=list)
    init_from: str | None = None
    resumed_from: list[dict[str, Any]] = Field(default_factory=list)
    checkpoints: list[CheckpointRecord] = Field(default_factory=list)
    best_checkpoint: str | None = None
    final_model: str | None = None
    quality_gates: list[GateVerdict] = Field(default_factory=list)
    # Evaluations of this run on protected (test) dates, each with the test ledger's running
    # count (written by stairways.evaluation.holdout; the ledger beside the store is the truth).
    test_looks: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class CheckpointFiles:
    """The files of one checkpoint: model zip, VecNormalize statistics, reward state."""

    timesteps: int
    model: Path
    vecnormalize: Path
    reward_state: Path


def utc_now_iso() -> str:
    """Wall-clock UTC time for run bookkeeping (never used as market time)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_name(config_name: str, seed: int, when: datetime) -> str:
    """``<config-name>_seed<seed>_<UTC timestamp>``, safe as a directory name."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", config_name)
    return f"{safe}_seed{seed}_{stamp}"


def git_state(root: Path | None = None) -> tuple[str, bool | None]:
    """(commit, dirty) of the source tree (default: the checkout Stairways is imported from),
    or ("unknown", None) when Stairways runs from an installed wheel or git cannot tell."""
    root = root if root is not None else source_checkout()
    if root is None:
        return "unknown", None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return "unknown", None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("cannot read the git state of %s: %s", root, err)
        return "unknown", None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip(), dirty


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a run's numbers."""
    out: dict[str, str] = {}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def python_version() -> str:
    """The interpreter version, for example ``3.11.9``."""
    return platform.python_version()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDirectory:
    """Paths and bookkeeping of one run directory."""

    CONFIG = "config.yaml"
    COMMAND = "command.txt"
    MANIFEST = "manifest.json"
    NORMALISER = "normaliser.json"
    MONITOR = "monitor.csv"
    CHECKPOINTS = "checkpoints"
    TENSORBOARD = "tensorboard"
    FINAL_MODEL = "final_model.zip"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # ------------------------------------------------------------ creation
    @classmethod
    def create(
        cls, runs_dir: Path, config_name: str, seed: int, when: datetime | None = None
    ) -> RunDirectory:
        """Make a new, empty run directory named after config, seed and UTC time."""
        when = when or datetime.now(UTC)
        base = run_name(config_name, seed, when)
        runs_dir.mkdir(parents=True, exist_ok=True)
        # Two runs started in the same second get a numeric suffix; bounded so a broken file
        # system cannot loop forever.
        for attempt in range(1000):
            name = base if attempt == 0 else f"{base}-{attempt}"
            candidate = runs_dir / name
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return cls(candidate)
        raise StairwaysError(f"cannot create a run directory under {runs_dir} named {base}*")

    @classmethod
    def at(cls, path: Path) -> RunDirectory:
        """Use ``path`` as a new run directory (--run-dir); it must be absent or empty."""
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise InputError(
                f"run directory {path} already exists and is not empty; choose another "
                "--run-dir, or continue that run with --resume"
            )
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunDirectory:
        """An existing run directory (one holding a manifest)."""
        run = cls(path)
        if not run.manifest_path.is_file():
            raise MissingResourceError(
                f"{path} is not a run directory (no {cls.MANIFEST}); start a run with "
                "`stairways train --config ...`"
            )
        return run

    # ------------------------------------------------------------ paths
    @property
    def name(self) -> str:
        """Directory name (the run's name)."""
        return self.path.name

    @property
    def config_path(self) -> Path:
        """Resolved config file."""
        return self.path / self.CONFIG

    @property
    def command_path(self) -> Path:
        """Command line file."""
        return self.path / self.COMMAND

    @property
    def manifest_path(self) -> Path:
        """Manifest file."""
        return self.path / self.MANIFEST

    @property
    def normaliser_path(self) -> Path:
        """Feature normalisation statistics."""
        return self.path / self.NORMALISER

    @property
    def monitor_path(self) -> Path:
        """Episode log in SB3 Monitor format."""
        return self.path / self.MONITOR

    @property
    def checkpoints_dir(self) -> Path:
        """Folder of periodic checkpoints."""
        return self.path / self.CHECKPOINTS

    @property
    def tensorboard_dir(self) -> Path:
        """TensorBoard event files."""
        return self.path / self.TENSORBOARD

    def checkpoint_files(self, timesteps: int) -> CheckpointFiles:
        """Paths of the checkpoint saved at ``timesteps``."""
        d = self.checkpoints_dir
        return CheckpointFiles(
            timesteps=timesteps,
            model=d / f"checkpoint_{timesteps}.zip",
            vecnormalize=d / f"vecnormalize_{timesteps}.pkl",
            reward_state=d / f"reward_state_{timesteps}.json",
        )

    def final_files(self, timesteps: int) -> CheckpointFiles:
        """Paths of the final model and its companions."""
        return CheckpointFiles(
            timesteps=timesteps,
            model=self.path / self.FINAL_MODEL,
            vecnormalize=self.path / "final_vecnormalize.pkl",
            reward_state=self.path / "final_reward_state.json",
        )

    def why_no_final_model(self, manifest: Manifest) -> str:
        """Why the run has no final model, in words that match its recorded status."""
        reason = (
            f": {manifest.stop_reason or manifest.error}"
            if (manifest.stop_reason or manifest.error)
            else ""
        )
        if manifest.status == "completed":
            return (
                f"its manifest says it completed, but {self.path / self.FINAL_MODEL} is missing "
                "(moved or deleted)"
            )
        if manifest.status == "running":
            holder = live_holder(self.path)
            if holder is not None:
                return f"it is still running ({holder.describe()})"
            return (
                "its process was killed before saving one (resume it with: stairways train "
                f"--resume {self.path})"
            )
        if manifest.status == "stopped":
            return f"the speed-bump stopped it before the end{reason}"
        return (
            f"it ended {manifest.status}{reason} before saving one (resume it with: "
            f"stairways train --resume {self.path})"
        )

    def checkpoints(self) -> list[CheckpointFiles]:
        """Complete checkpoints on disk (model, statistics and reward state), oldest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        found: list[CheckpointFiles] = []
        for p in self.checkpoints_dir.iterdir():
            m = CHECKPOINT_PATTERN.match(p.name)
            if m is None:
                continue
            files = self.checkpoint_files(int(m.group(1)))
            if files.vecnormalize.is_file() and files.reward_state.is_file():
                found.append(files)
            else:
                log.warning("checkpoint %s lacks its statistics or reward state; skipped", p)
        return sorted(found, key=lambda f: f.timesteps)

    def latest_checkpoint(self) -> CheckpointFiles:
        """The newest complete checkpoint; MissingResourceError when there is none."""
        found = self.checkpoints()
        if not found:
            raise MissingResourceError(
                f"run directory {self.path} holds no complete checkpoint in {self.CHECKPOINTS}/ "
                "to resume from; start a new run instead"
            )
        return found[-1]

    # ------------------------------------------------------------ writing
    def write_config(self, cfg: StairwaysConfig, overrides: Mapping[str, Any]) -> None:
        """Write the resolved config, listing command-line overrides in a leading comment."""
        lines = ["# Fully resolved configuration of this run (stairways train)."]
        replaced = sorted(shadows(cfg.training.curriculum))
        if replaced:
            lines.append(f"# Set by the curriculum phases, so not listed: {', '.join(replaced)}")
        if overrides:
            lines.append("# Command-line overrides (already applied below):")
            lines.extend(f"#   {k} = {v!r}" for k, v in overrides.items())
        atomic_write_text(self.config_path, "\n".join(lines) + "\n" + dump_config(cfg))

    def write_command(self, argv: Sequence[str]) -> None:
        """Append the command line (a resumed run adds a line)."""
        with self.command_path.open("a") as fh:
            fh.write(shlex.join(argv) + "\n")

    def write_manifest(self, manifest: Manifest) -> None:
        """Write the manifest atomically."""
        atomic_write_text(self.manifest_path, manifest.model_dump_json(indent=2) + "\n")

    def read_manifest(self) -> Manifest:
        """Read and validate the manifest."""
        try:
            raw = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise MissingResourceError(f"{self.manifest_path} does not exist") from None
        except json.JSONDecodeError as err:
            raise InputError(f"{self.manifest_path} is not valid JSON: {err}") from None
        try:
            return Manifest.model_validate(raw)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputError(
                f"{self.manifest_path} is not a valid run manifest: {where}: {first['msg']}"
            ) from None
