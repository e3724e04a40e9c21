"""Cheap deterministic objectives for testing the study mechanics (not training results).

They live in an importable module so spawned worker processes and Ray tasks can unpickle them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stairways.tuning.objective import TrialRequest, TrialResult

# Test spaces vary two data settings that exist in every config; the best point is (2.0, 1.0).
CENTERS: dict[str, float] = {"data.features.clip": 2.0, "data.synthetic.signal_strength": 1.0}


def quadratic_score(params: dict[str, Any]) -> float:
    """1 minus the squared distance of the numeric parameters from :data:`CENTERS`."""
    score = 1.0
    for name, center in CENTERS.items():
        value = params.get(name)
        if isinstance(value, int | float):
            score -= (float(value) - center) ** 2
    return score


@dataclass(frozen=True)
class QuadraticObjective:
    """Scores a trial by :func:`quadratic_score`; each seed adds ``seed * seed_noise``.

    Every execution appends a line (parameters, pid, "start" or "end") to ``log_path`` so tests
    can count executions independently of the study storage. It writes ``attempt.txt`` into its
    trial directory; with ``exclusive_dir`` it refuses a directory that already holds files, as
    ``stairways train`` refuses an existing run directory.
    """

    log_path: str = ""
    steps: int = 3
    seed_noise: float = 0.0
    sleep_s: float = 0.0
    rendezvous: int = 0
    exclusive_dir: bool = False

    def _wait_for_peers(self) -> None:
        """Block until ``rendezvous`` distinct processes have started trials (at most 240 s)."""
        deadline = time.monotonic() + 240.0
        while time.monotonic() < deadline:
            pids = {e["pid"] for e in read_log(self.log_path) if e["event"] == "start"}
            if len(pids) >= self.rendezvous:
                return
            time.sleep(0.05)
        raise RuntimeError(f"fewer than {self.rendezvous} worker processes started trials")

    def _log(self, request: TrialRequest, event: str) -> None:
        if not self.log_path:
            return
        line = json.dumps(
            {"event": event, "params": dict(request.params), "pid": os.getpid()}, sort_keys=True
        )
        # One short write in append mode: lines from several processes do not interleave.
        with Path(self.log_path).open("a") as fh:
            fh.write(line + "\n")

    def __call__(self, request: TrialRequest) -> TrialResult:
        request.trial_dir.mkdir(parents=True, exist_ok=True)
        if self.exclusive_dir and any(request.trial_dir.iterdir()):
            raise RuntimeError(f"trial directory {request.trial_dir} is not empty")
        (request.trial_dir / "attempt.txt").write_text(f"{os.getpid()}\n")
        self._log(request, "start")
        if self.rendezvous:
            self._wait_for_peers()
        base = quadratic_score(dict(request.params))
        scores = []
        for k, seed in enumerate(request.seeds):
            for step in range(1, self.steps + 1):
                if self.sleep_s:
                    time.sleep(self.sleep_s)
                request.reporter.report(k * self.steps + step, base * step / self.steps)
            scores.append(base + seed * self.seed_noise)
        mean = sum(scores) / len(scores)
        self._log(request, "end")
        return TrialResult(
            seed_scores=tuple(scores),
            metrics={
                "episode_reward_mean": mean,
                "mean_episode_length": 120.0,
                "drawdown_termination_rate": 0.1,
            },
            run_dirs=(str(request.trial_dir),),
        )


@dataclass(frozen=True)
class FailingObjective:
    """Raises for one parameter value (a trial that crashes); scores the others."""

    fail_clip: float
    error: type[Exception] = RuntimeError

    def __call__(self, request: TrialRequest) -> TrialResult:
        if request.params.get("data.features.clip") == self.fail_clip:
            raise self.error(f"training diverged at clip {self.fail_clip}")
        return QuadraticObjective(steps=1)(request)


def read_log(path: str) -> list[dict[str, Any]]:
    """The lines a :class:`QuadraticObjective` logged."""
    with Path(path).open() as fh:
        return [json.loads(line) for line in fh if line.strip()]
