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

A baseline's trace depends on the sessions and on the market, env and reward settings, never on
the checkpoint. Evaluating several checkpoints (or seeds) of one config on one split replays the
same baselines, so their traces are kept in a small in-process cache keyed on a digest of every
array of the panel (dates, bars, features) and of those three config sections
(:func:`baseline_cache_key`); the encoded trace files are kept with them, per trace metadata.
Any change to the sessions or the settings is another key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stairways.data.panel import SessionPanel
from stairways.evaluation.replay import ReplayResult, eval_env, replay, target_policy
from stairways.evaluation.traces import Trace, TraceMeta, encode_trace

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig

log = logging.getLogger(__name__)

FLAT = "flat"
BUY_AND_HOLD_PREFIX = "buy_and_hold_"
# Settings kept by the baseline cache (least recently used first out). A year of two tickers
# is ~25 MB of frame per baseline, ~80 MB an entry, plus its encoded files.
BASELINE_CACHE_SIZE = 2
# Encoded trace files kept per baseline of an entry (~9 MB each for a year; one per run).
_FILES_PER_ENTRY = 2
# ReplayResult.extra key naming the cache entry a baseline replay is kept under.
CACHE_KEY = "baseline_cache_key"
_PANEL_ARRAYS = ("dates", "lengths", "ts", "open", "high", "low", "close", "volume", "features")


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
        meta = baseline_meta(cfg, panel, name, run)
        return replay(venv, meta, policy_factory=target_policy(desired, cfg.market.action_set))
    finally:
        venv.close()


def baseline_meta(cfg: StairwaysConfig, panel: SessionPanel, name: str, run: str) -> TraceMeta:
    """Trace metadata of baseline ``name`` replayed on ``panel``."""
    return TraceMeta(
        symbols=panel.symbols,
        reward_components=_components(cfg),
        starting_capital=cfg.market.starting_capital,
        split=panel.split,
        policy=name,
        checkpoint="",
        run=run,
        extra={"panel_fingerprint": panel.fingerprint, "synthetic": panel.synthetic},
    )


def baseline_plans(
    cfg: StairwaysConfig, panel: SessionPanel, *, run: str = ""
) -> dict[str, tuple[np.ndarray, TraceMeta]]:
    """Every baseline's desired targets and trace metadata, in :func:`baseline_targets` order."""
    return {
        name: (desired, baseline_meta(cfg, panel, name, run))
        for name, desired in baseline_targets(panel.symbols).items()
    }


def run_baselines(
    cfg: StairwaysConfig, panel: SessionPanel, *, run: str = ""
) -> dict[str, ReplayResult]:
    """Replay every baseline of :func:`baseline_targets` over ``panel``, in order.

    With the reward computed inside the env, all baselines are stepped together in one batched
    env (:func:`~stairways.evaluation.batch_replay.replay_policies`); with the reward shim, one
    after another (:func:`run_baselines_one_by_one`, the reference path). Both give the same
    traces.
    """
    if cfg.reward.mode != "internal":
        return run_baselines_one_by_one(cfg, panel, run=run)
    from stairways.evaluation.batch_replay import replay_policies

    return replay_policies(cfg, panel, agent=None, baselines=baseline_plans(cfg, panel, run=run))


def run_baselines_one_by_one(
    cfg: StairwaysConfig, panel: SessionPanel, *, run: str = ""
) -> dict[str, ReplayResult]:
    """Replay the baselines one after another, each in its own env (the reference path)."""
    return {
        name: run_baseline(cfg, panel, name, desired, run=run)
        for name, desired in baseline_targets(panel.symbols).items()
    }


def _components(cfg: StairwaysConfig) -> tuple[str, ...]:
    """Component names of the configured reward (what the trace records)."""
    from stairways.rewards.registry import build_reward

    return build_reward(cfg.reward).components


@dataclass
class _Cached:
    frames: dict[str, pd.DataFrame]
    seconds: float
    vector_steps: int
    files: OrderedDict[str, bytes] = field(default_factory=OrderedDict)
    judged: dict[str, dict[str, Any]] = field(default_factory=dict)  # settings -> name -> value


