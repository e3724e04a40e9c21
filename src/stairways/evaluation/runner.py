"""Evaluate a run's checkpoint out of sample: replay, traces, metrics, baselines and gates.

``evaluate_run`` is what ``stairways evaluate RUN_DIR`` calls. It loads the run's resolved config,
feature normaliser, checkpoint (model, VecNormalize statistics and reward state), builds the
panel of the requested split from the bar store, replays every session once in parallel with
deterministic actions, replays the baselines on the same sessions, and writes::

    RUN_DIR/eval/<split>/<checkpoint>/traces.parquet          the agent's step trace
    RUN_DIR/eval/<split>/<checkpoint>/baselines/<name>/traces.parquet
    RUN_DIR/eval/<split>/<checkpoint>/metrics.json            agent and baseline metrics
    RUN_DIR/eval/<split>/<checkpoint>/gates.json              the success-gate verdict

``<checkpoint>`` is ``final``, ``best`` or the checkpoint file's stem (``checkpoint_20000``).
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from stairways.data.ledger import TestLookCount
from stairways.data.normalise import Normaliser
from stairways.data.panel import SessionPanel
from stairways.data.panel_builder import build_panel
from stairways.data.store import BarStore
from stairways.errors import InputError, MissingResourceError, StairwaysError
from stairways.evaluation import metrics as metrics_mod
from stairways.evaluation.baselines import (
    CACHE_KEY,
    baseline_cache_key,
    baseline_file,
    baseline_plans,
    cached_baselines,
    judged_baselines,
    remember_baselines,
    remember_judged,
    run_baselines,
)
from stairways.evaluation.batch_replay import AgentPlan, ObsNormaliser, replay_policies
from stairways.evaluation.gates import GateVerdict, judge_traces, write_verdict
from stairways.evaluation.holdout import note_evaluation
from stairways.evaluation.metrics import LABELS, Metrics
from stairways.evaluation.replay import BatchPolicy, ReplayResult, eval_env, replay
from stairways.evaluation.settings import EvaluationConfig
from stairways.evaluation.traces import TraceMeta, trace_path, write_trace, write_trace_bytes
from stairways.reports import tables as t
from stairways.training.rundir import CheckpointFiles, RunDirectory, atomic_write_text

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from stairways.config import StairwaysConfig

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
GATES_FILE = "gates.json"
CHECKPOINT_KEYWORDS = ("final", "best")


@dataclass(frozen=True)
class CheckpointRef:
    """A resolved checkpoint: its report name and the files it is made of."""

    name: str
    files: CheckpointFiles


@dataclass(frozen=True)
class EvaluationReport:
    """What one evaluation produced (paths, metrics, verdict, timings)."""

    run_dir: Path
    out_dir: Path
    split: str
    checkpoint: CheckpointRef
    agent: Metrics
    baselines: dict[str, Metrics]
    verdict: GateVerdict
    synthetic: bool
    timings: dict[str, float] = field(default_factory=dict)
    test_looks: tuple[TestLookCount, ...] = ()  # per protected split, looks counted so far

    @property
    def exit_code(self) -> int:
        """0 when every gate passed, 3 otherwise."""
        return self.verdict.exit_code

    @property
    def data_label(self) -> str:
        """What the replayed bars are, said plainly (generated bars are never passed off)."""
        if self.synthetic:
            return (
                "data: SYNTHETIC (generated bars; a planted signal may give an edge that no real "
                "market offers, so these figures test the pipeline, not a strategy)"
            )
        return "data: imported market bars"


def resolve_checkpoint(run: RunDirectory, spec: str) -> CheckpointRef:
    """Turn ``final``, ``best`` or a checkpoint file into the files to load.

    :param run: the run directory
    :param spec: ``final``, ``best``, or a ``checkpoint_<steps>.zip`` path (absolute, relative
        to the working directory, to the run or to its checkpoints folder)
    """
    manifest = run.read_manifest()
    if spec == "final":
        if manifest.final_model is None or not (run.path / run.FINAL_MODEL).is_file():
            raise MissingResourceError(
                f"run {run.path} has no final model ({run.FINAL_MODEL}): "
                f"{run.why_no_final_model(manifest)}; evaluate a checkpoint with --checkpoint "
                "best or --checkpoint checkpoints/checkpoint_<steps>.zip"
            )
        return CheckpointRef("final", _complete(run.final_files(manifest.timesteps)))
    if spec == "best":
        if manifest.best_checkpoint is None:
            raise MissingResourceError(
                f"run {run.path} records no best checkpoint in its manifest; evaluate "
                "--checkpoint final or a checkpoints/checkpoint_<steps>.zip file"
            )
        ref = resolve_checkpoint(run, manifest.best_checkpoint)
        return CheckpointRef("best", ref.files)
    candidates = [Path(spec), run.path / spec, run.checkpoints_dir / spec]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        available = [f.model.name for f in run.checkpoints()]
        raise MissingResourceError(
            f"checkpoint {spec} not found in {run.path}; use final, best or one of {available}"
        )
    if found.resolve() == (run.path / run.FINAL_MODEL).resolve():
        return resolve_checkpoint(run, "final")
    stem = found.stem
    if not stem.startswith("checkpoint_") or not stem[len("checkpoint_") :].isdigit():
        raise InputError(
            f"checkpoint file {found} is not named checkpoint_<steps>.zip; its VecNormalize "
            "statistics and reward state cannot be located"
        )
    files = run.checkpoint_files(int(stem[len("checkpoint_") :]))
    return CheckpointRef(stem, _complete(files))


def _complete(files: CheckpointFiles) -> CheckpointFiles:
    """Refuse a checkpoint whose statistics or reward state are missing (no silent default)."""
    for path, what in (
        (files.model, "model"),
        (files.vecnormalize, "VecNormalize statistics"),
        (files.reward_state, "reward state"),
    ):
        if not path.is_file():
            raise MissingResourceError(
                f"checkpoint {files.model.name} lacks its {what} file {path}; re-run training "
                "or evaluate another checkpoint"
            )
    return files


def load_model(cfg: StairwaysConfig, path: Path) -> BaseAlgorithm:
    """Load the checkpoint's model on the CPU with the algorithm the run trained."""
    algo = cfg.training.algo
    if algo == "recurrent_ppo":
        from sb3_contrib import RecurrentPPO

        cls: Any = RecurrentPPO
    else:
        from stable_baselines3 import PPO

        cls = PPO
    # Schedules are plain callables in the zip; evaluation never uses them, so constant
    # stand-ins avoid unpickling closures from another code version (as RL Zoo does).
    custom = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    try:
        # Building the network before its weights are loaded runs an orthogonal init that
        # is slow with several threads on a shared machine; one thread is enough.
        with torch_threads(1):
            model = cls.load(str(path), device="cpu", custom_objects=custom)
    except (ValueError, KeyError, pickle.UnpicklingError, EOFError, OSError) as err:
        raise StairwaysError(f"cannot load checkpoint {path}: {err}") from err
    return model


