"""Flat and buy-and-hold fail the default gates, with the planted signal off and on.

The issue that added the new gates found flat passing two of the plan's three gates (its hold
bonus, or the time and completion bonuses of ``phase2_oos``, pay it a positive episode reward)
and buy-and-hold NVDA passing all three on the no-signal market under ``phase2_oos``. Here each
baseline is judged as if it were the agent, with every default gate, on a quarter of synthetic
sessions from the validation half-year, under the default config and under ``phase2_oos``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from stairways.config import load_config
from stairways.configbase import CONFIG_DIR
from stairways.data.panel import SessionPanel
from stairways.data.panel_builder import build_panel, fit_normaliser
from stairways.data.settings import SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from stairways.evaluation.baselines import run_baselines
from stairways.evaluation.gates import EXCESS, SIGNIFICANCE, evaluate_gates, evaluated

SPLITS: dict[str, Any] = {
    "train": {"start": "2023-07-03", "end": "2023-08-31"},
    "validation": {"start": "2023-09-01", "end": "2023-12-29"},
    "test": {"start": "2024-01-02", "end": "2024-12-31"},
}
CONFIGS = {"default": None, "phase2_oos": CONFIG_DIR / "curriculum" / "phase2_oos.yaml"}


def _panel(root: Path, strength: float) -> tuple[Path, SessionPanel]:
    store = root / f"signal{strength:g}.duckdb"
    synthetic = SyntheticConfig(
        start=date(2023, 6, 26), end=date(2023, 12, 29), signal_strength=strength
    )
    with BarStore(store) as s:
        s.write_bars(
            generate(synthetic),
            source="synthetic",
            synthetic=True,
            details=generator_details(synthetic),
        )
    cfg = load_config(None, {"data.store_path": str(store), "data.splits": SPLITS})
    with BarStore(store, read_only=True) as s:
        panel = build_panel(cfg.data, "validation", s, fit_normaliser(cfg.data, s))
    return store, panel


@pytest.fixture(scope="module")
def panels(tmp_path_factory: pytest.TempPathFactory) -> dict[float, tuple[Path, SessionPanel]]:
    root = tmp_path_factory.mktemp("baseline_markets")
    return {strength: _panel(root, strength) for strength in (0.0, 1.0)}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_every_baseline_fails_the_default_gates(
    panels: dict[float, tuple[Path, SessionPanel]], config: str, strength: float
) -> None:
    store, panel = panels[strength]
    cfg = load_config(CONFIGS[config], {"data.store_path": str(store), "data.splits": SPLITS})
    assert panel.n_sessions >= cfg.evaluation.gates.min_sessions
    ev = cfg.evaluation
    traces = {name: r.trace for name, r in run_baselines(cfg, panel).items()}
    judged = {name: evaluated(t, ev) for name, t in traces.items()}
    for name, own in judged.items():
        verdict = evaluate_gates(own, ev, judged)
        failed = verdict.failed()
        assert not verdict.passed, f"{name} passed every default gate under {config}"
        # the money gates are the ones no baseline can pass
        assert EXCESS in failed, name
        if name == "flat":
            assert SIGNIFICANCE in failed
            assert "earned_reward_mean" in failed  # flat earns nothing, whatever its bonuses


def test_flat_is_paid_by_shaping_alone_so_the_plans_reward_gate_says_nothing(
    panels: dict[float, tuple[Path, SessionPanel]],
) -> None:
    store, panel = panels[0.0]
    cfg = load_config(CONFIGS["phase2_oos"], {"data.store_path": str(store), "data.splits": SPLITS})
    traces = {name: r.trace for name, r in run_baselines(cfg, panel).items()}
    judged = {name: evaluated(t, cfg.evaluation) for name, t in traces.items()}
    flat = judged["flat"].metrics
    assert flat.total_pnl == 0.0
    assert flat.episode_reward_mean > 1.0  # time and completion bonuses
    assert flat.earned_reward_mean == 0.0
    verdict = evaluate_gates(judged["flat"], cfg.evaluation, judged)
    results = {r.metric: r for r in verdict.results}
    assert results["episode_reward_mean"].passed
    assert not results["episode_reward_mean"].informative  # flat passes it: flagged
