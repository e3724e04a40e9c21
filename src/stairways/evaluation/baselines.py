"""Baselines replayed on the same sessions as the agent: doing nothing, and holding each ticker.

- ``flat``: never trades; zero P&L and zero fees by construction.
- ``buy_and_hold_<SYM>``: a full long position (``market.max_position_notional``) in one ticker,
  bought at the first fill opportunity of every session (the open of the bar after the first
  decision) and sold at the session close by the env's closing step.

They run through the same batched env as the agent (same action set, sizing, latency, cost
model from :mod:`stairways.market.costs`, drawdown cap and reward), driven by a scripted policy
that steers the targets (:func:`stairways.evaluation.replay.target_policy`). A baseline is
therefore subject to the same rules as the agent: if a session's drawdown exceeds the cap, the
baseline is stopped out exactly as the agent would be.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from stairways.data.panel import SessionPanel
from stairways.evaluation.replay import ReplayResult, eval_env, replay, target_policy
from stairways.evaluation.traces import TraceMeta

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig

log = logging.getLogger(__name__)

FLAT = "flat"
BUY_AND_HOLD_PREFIX = "buy_and_hold_"


def baseline_targets(symbols: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Target vectors of every baseline: flat, then buy-and-hold of each ticker in order."""
    out = {FLAT: np.zeros(len(symbols))}
    for j, sym in enumerate(symbols):
        want = np.zeros(len(symbols))
        want[j] = 1.0
        out[f"{BUY_AND_HOLD_PREFIX}{sym}"] = want
    return out


def run_baseline(
    cfg: StairwaysConfig,
    panel: SessionPanel,
    name: str,
    desired: np.ndarray,
    *,
    run: str = "",
) -> ReplayResult:
    """Replay one baseline over every session of ``panel``.

    :param cfg: the run's config (market, env and reward sections are used)
    :param panel: sessions to replay
    :param name: baseline name recorded as the trace's policy
    :param desired: per-ticker targets the baseline holds
    :param run: run directory recorded in the trace metadata
    """
    venv = eval_env(cfg, panel)
    try:
        meta = TraceMeta(
            symbols=panel.symbols,
            reward_components=_components(cfg),
            starting_capital=cfg.market.starting_capital,
            split=panel.split,
            policy=name,
            checkpoint="",
            run=run,
            extra={"panel_fingerprint": panel.fingerprint, "synthetic": panel.synthetic},
        )
        return replay(venv, meta, policy_factory=target_policy(desired, cfg.market.action_set))
    finally:
        venv.close()


def run_baselines(
    cfg: StairwaysConfig, panel: SessionPanel, *, run: str = ""
) -> dict[str, ReplayResult]:
    """Replay every baseline of :func:`baseline_targets` over ``panel``, in order."""
    return {
        name: run_baseline(cfg, panel, name, desired, run=run)
        for name, desired in baseline_targets(panel.symbols).items()
    }


def _components(cfg: StairwaysConfig) -> tuple[str, ...]:
    """Component names of the configured reward (what the trace records)."""
    from stairways.rewards.registry import build_reward

    return build_reward(cfg.reward).components