def batch_policy(model: BaseAlgorithm) -> BatchPolicy:
    """Deterministic actions for a whole observation batch with one forward pass per call.

    Recurrent policies keep their hidden state between calls and reset it where an episode
    starts. The returned function keeps state (hidden states, work buffers): one caller at a
    time.
    """
    policy = model.policy
    policy.set_training_mode(False)
    state: Any = None
    fast = categorical_mode(policy)
    if fast is not None:
        return fast

    def act(obs: np.ndarray, episode_start: np.ndarray) -> np.ndarray:
        nonlocal state
        actions, state = policy.predict(
            obs, state=state, episode_start=episode_start, deterministic=True
        )
        return np.asarray(actions)

    return act


def categorical_mode(policy: Any) -> BatchPolicy | None:
    """``policy.predict(obs, deterministic=True)`` of a feed-forward policy over discrete actions,
    without SB3's per-call machinery (None for any other policy: recurrent, continuous).

    The same torch operations in the same order as SB3's ``ActorCriticPolicy`` and its
    ``CategoricalDistribution.mode()`` (logits normalised by logsumexp, softmax, argmax of the
    probabilities), so the actions are identical, ties included; building a
    ``torch.distributions.Categorical`` with its argument checks was most of a call's time.
    """
    import torch
    from stable_baselines3.common.distributions import CategoricalDistribution
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.common.torch_layers import FlattenExtractor

    if type(policy) is not ActorCriticPolicy or not isinstance(
        policy.action_dist, CategoricalDistribution
    ):
        return None
    if not isinstance(policy.pi_features_extractor, FlattenExtractor):
        return None
    shape = policy.observation_space.shape
    layers = _plain_layers(policy.mlp_extractor.policy_net)
    head: Any = policy.action_net
    if type(head) is not torch.nn.Linear or head.bias is None or policy.device.type != "cpu":
        layers = None
    device = policy.device  # a property that walks the parameters: read it once
    buffers: dict[tuple[int, int], Any] = {}

    def act(obs: np.ndarray, episode_start: np.ndarray) -> np.ndarray:
        x = np.asarray(obs)
        if x.shape[1:] != shape:
            raise StairwaysError(f"observations of shape {x.shape[1:]}, the policy takes {shape}")
        with torch.inference_mode():
            tensor = torch.as_tensor(x, device=device).float()
            if layers is None:
                features = policy.pi_features_extractor(tensor)
                logits = policy.action_net(policy.mlp_extractor.forward_actor(features))
            else:
                # The modules' own operations on their own weights, into buffers kept between
                # calls: nn.Linear on a (batch, features) input is addmm(bias, x, weight.T)
                # (what F.linear calls), Tanh and ReLU are elementwise, and flattening a
                # (batch, features) tensor leaves it as it is.
                hidden = tensor if len(shape) == 1 else tensor.flatten(1)
                n = hidden.shape[0]
                owned = False  # the input shares the caller's observations: never in place
                for k, (fn, weight, bias) in enumerate((*layers, (None, head.weight, head.bias))):
                    if weight is None:
                        hidden = fn[1](hidden) if owned else fn[0](hidden)
                        owned = True
                        continue
                    buf = buffers.get((k, n))
                    if buf is None:
                        buf = torch.empty((n, weight.shape[0]), dtype=hidden.dtype)
                        buffers[(k, n)] = buf
                    hidden = torch.addmm(bias, hidden, weight.t(), out=buf)
                    owned = True
                logits = hidden
            logits = logits - logits.logsumexp(dim=-1, keepdim=True)
            probs = torch.nn.functional.softmax(logits, dim=-1)
            out: np.ndarray = torch.argmax(probs, dim=1).cpu().numpy()
        return out

    return act


