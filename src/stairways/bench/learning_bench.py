"""Does the fused backend learn what SB3 learns? (``stairways bench learning``)

Runs the power study (:func:`stairways.evaluation.power.run_power_study`) twice on the same
grid of planted-signal strengths, market seeds and training seeds at the same timesteps: once
with ``training.backend: sb3``, once with ``fused``, each with its own defaults for the settings
the config leaves unset (:data:`~stairways.training.settings.BACKEND_DEFAULTS`; with
``same_hyperparameters`` the fused runs take the SB3 runs' values). Per strength it reports the gate
verdict's pass rate and the distribution of the runs' out-of-sample daily Sharpe ratios; at
strength 0 a pass is a false positive.

The fused backend matches when, at every strength above 0, its pass rate and median daily
Sharpe are at least SB3's, and at strength 0 its pass rate is no higher than SB3's.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from pathlib import Path

from stairways.bench.train_bench import settings_text
from stairways.config import StairwaysConfig
from stairways.configbase import validate_model
from stairways.errors import InputError
from stairways.evaluation.power import PowerReport, run_power_study
from stairways.evaluation.settings import PowerConfig

log = logging.getLogger(__name__)

__all__ = [
    "BackendLearning",
    "LearningComparison",
    "StrengthRow",
    "compare_learning",
    "comparison_grid",
    "comparison_text",
    "write_readme_block",
]


@dataclass(frozen=True)
class StrengthRow:
    """One backend's results at one strength."""

    strength: float
    runs: int
    passed: int
    sharpes: tuple[float, ...]

    @property
    def pass_rate(self) -> float:
        """Share of runs whose full verdict passed."""
        return self.passed / self.runs if self.runs else 0.0

    @property
    def median_sharpe(self) -> float | None:
        """Median of the runs' out-of-sample daily Sharpe ratios."""
        return statistics.median(self.sharpes) if self.sharpes else None


@dataclass(frozen=True)
class BackendLearning:
    """The power study of one backend, by strength."""

    backend: str
    rows: tuple[StrengthRow, ...]
    seconds: float
    out_dir: Path


@dataclass(frozen=True)
class LearningComparison:
    """Both backends on the same grid."""

    sb3: BackendLearning
    fused: BackendLearning
    settings: PowerConfig
    sb3_settings: str
    fused_settings: str

    @property
    def matches(self) -> bool:
        """Fused at least as good with a signal, no more false positives without one."""
        for a, b in zip(self.sb3.rows, self.fused.rows, strict=True):
            if a.strength == 0.0:
                if b.pass_rate > a.pass_rate:
                    return False
                continue
            if b.pass_rate < a.pass_rate:
                return False
            ma, mb = a.median_sharpe, b.median_sharpe
            if ma is not None and (mb is None or mb < ma):
                return False
        return True


def _rows(report: PowerReport) -> tuple[StrengthRow, ...]:
    rows = []
    for s in report.settings.strengths:
        runs = [r for r in report.rows if r.strength == s]
        sharpes = tuple(float(r.daily_sharpe) for r in runs if r.daily_sharpe is not None)
        rows.append(StrengthRow(s, len(runs), sum(r.passed for r in runs), sharpes))
    return tuple(rows)


def comparison_grid(settings: PowerConfig) -> PowerConfig:
    """The study grid of a backend comparison: strength 0 on the same markets and seeds.

    A comparison of backends, not a false-positive estimate: the no-signal strength runs the
    same market and training seeds as the others (not the power study's larger null grid), and
    no other training configuration (no null arms).
    """
    grid = settings.model_dump(mode="json")
    grid.update(
        null_market_seeds=list(settings.market_seeds),
        null_training_seeds=list(settings.training_seeds),
        null_arms=[],
    )
    return validate_model(PowerConfig, grid, "stairways bench learning")


def compare_learning(
    sb3_cfg: StairwaysConfig,
    fused_cfg: StairwaysConfig,
    settings: PowerConfig,
    out_dir: Path,
    *,
    workers: int | None = None,
) -> LearningComparison:
    """Run the power study with each backend on ``settings``' grid into ``out_dir``.

    :param sb3_cfg: the SB3 runs' config (:func:`~stairways.bench.train_bench.backend_configs`)
    :param fused_cfg: the fused runs' config
    :param settings: strengths, market seeds, training seeds, timesteps and split
    :param out_dir: one sub-folder per backend
    :param workers: cap on local worker processes of each study
    """
    settings = comparison_grid(settings)
    results: dict[str, BackendLearning] = {}
    for backend, run_cfg in (("sb3", sb3_cfg), ("fused", fused_cfg)):
        if run_cfg.training.backend != backend:
            raise ValueError(f"the {backend} config trains with {run_cfg.training.backend!r}")
        folder = out_dir / backend
        log.info("learning comparison: power study with backend %s in %s", backend, folder)
        report = run_power_study(run_cfg, settings=settings, out_dir=folder, workers=workers)
        results[backend] = BackendLearning(backend, _rows(report), report.seconds, folder)
    return LearningComparison(
        results["sb3"],
        results["fused"],
        settings,
        settings_text(sb3_cfg),
        settings_text(fused_cfg),
    )


def comparison_table(c: LearningComparison) -> str:
    """A markdown table: per strength and backend, pass rate and daily Sharpe distribution."""
    lines = [
        "| strength | backend | runs | verdict passed | daily Sharpe median | min | max |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for a, b in zip(c.sb3.rows, c.fused.rows, strict=True):
        for name, row in (("sb3", a), ("fused", b)):
            med = row.median_sharpe
            lo = min(row.sharpes) if row.sharpes else None
            hi = max(row.sharpes) if row.sharpes else None
            cells = ["n/a" if v is None else f"{v:.3f}" for v in (med, lo, hi)]
            lines.append(
                f"| {row.strength:g} | {name} | {row.runs} | {row.passed}/{row.runs} | "
                f"{cells[0]} | {cells[1]} | {cells[2]} |"
            )
    return "\n".join(lines)


README_BLOCK = "learning-table"
"""Name of the README's markers (``<!-- learning-table:begin -->``) that take the comparison."""


def comparison_text(c: LearningComparison, *, folders: bool = True) -> str:
    """What ``stairways bench learning`` prints: the grid, the table, wall clock and verdict."""
    s = c.settings
    where = f"; folders {c.sb3.out_dir} and {c.fused.out_dir}" if folders else ""
    return "\n".join(
        [
            f"learning comparison: {s.total_timesteps:,} timesteps per run, market seeds "
            f"{list(s.market_seeds)}, training seeds {list(s.training_seeds)}, judged on "
            f"{s.split}; sb3: {c.sb3_settings}; fused: {c.fused_settings}",
            "",
            comparison_table(c),
            "",
            f"wall clock: sb3 {c.sb3.seconds:,.0f} s, fused {c.fused.seconds:,.0f} s{where}",
            f"fused matches sb3: {'yes' if c.matches else 'no'}",
        ]
    )


def write_readme_block(
    readme: Path, block: str, name: str = README_BLOCK, *, dry_run: bool = False
) -> None:
    """Replace the lines between ``readme``'s ``<!-- name:begin -->`` and ``:end`` markers.

    :param dry_run: only check that the file reads and holds the markers (before a long run)
    """
    from stairways.readme_figures import replace_marked_block

    try:
        text = readme.read_text()
    except OSError as err:
        raise InputError(f"--readme {readme}: cannot read it ({err})") from None
    new = replace_marked_block(text, name, block, where=f"--readme {readme}")
    if not dry_run:
        readme.write_text(new)
