"""Success gates: compare an evaluation's metrics with the configured thresholds.

The verdict is saved as gates.json and decides the exit code of ``stairways evaluate`` and
``stairways validate temporal``: 0 when every gate passes, :data:`GATES_FAILED_EXIT_CODE` (3)
when at least one fails. Exit code 2 stays reserved for bad input and 1 for other failures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stairways.errors import StairwaysError
from stairways.evaluation.metrics import Metrics
from stairways.evaluation.settings import GateConfig

GATES_FAILED_EXIT_CODE = 3


class GatesFailedError(StairwaysError):
    """The evaluation ran and was written, but at least one success gate failed (exit 3)."""

    exit_code = GATES_FAILED_EXIT_CODE


@dataclass(frozen=True)
class GateResult:
    """One gate: the metric, its value (None when undefined), the threshold and the outcome."""

    metric: str
    value: float | None
    threshold: float
    passed: bool


@dataclass(frozen=True)
class GateVerdict:
    """All gates of one evaluation; ``passed`` only when every gate passed."""

    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        """Whether every gate passed."""
        return all(r.passed for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every gate passed, otherwise :data:`GATES_FAILED_EXIT_CODE`."""
        return 0 if self.passed else GATES_FAILED_EXIT_CODE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what gates.json holds)."""
        return {
            "passed": self.passed,
            "gates": [
                {
                    "metric": r.metric,
                    "value": r.value,
                    "threshold": r.threshold,
                    "passed": r.passed,
                }
                for r in self.results
            ],
        }

    def failed(self) -> list[str]:
        """Names of the metrics whose gate failed."""
        return [r.metric for r in self.results if not r.passed]

    def table(self) -> str:
        """Plain-text table: metric, value, threshold, PASS/FAIL, then the overall verdict."""
        rows = [("metric", "value", "threshold", "result")]
        for r in self.results:
            value = "undefined" if r.value is None else f"{r.value:.4f}"
            rows.append((r.metric, value, f">= {r.threshold:g}", "PASS" if r.passed else "FAIL"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(line.rstrip() for line in lines)


def _gate(metric: str, value: float | None, threshold: float) -> GateResult:
    # An undefined metric (for example a Sharpe ratio without any variance) never passes.
    passed = value is not None and value >= threshold
    return GateResult(metric=metric, value=value, threshold=threshold, passed=passed)


def evaluate_gates(metrics: Metrics, gates: GateConfig) -> GateVerdict:
    """Judge ``metrics`` against the thresholds of ``gates``."""
    return GateVerdict(
        results=(
            _gate("sharpe", metrics.sharpe, gates.min_sharpe),
            _gate(
                "episode_reward_mean", metrics.episode_reward_mean, gates.min_episode_reward_mean
            ),
            _gate(
                "mean_episode_length", metrics.mean_episode_length, gates.min_mean_episode_length
            ),
        )
    )


def write_verdict(verdict: GateVerdict, path: Path) -> Path:
    """Save the verdict as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict.to_dict(), indent=2) + "\n")
    return path