def _plain_layers(net: Any) -> list[tuple[Any, Any, Any]] | None:
    """(None, weight, bias) of each Linear layer and ((function, in-place function), None,
    None) of each Tanh and ReLU of a Sequential made of only those (else None)."""
    import torch

    out: list[tuple[Any, Any, Any]] = []
    if not isinstance(net, torch.nn.Sequential):
        return None
    for layer in net:
        if type(layer) is torch.nn.Linear:
            if layer.bias is None:
                return None
            out.append((None, layer.weight, layer.bias))
        elif type(layer) is torch.nn.Tanh:
            out.append(((torch.tanh, torch.tanh_), None, None))
        elif type(layer) is torch.nn.ReLU:
            out.append(((torch.relu, torch.relu_), None, None))
        else:
            return None
    return out


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads, then restore the previous count.

    One forward pass per step on a batch of a few hundred observations is far too small to
    gain from several threads; on a shared machine the threads' synchronisation made the
    replay more than ten times slower (measured: 1.85 s against 0.12 s for 8 sessions).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def frozen_normalizer(venv: VecEnv, path: Path) -> VecNormalize:
    """Wrap ``venv`` with the saved VecNormalize statistics, frozen (no updates)."""
    try:
        wrapped = VecNormalize.load(str(path), venv)
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, AssertionError) as err:
        raise StairwaysError(f"cannot load VecNormalize statistics {path}: {err}") from err
    wrapped.training = False
    wrapped.norm_reward = False
    return wrapped


def load_reward_state(venv: VecEnv, path: Path, n_envs: int) -> None:
    """Give every evaluation env the reward state of the checkpoint's first training env.

    Rewards with state that outlives episodes (the refined reward's decaying exploration bonus)
    then score evaluation steps as they would have scored them when the checkpoint was saved.
    """
    data = read_reward_state(path)
    rows = data["state"]
    # make_vec_env returns either the batched env or the reward shim; both own set_state.
    setter = getattr(venv, "set_state", None)
    if setter is None:
        raise StairwaysError(f"{type(venv).__name__} cannot take a reward state")
    setter({"reward": data.get("reward"), "state": [rows[0]] * n_envs})


def open_panel(cfg: StairwaysConfig, split: str, normaliser: Normaliser) -> SessionPanel:
    """Build the panel of ``split`` from the configured store with the run's normaliser."""
    if split not in cfg.data.splits:
        raise InputError(
            f"unknown split {split!r}; the run's config defines {sorted(cfg.data.splits)}"
        )
    with BarStore(cfg.data.store_path, read_only=True) as store:
        return build_panel(cfg.data, split, store, normaliser)


