"""The stress suite's results file: what ``stairways stress run`` writes and the weekly report
reads (one reader and one writer of the format).

``<out>/<run stamp>/results.json`` holds one run; ``<out>/latest.json`` is a copy of the last
run's file, so readers find it without listing folders::

    {"started": ISO time, "finished": ISO time, "short": bool, "passed": bool, "model": str,
     "scenarios": [{"name": str, "passed": bool, "broker": str, "error": str,
                    "figures": {name: number}, "gates": [{"metric", "op", "threshold",
                    "value", "passed"}]}]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stairways.errors import InputError

__all__ = [
    "LATEST_FILE",
    "RESULTS_FILE",
    "GateResult",
    "ScenarioResult",
    "SuiteResult",
    "read_latest",
    "read_results",
    "write_results",
]

RESULTS_FILE = "results.json"
LATEST_FILE = "latest.json"


@dataclass(frozen=True)
class GateResult:
    """One gate of a scenario: ``value op threshold`` and whether it held."""

    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool

    def line(self) -> str:
        """The gate as a sentence fragment (``max_drawdown 0.021 < 0.15: pass``)."""
        shown = "n/a" if self.value is None else f"{self.value:.6g}"
        verdict = "pass" if self.passed else "FAIL"
        return f"{self.metric} {shown} {self.op} {self.threshold:g}: {verdict}"


@dataclass
class ScenarioResult:
    """One scenario's measured figures and gate verdicts (``error``: it could not run)."""

    name: str
    broker: str
    figures: dict[str, float] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Ran without error and every gate held."""
        return not self.error and bool(self.gates) and all(g.passed for g in self.gates)


@dataclass
class SuiteResult:
    """One run of the suite."""

    started: str
    finished: str
    short: bool
    scenarios: list[ScenarioResult]
    model: str = ""  # the model stressed: its registry id (or run:<run>:<checkpoint>)

    @property
    def passed(self) -> bool:
        """Every scenario passed."""
        return bool(self.scenarios) and all(s.passed for s in self.scenarios)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "started": self.started,
            "finished": self.finished,
            "short": self.short,
            "passed": self.passed,
            "model": self.model,
            "scenarios": [{**asdict(s), "passed": s.passed} for s in self.scenarios],
        }


def write_results(result: SuiteResult, folder: Path, root: Path) -> Path:
    """Write ``folder/results.json`` and refresh ``root/latest.json``; returns the former."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.as_dict(), indent=2, sort_keys=True)
    path = folder / RESULTS_FILE
    path.write_text(text, encoding="utf-8")
    tmp = root / (LATEST_FILE + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(root / LATEST_FILE)
    return path


def _gate(g: Mapping[str, Any]) -> GateResult:
    value = g.get("value")
    return GateResult(
        metric=str(g["metric"]),
        op=str(g["op"]),
        threshold=float(g["threshold"]),
        value=None if value is None else float(value),
        passed=bool(g["passed"]),
    )


def read_results(path: Path) -> SuiteResult:
    """Read a results file (InputError naming the file when it is not one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        scenarios = [
            ScenarioResult(
                name=str(s["name"]),
                broker=str(s.get("broker", "")),
                figures={k: float(v) for k, v in dict(s.get("figures", {})).items()},
                gates=[_gate(g) for g in s.get("gates", [])],
                error=str(s.get("error", "")),
                notes=[str(n) for n in s.get("notes", [])],
            )
            for s in data["scenarios"]
        ]
        return SuiteResult(
            started=str(data["started"]),
            finished=str(data["finished"]),
            short=bool(data["short"]),
            scenarios=scenarios,
            model=str(data.get("model", "")),
        )
    except OSError as err:
        raise InputError(f"cannot read stress results {path}: {err.strerror}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"{path} is not a stress results file ({err}); re-run `stairways stress run`"
        ) from None


def read_latest(root: Path) -> SuiteResult | None:
    """The last run's results under ``root`` (None when the suite never ran there)."""
    path = root / LATEST_FILE
    return read_results(path) if path.is_file() else None