_CACHE: OrderedDict[str, _Cached] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def baseline_cache_key(cfg: StairwaysConfig, panel: SessionPanel) -> str:
    """Digest of what every baseline trace depends on: the panel's arrays, symbols and split,
    and the market, env and reward settings."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                list(panel.symbols),
                list(panel.feature_names),
                panel.split,
                cfg.market.model_dump(mode="json"),
                cfg.env.model_dump(mode="json"),
                cfg.reward.model_dump(mode="json"),
            ],
            sort_keys=True,
        ).encode()
    )
    for name in _PANEL_ARRAYS:
        arr = np.ascontiguousarray(getattr(panel, name))
        h.update(f"{name}{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def cached_baselines(key: str, metas: dict[str, TraceMeta]) -> dict[str, ReplayResult] | None:
    """The cached baseline replays of ``key`` with ``metas`` as their metadata (None: a miss)."""
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is None or set(hit.frames) != set(metas):
            return None
        _CACHE.move_to_end(key)
    log.info("baselines %s from the in-process cache (key %s)", ", ".join(metas), key[:16])
    return {
        name: ReplayResult(
            # pandas copy-on-write: a shallow copy cannot change the cached frame
            trace=Trace(frame=hit.frames[name].copy(deep=False), meta=meta),
            seconds=hit.seconds,
            vector_steps=hit.vector_steps,
            extra={CACHE_KEY: key, "cached": True},
        )
        for name, meta in metas.items()
    }


def remember_baselines(key: str, results: dict[str, ReplayResult]) -> dict[str, ReplayResult]:
    """Keep the baseline replays of ``key`` (their frames) for the next evaluation.

    Returns the same replays, marked with the key (their files can then come from the cache).
    """
    if not results:
        return results
    first = next(iter(results.values()))
    entry = _Cached(
        frames={name: r.trace.frame.copy(deep=False) for name, r in results.items()},
        seconds=first.seconds,
        vector_steps=first.vector_steps,
    )
    with _CACHE_LOCK:
        _CACHE[key] = entry
        while len(_CACHE) > BASELINE_CACHE_SIZE:
            _CACHE.popitem(last=False)
    return {
        name: dataclasses.replace(r, extra={**r.extra, CACHE_KEY: key, "cached": False})
        for name, r in results.items()
    }


def baseline_file(key: str, meta: TraceMeta, source: str) -> bytes | None:
    """The encoded trace file of the cached baseline ``meta.policy`` of ``key`` with ``meta``.

    Encoded from the cached frame (never from a caller's copy) the first time and kept, so the
    bytes are those :func:`~stairways.evaluation.traces.write_trace` writes for that trace.
    None when ``key`` holds no such baseline (the caller writes its own trace).
    """
    meta_key = meta.policy + "\0" + meta.to_json()
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is None or meta.policy not in entry.frames:
            return None
        data = entry.files.get(meta_key)
    if data is None:
        data = encode_trace(Trace(frame=entry.frames[meta.policy], meta=meta), source)
        with _CACHE_LOCK:
            entry.files[meta_key] = data
            while len(entry.files) > _FILES_PER_ENTRY * len(entry.frames):
                entry.files.popitem(last=False)
    return data


def judged_baselines(key: str, settings: str) -> dict[str, Any]:
    """What was computed from the cached baselines of ``key`` under ``settings`` (for example
    their metrics under the evaluation settings' JSON), by baseline name; empty on a miss."""
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        return dict(entry.judged.get(settings, {})) if entry is not None else {}


def remember_judged(key: str, settings: str, values: dict[str, Any]) -> None:
    """Keep what was computed from the cached baselines of ``key`` under ``settings``."""
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None:
            entry.judged.setdefault(settings, {}).update(values)


def clear_baseline_cache() -> None:
    """Forget every cached baseline replay and file."""
    with _CACHE_LOCK:
        _CACHE.clear()