def evaluate_policy_on_panel(
    cfg: StairwaysConfig,
    panel: SessionPanel,
    ref: CheckpointRef,
    *,
    run: str = "",
    model: BaseAlgorithm | None = None,
) -> ReplayResult:
    """Replay a checkpoint over every session of ``panel`` (deterministic, frozen statistics)."""
    model = model if model is not None else load_model(cfg, ref.files.model)
    base = eval_env(cfg, panel)
    load_reward_state(base, ref.files.reward_state, panel.n_sessions)
    venv = frozen_normalizer(base, ref.files.vecnormalize)
    meta = agent_meta(cfg, panel, ref, run)
    try:
        with torch_threads(1):
            return replay(venv, meta, policy=batch_policy(model))
    finally:
        venv.close()


def agent_meta(
    cfg: StairwaysConfig, panel: SessionPanel, ref: CheckpointRef, run: str
) -> TraceMeta:
    """Trace metadata of the agent's replay of checkpoint ``ref`` on ``panel``."""
    return TraceMeta(
        symbols=panel.symbols,
        reward_components=_components(cfg),
        starting_capital=cfg.market.starting_capital,
        split=panel.split,
        policy="agent",
        checkpoint=ref.name,
        run=run,
        extra={
            "checkpoint_file": str(ref.files.model),
            "timesteps": ref.files.timesteps,
            "panel_fingerprint": panel.fingerprint,
            "synthetic": panel.synthetic,
        },
    )


def read_reward_state(path: Path) -> dict[str, Any]:
    """The checkpoint's saved reward state (refused when it is not JSON or holds no rows)."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise StairwaysError(f"reward state {path} is not valid JSON: {err}") from None
    rows = data.get("state") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise StairwaysError(f"reward state {path} holds no state rows")
    return dict(data)


def evaluate_with_baselines(
    cfg: StairwaysConfig,
    panel: SessionPanel,
    ref: CheckpointRef,
    model: BaseAlgorithm,
    *,
    run: str = "",
    baselines: bool = True,
) -> tuple[ReplayResult, dict[str, ReplayResult]]:
    """The agent's replay of ``ref`` and every baseline's, over every session of ``panel``.

    With the reward computed inside the env (``reward.mode: internal``, the default) all of them
    are stepped together in one batched env
    (:func:`~stairways.evaluation.batch_replay.replay_policies`); with the reward shim, one
    replay after another through the SB3 wrappers (:func:`evaluate_policy_on_panel` and
    :func:`~stairways.evaluation.baselines.run_baselines`). Both give the same traces.
    """
    if cfg.reward.mode != "internal":
        agent = evaluate_policy_on_panel(cfg, panel, ref, run=run, model=model)
        return agent, (run_baselines(cfg, panel, run=run) if baselines else {})
    plan = AgentPlan(
        policy=batch_policy(model),
        normalise=ObsNormaliser.load(ref.files.vecnormalize),
        reward_state=read_reward_state(ref.files.reward_state),
        meta=agent_meta(cfg, panel, ref, run),
    )
    plans = baseline_plans(cfg, panel, run=run) if baselines else {}
    key = baseline_cache_key(cfg, panel) if plans else ""
    cached = cached_baselines(key, {name: meta for name, (_, meta) in plans.items()})
    if cached is not None:
        plans = {}
    with torch_threads(1):
        results = replay_policies(cfg, panel, agent=plan, baselines=plans)
    agent = results.pop("agent")
    if cached is not None:
        return agent, cached
    return agent, remember_baselines(key, results)


def _components(cfg: StairwaysConfig) -> tuple[str, ...]:
    from stairways.rewards.registry import build_reward

    return build_reward(cfg.reward).components


def run_config(run: RunDirectory, store: Path | None = None) -> StairwaysConfig:
    """The run's resolved config, with the bar store optionally replaced."""
    from stairways.config import load_config

    if not run.config_path.is_file():
        raise MissingResourceError(f"run {run.path} has no {run.CONFIG}; it is not a complete run")
    overrides = {"data.store_path": str(store)} if store is not None else {}
    return load_config(run.config_path, overrides)


def evaluate_run(
    run_dir: Path,
    *,
    checkpoint: str | None = None,
    split: str | None = None,
    store: Path | None = None,
    evaluation: EvaluationConfig | None = None,
) -> EvaluationReport:
    """Evaluate one checkpoint of a run on a split and write traces, metrics and gates.

    :param run_dir: run directory written by ``stairways train``
    :param checkpoint: ``final``, ``best`` or a checkpoint file (default: the config's)
    :param split: split to replay (default: ``evaluation.split`` of the config)
    :param store: bar store to read instead of the run's ``data.store_path``
    :param evaluation: evaluation settings replacing the run's (gates, Sharpe windows)
    """
    clock = _StageClock()
    with clock.stage("panel"):
        run = RunDirectory.open(run_dir)
        cfg = run_config(run, store)
        if evaluation is not None:
            cfg = cfg.model_copy(update={"evaluation": evaluation})
        ev = cfg.evaluation
        split = split or ev.split
        ref = resolve_checkpoint(run, checkpoint or ev.checkpoint)
        normaliser = Normaliser.load(run.normaliser_path)
        panel = open_panel(cfg, split, normaliser)
    with clock.stage("load"):
        model = load_model(cfg, ref.files.model)
    with clock.stage("replay"):
        # The agent and the baselines, replayed together (this stage covers all of them).
        agent, baselines = evaluate_with_baselines(
            cfg, panel, ref, model, run=str(run.path), baselines=ev.baselines
        )
    timings = clock.timings
    timings["replay_stepping_seconds"] = agent.seconds
    timings["baselines_cached"] = float(any(r.extra.get("cached") for r in baselines.values()))

    with clock.stage("metrics"):
        out_dir = trace_path(run.path, split, ref.name).parent
        # Metrics of cached baselines depend only on them and the evaluation settings: kept.
        cache_key = next((r.extra.get(CACHE_KEY) for r in baselines.values()), None)
        settings = ev.model_dump_json()
        known = judged_baselines(cache_key, settings) if cache_key else {}
        own, base, verdict = judge_traces(
            agent.trace, {name: r.trace for name, r in baselines.items()}, ev, known
        )
        if cache_key:
            remember_judged(cache_key, settings, base)
        agent_metrics = own.metrics
        base_metrics = {name: b.metrics for name, b in base.items()}
        # Figures exist now: a look at protected (test) dates is counted before anything is
        # shown.
        looks = note_evaluation(run, cfg.data, panel, ref.name)

    with clock.stage("write"):
        # Everything is written into a staging folder that then replaces the report folder, so
        # a failure never leaves new traces next to old metrics.
        staging = out_dir.with_name(f".{out_dir.name}.partial")
        if staging.exists():
            shutil.rmtree(staging)
        write_trace(
            agent.trace, staging / trace_path(run.path, split, ref.name).relative_to(out_dir)
        )
        for name, r in baselines.items():
            rel = trace_path(run.path, split, ref.name, name).relative_to(out_dir)
            # A cached baseline's file is encoded once per trace metadata and kept with it.
            key = r.extra.get(CACHE_KEY)
            data = baseline_file(key, r.trace.meta, str(staging / rel)) if key else None
            if data is None:
                write_trace(r.trace, staging / rel)
            else:
                write_trace_bytes(data, staging / rel)
        report = EvaluationReport(
            run_dir=run.path,
            out_dir=out_dir,
            split=split,
            checkpoint=ref,
            agent=agent_metrics,
            baselines=base_metrics,
            verdict=verdict,
            synthetic=panel.synthetic,
            timings=timings,
            test_looks=looks,
        )
        write_verdict(verdict, staging / GATES_FILE)
    clock.total()
    _write_metrics(report, cfg, panel, staging)
    _publish(staging, out_dir)
    log.info(
        "evaluated %s on %s (%d sessions) in %.2f s: gates %s",
        ref.name,
        split,
        panel.n_sessions,
        timings["total_seconds"],
        "passed" if verdict.passed else "failed",
    )
    return report


class _StageClock:
    """Wall-clock and CPU seconds of an evaluation's stages (``<stage>_seconds`` and
    ``<stage>_cpu_seconds``), and of everything so far (``total_...``)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.timings[f"{name}_seconds"] = time.perf_counter() - wall
            self.timings[f"{name}_cpu_seconds"] = time.process_time() - cpu

    def total(self) -> None:
        self.timings["total_seconds"] = time.perf_counter() - self._wall0
        self.timings["total_cpu_seconds"] = time.process_time() - self._cpu0


def _publish(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``staging`` (the old report is removed only once the new is in)."""
    old = out_dir.with_name(f".{out_dir.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    if old.exists():
        shutil.rmtree(old)


def _write_metrics(
    report: EvaluationReport, cfg: StairwaysConfig, panel: SessionPanel, folder: Path
) -> Path:
    """Write metrics.json: provenance, definitions, agent and baseline metrics, timings."""
    ev = cfg.evaluation
    data = {
        "run": str(report.run_dir),
        "split": report.split,
        "checkpoint": report.checkpoint.name,
        "checkpoint_file": str(report.checkpoint.files.model),
        "timesteps": report.checkpoint.files.timesteps,
        "sessions": panel.n_sessions,
        "first_session": str(panel.dates[0]) if panel.n_sessions else None,
        "last_session": str(panel.dates[-1]) if panel.n_sessions else None,
        "excluded_sessions": len(panel.excluded_sessions),
        "panel_fingerprint": panel.fingerprint,
        "synthetic": panel.synthetic,
        "sharpe_window_minutes": ev.sharpe_window_minutes,
        "trading_days_per_year": ev.trading_days_per_year,
        "bootstrap": {
            "confidence": ev.confidence,
            "resamples": ev.bootstrap_resamples,
            "seed": ev.bootstrap_seed,
        },
        "definitions": (metrics_mod.__doc__ or "").strip(),
        "labels": LABELS,
        "agent": report.agent.to_dict(),
        "baselines": {k: v.to_dict() for k, v in report.baselines.items()},
        "gates_passed": report.verdict.passed,
        "test_looks": [c.to_dict() for c in report.test_looks],
        "timings": report.timings,
    }
    path = folder / METRICS_FILE
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return path


COMPARISON_ROWS: tuple[str, ...] = (
    "total_pnl",
    "mean_daily_pnl",
    "mean_daily_pnl_lower_bound",
    "sum_daily_returns",
    "annualised_return",
    "sharpe",
    "daily_sharpe",
    "daily_sharpe_low",
    "daily_sharpe_high",
    "sortino",
    "max_drawdown",
    "negative_equity_steps",
    "win_rate",
    "trades_per_day",
    "hold_rate",
    "turnover_per_day",
    "total_fees",
    "fees_share_of_gross",
    "mean_episode_length",
    "episode_reward_mean",
    "episode_reward_std",
    "earned_reward_mean",
    "reward_pnl_disagreement",
)


# How each compared metric reads (every other one: a plain number with 4 decimals).
_MONEY = frozenset({"total_pnl", "mean_daily_pnl", "mean_daily_pnl_lower_bound", "total_fees"})
_SHARES = frozenset(
    {
        "sum_daily_returns",
        "annualised_return",
        "max_drawdown",
        "win_rate",
        "hold_rate",
        "fees_share_of_gross",
        "reward_pnl_disagreement",
    }
)
_COUNTS = frozenset({"negative_equity_steps"})
_PER_SESSION = frozenset({"trades_per_day", "mean_episode_length"})


def _metric_cell(key: str, value: Any) -> str:
    if value is None:
        return "undefined"
    if key in _MONEY:
        return t.dollars(value)
    if key in _SHARES:
        return t.percent(2)(value)
    if key in _COUNTS:
        return t.integer(value)
    if key in _PER_SESSION:
        return t.number(1)(value)
    if key == "turnover_per_day":
        return t.multiple(2)(value)
    return t.number(4)(value)


def comparison_table(report: EvaluationReport) -> str:
    """Plain-text table of the agent's metrics next to every baseline's, each row labelled."""
    columns = {"agent": report.agent.to_dict()}
    columns.update({k: v.to_dict() for k, v in report.baselines.items()})
    rows = [
        {"metric": LABELS[key], **{name: _metric_cell(key, v[key]) for name, v in columns.items()}}
        for key in COMPARISON_ROWS
    ]
    spec = [t.Column("metric"), *(t.Column(name, align="right") for name in columns)]
    lines = t.render_text(t.table(spec, rows)).splitlines()
    exhausted = report.agent.capital_exhausted_after_sessions
    if report.agent.negative_equity_steps or exhausted is not None:
        lines.append(
            f"EVENT: equity went negative ({report.agent.negative_equity_steps} steps at or "
            "below zero; cumulative losses used up the capital "
            + ("never" if exhausted is None else f"after {exhausted} sessions")
            + ")"
        )
    return "\n".join(lines)
