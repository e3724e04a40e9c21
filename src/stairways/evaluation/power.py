"""The power study: how often do the gates pass with no signal, and how often with one?

``stairways validate power`` runs, for every planted-signal strength (0 included), market seed
and training seed of ``evaluation.power``:

1. the synthetic market of that strength and seed (:mod:`stairways.data.synthetic`, the data
   config's generator settings otherwise), over the training and evaluation splits, into its own
   bar store (one per strength and market seed, shared by the training seeds);
2. a default training run (:func:`stairways.training.trainer.train`) on the training split;
3. the evaluation of its final model on ``power.split`` (the validation split; a protected
   split is refused) with the baselines and every gate
   (:func:`stairways.evaluation.runner.evaluate_run`).

The pass rate of each gate, and of the whole verdict, per strength is the result: at strength 0
it is the false-positive rate (goal: at most ``max_false_positive_rate``, 5 %), at the others
the power. Rates come with Wilson 95 % intervals (a handful of runs says little on its own).

Calibration. Next to the agents, every market is replayed with a *reference rule that knows the
signal*: it computes the generator's own lead-lag state ``z`` (the exponentially weighted sum of
MSFT's 1-minute log returns, half-life ``lead_lag_halflife_bars``), whose expected future NVDA
drift is ``strength * lead_lag_beta * z``, and holds NVDA long (short) while that expected move
exceeds ``rule_entry_costs`` round-trip costs (commission and half-spread on both sides at the
configured position size), going flat when it falls below half of that. What the rule earns
(daily Sharpe ratio with its interval, dollars a day) says how strong a signal of each strength
is; the agents' pass rates say how much of it the pipeline finds.

Outputs in the study folder: ``markets/`` (bar stores), ``runs/`` (run directories),
``power_runs.csv`` (one row per run), ``power_summary.csv`` and ``power.md`` (one row per
strength), ``power.json`` (everything, with timings).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stairways.errors import InputError, StairwaysError
from stairways.evaluation.jobs import (
    Job,
    JobOutcome,
    TaskBackend,
    default_out_dir,
    map_tasks,
    run_jobs,
)
from stairways.evaluation.replay import PolicyFactory, best_actions
from stairways.evaluation.settings import NullArm, PowerConfig

if TYPE_CHECKING:
    from stairways.config import StairwaysConfig
    from stairways.data.panel import SessionPanel
    from stairways.data.settings import SyntheticConfig
    from stairways.env.vector import BatchCore
    from stairways.market.settings import MarketConfig

log = logging.getLogger(__name__)

FOLLOWER, LEADER = "NVDA", "MSFT"
VERDICT = "verdict"
WARMUP_DAYS = 7  # calendar days of market generated before the first split for feature warm-up


# ----- the reference rule ------------------------------------------------------------------------


def lead_lag_state(panel: SessionPanel, leader: int, halflife_bars: float) -> np.ndarray:
    """The generator's lead-lag state after each bar, shape (sessions, bars).

    ``z`` restarts at 0 every session; after bar ``k`` it is ``phi * z + r_k`` with ``r_k`` the
    leader's log return of bar ``k`` (open to close on the first bar, close to close after).
    """
    phi = 0.5 ** (1.0 / halflife_bars)
    close = np.log(panel.close[:, :, leader])
    first = np.log(panel.close[:, 0, leader]) - np.log(panel.open[:, 0, leader])
    ret = np.empty_like(close)
    ret[:, 0] = first
    ret[:, 1:] = np.diff(close, axis=1)
    z = np.zeros_like(ret)
    acc = np.zeros(ret.shape[0])
    for k in range(ret.shape[1]):
        acc = phi * acc + ret[:, k]
        z[:, k] = acc
    # Padding bars (beyond a session's length) repeat the last price: their return is 0 and the
    # state only decays; no action is taken there.
    return z


def round_trip_cost(price: np.ndarray, market: MarketConfig) -> np.ndarray:
    """Round-trip cost of a full position as a fraction of its value: commission (per share,
    floored at the minimum, capped at the configured fraction) and the half-spread, both ways.
    """
    c = market.costs
    shares = np.floor(market.max_position_notional / np.maximum(price, 1e-9))
    commission = np.maximum(shares * c.commission_per_share, c.commission_min)
    if c.commission_max_fraction is not None:
        commission = np.minimum(commission, c.commission_max_fraction * shares * price)
    value = np.maximum(shares * price, 1e-9)
    return 2.0 * (commission / value + c.half_spread_bps / 1e4)


def signal_rule_policy(
    panel: SessionPanel,
    synthetic: SyntheticConfig,
    market: MarketConfig,
    entry_costs: float,
) -> PolicyFactory:
    """A scripted policy that trades NVDA on the generator's own lead-lag state.

    :param panel: the sessions the replay plays (one env per session)
    :param synthetic: the generator settings of the market (strength, beta, half-life)
    :param market: market settings (action set, position size, costs)
    :param entry_costs: enter when the expected move exceeds this many round-trip costs
    """
    from stairways.env import kernels as kn

    symbols = tuple(panel.symbols)
    if FOLLOWER not in symbols or LEADER not in symbols:
        raise InputError(f"the reference rule trades {FOLLOWER} on {LEADER}; symbols are {symbols}")
    follower, leader = symbols.index(FOLLOWER), symbols.index(LEADER)
    strength = synthetic.signal_strength if synthetic.signal in ("lead_lag", "both") else 0.0
    expected = (
        strength
        * synthetic.lead_lag_beta
        * lead_lag_state(panel, leader, synthetic.lead_lag_halflife_bars)
    )
    cost = round_trip_cost(panel.close[:, :, follower], market) * entry_costs

    def make(core: BatchCore) -> Any:
        t = core.n_tickers
        tables = {v: best_actions(_want(t, follower, v), market.action_set, t) for v in (-1, 0, 1)}
        powers = 3 ** np.arange(t - 1, -1, -1, dtype=np.int64)

        def act(obs: np.ndarray, episode_start: np.ndarray) -> np.ndarray:
            sess = core.si[:, kn.I_SESSION]
            bar = core.si[:, kn.I_BAR]
            e = expected[sess, bar]
            c = cost[sess, bar]
            held = core.targets[:, follower]
            want = np.where(e > c, 1, np.where(e < -c, -1, np.where(np.abs(e) < c / 2, 0, held)))
            state = (core.targets.astype(np.int64) + 1) @ powers
            out = np.empty(len(state), dtype=np.int64)
            for v, table in tables.items():
                rows = want == v
                out[rows] = table[state[rows]]
            return out

        return act

    return make


def _want(t: int, follower: int, value: int) -> np.ndarray:
    out = np.zeros(t)
    out[follower] = float(value)
    return out


# ----- markets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketTask:
    """One market to generate and measure: its strength, seed, store and the study config."""

    strength: float
    market_seed: int
    store: str
    config: dict[str, Any]
    split: str
    entry_costs: float


@dataclass(frozen=True)
class MarketReference:
    """A generated market and what the reference rule and the baselines do on its split."""

    strength: float
    market_seed: int
    store: str
    sessions: int
    rule: dict[str, float | int | None]
    rule_significant: bool
    baselines_passed: dict[str, bool]
    baseline_gates: dict[str, dict[str, bool]]
    seconds: float
    cpu_seconds: float


def market_name(strength: float, market_seed: int) -> str:
    """Folder-safe name of one market: ``strength0.25_seed101``."""
    return f"strength{strength:g}_seed{market_seed}"


def prepare_market(task: MarketTask) -> MarketReference:
    """Generate the market into its store, then replay the reference rule and the baselines.

    Top-level so that worker processes (and Ray tasks) can run it.
    """
    from stairways.config import StairwaysConfig
    from stairways.configbase import validate_model
    from stairways.data.panel_builder import build_panel, fit_normaliser
    from stairways.data.store import BarStore
    from stairways.data.synthetic import generate, generator_details
    from stairways.evaluation.baselines import run_baselines
    from stairways.evaluation.gates import EXCESS, SIGNIFICANCE, judge_traces
    from stairways.evaluation.replay import eval_env, replay
    from stairways.evaluation.traces import TraceMeta
    from stairways.rewards.registry import build_reward

    started = time.perf_counter()
    cpu_started = time.process_time()
    cfg = validate_model(StairwaysConfig, task.config, f"power market {task.store}")
    synthetic = cfg.data.synthetic
    store_path = Path(task.store)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    # A store (and its write-ahead log) left by an interrupted attempt is rebuilt, never reused.
    for stale in (store_path, store_path.with_name(store_path.name + ".wal")):
        stale.unlink(missing_ok=True)
    with BarStore(store_path) as store:
        store.write_bars(
            generate(synthetic, cfg.data.symbols),
            source="synthetic",
            synthetic=True,
            details=generator_details(synthetic),
        )
    with BarStore(store_path, read_only=True) as store:
        normaliser = fit_normaliser(cfg.data, store)
        panel = build_panel(cfg.data, task.split, store, normaliser)
    venv = eval_env(cfg, panel)
    try:
        meta = TraceMeta(
            symbols=panel.symbols,
            reward_components=build_reward(cfg.reward).components,
            starting_capital=cfg.market.starting_capital,
            split=panel.split,
            policy="signal_rule",
            checkpoint="",
            run="",
            extra={"panel_fingerprint": panel.fingerprint, "synthetic": panel.synthetic},
        )
        rule = replay(
            venv,
            meta,
            policy_factory=signal_rule_policy(panel, synthetic, cfg.market, task.entry_costs),
        )
    finally:
        venv.close()
    baselines = run_baselines(cfg, panel)
    own, _, verdict = judge_traces(
        rule.trace, {n: r.trace for n, r in baselines.items()}, cfg.evaluation
    )
    m = own.metrics
    return MarketReference(
        strength=task.strength,
        market_seed=task.market_seed,
        store=task.store,
        sessions=panel.n_sessions,
        rule={
            "mean_daily_pnl": m.mean_daily_pnl,
            "daily_sharpe": m.daily_sharpe,
            "daily_sharpe_low": m.daily_sharpe_low,
            "daily_sharpe_high": m.daily_sharpe_high,
            "sharpe": m.sharpe,
            "trades_per_day": m.trades_per_day,
        },
        rule_significant=all(
            r.passed for r in verdict.results if r.metric in (SIGNIFICANCE, EXCESS)
        ),
        baselines_passed={n: verdict.baseline_passed(n) for n in verdict.baselines},
        baseline_gates={
            n: {r.metric: r.passed for r in results} for n, results in verdict.baselines.items()
        },
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
    )


# ----- the study ---------------------------------------------------------------------------------

DEFAULT_ARM = "default"
POWER_TARGET = 0.8  # the README names the weakest strength the pipeline finds this often


@dataclass(frozen=True)
class RunRow:
    """One trained and evaluated run of the study."""

    strength: float
    market_seed: int
    training_seed: int
    run_dir: str
    checkpoint: str
    status: str
    gates: dict[str, bool]
    gate_values: dict[str, float | None]
    passed: bool
    mean_daily_pnl: float | None
    daily_sharpe: float | None
    sharpe: float | None
    seconds: float
    cpu_seconds: float
    arm: str = DEFAULT_ARM
    code: str = ""  # git commit of the code that trained it (from the run's manifest)


@dataclass(frozen=True)
class Rate:
    """``k`` of ``n`` runs, with a Wilson interval."""

    k: int
    n: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        """``k / n`` (0 without runs)."""
        return self.k / self.n if self.n else 0.0

    def text(self) -> str:
        """``2/8 (25%, 95% CI 7-59%)``."""
        return f"{self.k}/{self.n} ({self.rate:.0%}, CI {self.low:.0%}-{self.high:.0%})"


def wilson(k: int, n: int, confidence: float = 0.95) -> Rate:
    """Wilson score interval of a proportion ``k / n``."""
    if n == 0:
        return Rate(0, 0, 0.0, 1.0)
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = k / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denom
    return Rate(k, n, max(0.0, center - half), min(1.0, center + half))


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (exact for any n used here)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    lp, lq = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        log_pmf = (
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        )
        total += math.exp(log_pmf)
    return min(1.0, total)


def exact_upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """Clopper-Pearson one-sided upper confidence bound of a proportion ``k / n``.

    The largest ``p`` with ``P(X <= k | n, p) >= 1 - confidence``; with ``k = 0`` it is
    ``1 - (1 - confidence) ** (1 / n)`` (59 runs without a pass: 4.95 %).
    """
    if n == 0 or k >= n:
        return 1.0
    if k == 0:
        return 1.0 - (1.0 - confidence) ** (1.0 / n)
    alpha = 1.0 - confidence
    lo, hi = k / n, 1.0
    for _ in range(200):  # the cdf falls with p: bisect to far below any printed precision
        mid = (lo + hi) / 2.0
        if _binomial_cdf(k, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def runs_to_show(goal: float, confidence: float = 0.95) -> int:
    """Runs needed, none passing, for the exact upper bound to fall within ``goal``."""
    if goal <= 0.0:
        raise InputError("a false-positive goal of 0 can never be shown by a finite study")
    if goal >= 1.0:
        return 1
    n = max(1, math.ceil(math.log(1.0 - confidence) / math.log(1.0 - goal)))
    while exact_upper_bound(0, n, confidence) > goal:  # guard the float edge of the ceiling
        n += 1
    return n


@dataclass(frozen=True)
class FalsePositive:
    """The false-positive verdict of one arm: passes at strength 0 and the exact upper bound."""

    arm: str
    rate: Rate
    upper: float
    confidence: float
    goal: float

    @property
    def exceeded(self) -> bool:
        """The observed rate is above the goal."""
        return self.rate.n > 0 and self.rate.rate > self.goal

    @property
    def shown(self) -> bool:
        """The exact one-sided upper bound is within the goal: at most ``goal`` is shown."""
        return self.rate.n > 0 and self.upper <= self.goal

    @property
    def state(self) -> str:
        """``SHOWN``, ``NOT SHOWN`` (too few runs to tell) or ``EXCEEDED``."""
        if self.exceeded:
            return "EXCEEDED"
        return "SHOWN" if self.shown else "NOT SHOWN"

    def text(self) -> str:
        """One line: the count, the bound and whether the goal is shown."""
        k, n = self.rate.k, self.rate.n
        line = (
            f"{self.arm}: {k}/{n} runs pass every gate with no signal ({self.rate.rate:.1%}); "
            f"exact one-sided {self.confidence:.0%} upper bound {self.upper:.1%}; goal at most "
            f"{self.goal:.0%}: {self.state}"
        )
        if not self.shown and not self.exceeded and self.goal > 0:
            line += (
                f" (with no pass, {runs_to_show(self.goal, self.confidence)} runs are needed "
                "to show it)"
            )
        return line


@dataclass(frozen=True)
class StrengthSummary:
    """Pass rates and average figures of every run of one strength (and arm)."""

    strength: float
    runs: int
    gate_rates: dict[str, Rate]
    verdict: Rate
    agent_mean_daily_pnl: float | None
    agent_daily_sharpe: float | None
    rule_mean_daily_pnl: float
    rule_daily_sharpe: float | None
    rule_significant: Rate
    baselines_passed: Rate
    arm: str = DEFAULT_ARM


@dataclass(frozen=True)
class PowerReport:
    """A finished study: rows, summaries, the false-positive verdicts and the output files."""

    out_dir: Path
    settings: PowerConfig
    markets: list[MarketReference]
    rows: list[RunRow]
    summaries: list[StrengthSummary]
    gate_names: list[str]
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)
    market_strength: float | None = None  # the base config's planted strength (calibration text)
    planned_runs: int = 0  # runs of the whole study (more than len(rows) while it is unfinished)

    @property
    def complete(self) -> bool:
        """Every planned run is in the report."""
        return len(self.rows) >= self.planned_runs

    @property
    def cpu_seconds(self) -> float:
        """CPU time of every market and run (the study's cost on an otherwise idle machine)."""
        return sum(m.cpu_seconds for m in self.markets) + sum(r.cpu_seconds for r in self.rows)

    def summary(self, strength: float, arm: str = DEFAULT_ARM) -> StrengthSummary:
        """The summary of one strength and arm."""
        return next(s for s in self.summaries if s.strength == strength and s.arm == arm)

    @property
    def false_positive(self) -> Rate:
        """Pass rate of the full verdict at strength 0 (default arm)."""
        return self.summary(0.0).verdict

    @property
    def false_positives(self) -> list[FalsePositive]:
        """The false-positive verdict of every arm (the default first)."""
        p = self.settings
        return [
            FalsePositive(
                arm=s.arm,
                rate=s.verdict,
                upper=exact_upper_bound(s.verdict.k, s.verdict.n, p.false_positive_confidence),
                confidence=p.false_positive_confidence,
                goal=p.max_false_positive_rate,
            )
            for s in self.summaries
            if s.strength == 0.0
        ]

    @property
    def passed(self) -> bool:
        """No arm's false-positive rate is observed above ``max_false_positive_rate``."""
        return not any(f.exceeded for f in self.false_positives)

    @property
    def shown(self) -> bool:
        """Every arm's exact upper bound is within the goal."""
        return all(f.shown for f in self.false_positives)


def quick_settings(p: PowerConfig) -> PowerConfig:
    """A smoke-sized study: strength 0 and the strongest, one market, one seed, 2,000 steps."""
    return p.model_copy(
        update={
            "strengths": (0.0, max(p.strengths)) if max(p.strengths) > 0 else (0.0,),
            "market_seeds": p.market_seeds[:1],
            "training_seeds": p.training_seeds[:1],
            "null_market_seeds": p.null_market_seeds[:1],
            "null_training_seeds": p.null_training_seeds[:1],
            "null_arms": (),
            "total_timesteps": min(p.total_timesteps, 2_000),
        }
    )


def _study_config(cfg: StairwaysConfig, split: str) -> dict[str, Any]:
    """The config every market and run starts from (checked: split known and not protected)."""
    data = cfg.data
    if split not in data.splits:
        raise InputError(
            f"power study split {split!r} is not one of data.splits {sorted(data.splits)}; add "
            "a validation split inside the training years (see config/power.yaml) or pass "
            "--split"
        )
    if split in data.protected_splits:
        raise InputError(
            f"the power study is a development tool and never evaluates on the protected split "
            f"{split!r}; use a validation split inside the training years"
        )
    if cfg.training.split == split:
        raise InputError(f"the power study would train and evaluate on the same split {split!r}")
    train, held = data.splits[cfg.training.split], data.splits[split]
    start = min(train.start, held.start) - timedelta(days=WARMUP_DAYS)
    end = max(train.end, held.end)
    dumped = cfg.model_dump(mode="json")
    dumped["data"]["synthetic"] = {
        **dumped["data"]["synthetic"],
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    return dumped


def arm_config(base: dict[str, Any], arm: NullArm) -> dict[str, Any]:
    """An arm's run config: its own market, env, reward and training; the study's data, gates.

    Its training split must be the study's: the arm trains on what the default arm trains on.
    """
    from stairways.config import load_config

    try:
        own = load_config(arm.config)
    except StairwaysError as err:
        raise InputError(f"evaluation.power.null_arms {arm.name!r}: {err}") from None
    dumped = own.model_dump(mode="json")
    out = {**dumped, "data": base["data"], "evaluation": base["evaluation"]}
    out["name"] = f"{base['name']}_{arm.name}"
    if dumped["training"]["split"] != base["training"]["split"]:
        raise InputError(
            f"evaluation.power.null_arms {arm.name!r}: {arm.config} trains on split "
            f"{dumped['training']['split']!r}, the study on {base['training']['split']!r}; "
            "an arm must train on the study's training split"
        )
    return out


def _with(data: dict[str, Any], section: str, **values: Any) -> dict[str, Any]:
    out = dict(data)
    out[section] = {**data[section], **values}
    return out


def _row(spec: RunSpec, o: JobOutcome, split: str) -> RunRow:
    gates = o.gates[split]
    m = o.metrics[split]

    def opt(key: str) -> float | None:
        v = m.get(key)
        return None if v is None else float(v)

    return RunRow(
        strength=spec.strength,
        market_seed=spec.market_seed,
        training_seed=spec.training_seed,
        run_dir=o.run_dir,
        checkpoint=o.checkpoint,
        status=o.status,
        gates={g["metric"]: bool(g["passed"]) for g in gates["gates"]},
        gate_values={g["metric"]: g["value"] for g in gates["gates"]},
        passed=bool(gates["passed"]),
        mean_daily_pnl=opt("mean_daily_pnl"),
        daily_sharpe=opt("daily_sharpe"),
        sharpe=opt("sharpe"),
        seconds=o.seconds,
        cpu_seconds=o.cpu_seconds,
        arm=spec.arm,
        code=_run_code(Path(o.run_dir)),
    )


def _run_code(run_dir: Path) -> str:
    """``<commit>`` or ``<commit>+uncommitted`` from a run's manifest ("" when unknown)."""
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return ""
    commit = str(manifest.get("git_commit") or "")[:10]
    return f"{commit}+uncommitted" if commit and manifest.get("git_dirty") else commit


def code_versions(rows: Sequence[RunRow]) -> dict[str, int]:
    """Runs per code version (a resumed study can mix versions: the report says so)."""
    out: dict[str, int] = {}
    for r in rows:
        code = r.code or _run_code(Path(r.run_dir)) or "unknown"
        out[code] = out.get(code, 0) + 1
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(defined)) if defined else None


def _gate_order(gates: dict[str, bool]) -> list[str]:
    """Gate names in the verdict's order (stored results may hold them in another order)."""
    from stairways.evaluation import gates as g

    order = [
        g.SHARPE,
        g.EPISODE_REWARD,
        g.EPISODE_LENGTH,
        g.SIGNIFICANCE,
        g.EXCESS,
        g.EARNED,
        g.DISAGREEMENT,
    ]
    return sorted(gates, key=lambda n: (order.index(n) if n in order else len(order), n))


def summarise(
    rows: Sequence[RunRow],
    markets: Sequence[MarketReference],
    strengths: Sequence[float],
    arms: Sequence[NullArm] = (),
) -> tuple[list[str], list[StrengthSummary]]:
    """Gate names (in gate order) and one summary per strength (default arm), with every
    other arm's summary at strength 0 right after the default arm's."""
    names = _gate_order(rows[0].gates) if rows else []
    groups: list[tuple[str, float, set[int] | None]] = []
    for s in strengths:
        groups.append((DEFAULT_ARM, s, None))
        if s == 0.0:
            groups.extend((a.name, 0.0, set(a.market_seeds)) for a in arms)
    out = []
    for arm, s, seeds in groups:
        group = [r for r in rows if r.strength == s and r.arm == arm]
        mk = [m for m in markets if m.strength == s and (seeds is None or m.market_seed in seeds)]
        base = [p for m in mk for p in m.baselines_passed.values()]
        out.append(
            StrengthSummary(
                strength=s,
                runs=len(group),
                gate_rates={g: wilson(sum(r.gates[g] for r in group), len(group)) for g in names},
                verdict=wilson(sum(r.passed for r in group), len(group)),
                agent_mean_daily_pnl=_mean([r.mean_daily_pnl for r in group]),
                agent_daily_sharpe=_mean([r.daily_sharpe for r in group]),
                rule_mean_daily_pnl=float(np.mean([m.rule["mean_daily_pnl"] for m in mk]))
                if mk
                else 0.0,
                rule_daily_sharpe=_mean([_float(m.rule["daily_sharpe"]) for m in mk]),
                rule_significant=wilson(sum(m.rule_significant for m in mk), len(mk)),
                baselines_passed=wilson(sum(base), len(base)),
                arm=arm,
            )
        )
    return names, out


def _float(v: float | int | None) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class RunSpec:
    """One run of the study: arm, strength, market and training seed, and its folder name."""

    arm: str
    strength: float
    market_seed: int
    training_seed: int

    @property
    def key(self) -> str:
        """``strength0_seed101_train0`` (default arm) or ``strength0_seed101_phase2_oos_train0``."""
        arm = "" if self.arm == DEFAULT_ARM else f"_{self.arm}"
        return f"{market_name(self.strength, self.market_seed)}{arm}_train{self.training_seed}"


def study_grid(p: PowerConfig) -> tuple[list[tuple[float, int]], list[RunSpec]]:
    """Markets and runs of a study, in the order they run: the no-signal markets and the
    default arm's no-signal runs first (the false-positive rate is the study's point), then the
    other arms, then the other strengths, weakest first."""
    markets = [(0.0, m) for m in p.null_market_seeds]
    markets += [(s, m) for s in sorted(p.strengths) if s != 0.0 for m in p.market_seeds]
    runs = [
        RunSpec(DEFAULT_ARM, 0.0, m, t) for m in p.null_market_seeds for t in p.null_training_seeds
    ]
    runs += [
        RunSpec(a.name, 0.0, m, t)
        for a in p.null_arms
        for m in a.market_seeds
        for t in a.training_seeds
    ]
    runs += [
        RunSpec(DEFAULT_ARM, s, m, t)
        for s in sorted(p.strengths)
        if s != 0.0
        for m in p.market_seeds
        for t in p.training_seeds
    ]
    return markets, runs


# ----- resumable state ---------------------------------------------------------------------------

STUDY_FILE = "study.json"
RESULTS = "results"


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def open_study(out: Path, identity: dict[str, Any], *, read_only: bool = False) -> None:
    """Start a study in ``out`` or resume the one there; refuse a folder holding anything else.

    ``identity`` is everything that decides the results (the study grid, every run's config);
    a resumed study must have the same values. A key the record lacks (a setting added to the
    code since the study started) is accepted with a warning.
    """
    study = out / STUDY_FILE
    if study.exists():
        try:
            held = json.loads(study.read_text())["identity"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(f"{study} is not a readable power study record ({err})") from None
        a, b = _flatten(held), _flatten(identity)
        differ = sorted(k for k in a if a.get(k) != b.get(k))
        if differ:
            shown = ", ".join(differ[:8]) + (
                f" and {len(differ) - 8} more" if len(differ) > 8 else ""
            )
            raise InputError(
                f"{out} holds a power study of another configuration (differs in {shown}); "
                "resume it with the config and options it was started with, or choose another "
                "--out"
            )
        added = sorted(set(b) - set(a))
        if added:
            # A setting the code gained since the study started: its default must keep the
            # old behaviour (that is what adding a setting means here), so the study goes on.
            log.warning(
                "power study in %s: settings new since it started, at their current values: %s",
                out,
                ", ".join(added),
            )
        if not read_only:
            log.info("power study: resuming the study in %s", out)
        return
    if out.exists() and any(out.iterdir()):
        what = (
            "a finished power study without its record"
            if (out / "power.json").exists()
            else "other files"
        )
        raise InputError(
            f"{out} already holds {what} and no {STUDY_FILE}; choose another --out (a power "
            "study resumes only in the folder it started in)"
        )
    out.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(study, {"identity": identity})


def _load_results(folder: Path, kind: type[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            out[path.stem] = kind(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as err:
            raise InputError(
                f"{path} is not a readable power-study result ({err}); delete it to run that "
                "part again"
            ) from None
    return out


def _elapsed(out: Path) -> float:
    path = out / RESULTS / "elapsed.json"
    if not path.exists():
        return 0.0
    try:
        return float(json.loads(path.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"{path} is not readable ({err}); delete it to restart the clock"
        ) from None


def _progress_report(
    cfg: StairwaysConfig,
    p: PowerConfig,
    out: Path,
    identity: dict[str, Any],
    market_grid: Sequence[tuple[float, int]],
    specs: Sequence[RunSpec],
) -> PowerReport:
    """The report of the finished part of a study, read without writing anything."""
    open_study(out, identity, read_only=True)  # the record exists: it checks, writes nothing
    done_markets = _load_results(out / RESULTS / "markets", MarketReference)
    done_runs = _load_results(out / RESULTS / "runs", RunRow)
    markets = [
        done_markets[market_name(s, m)] for s, m in market_grid if market_name(s, m) in done_markets
    ]
    rows = [done_runs[spec.key] for spec in specs if spec.key in done_runs]
    names, summaries = summarise(rows, markets, p.strengths, p.null_arms)
    return PowerReport(
        out_dir=out,
        settings=p,
        markets=markets,
        rows=rows,
        summaries=summaries,
        gate_names=names,
        seconds=_elapsed(out),
        market_strength=cfg.data.synthetic.signal_strength,
        planned_runs=len(specs),
    )


def run_power_study(
    cfg: StairwaysConfig,
    *,
    settings: PowerConfig | None = None,
    out_dir: Path | None = None,
    workers: int | None = None,
    backend: TaskBackend | None = None,
    rule_only: bool = False,
    progress: bool = False,
) -> PowerReport:
    """Generate the markets, train and evaluate every run, and write the tables.

    The study is resumable: every market's and run's result is stored under
    ``<out>/results/`` as soon as it is done, and running the same study again with the same
    ``out_dir`` skips what is done (a study of another configuration there is refused).

    :param cfg: the base config (market, env, reward, training hyperparameters, gates, splits)
    :param settings: the study grid (default ``cfg.evaluation.power``)
    :param out_dir: output folder (default ``<training.runs_dir>/power_<config>_<UTC>``)
    :param workers: cap on local worker processes
    :param backend: run markets and runs as tasks on this backend (Ray) instead
    :param rule_only: only generate the markets and measure the reference rule and the
        baselines (a calibration of the strengths; no agent is trained, no pass rate given)
    :param progress: run nothing and write nothing: the report of what the study in
        ``out_dir`` has finished so far (it may be running in another process)
    """
    p = settings or cfg.evaluation.power
    started = time.perf_counter()
    base = _study_config(cfg, p.split)
    arms = {a.name: arm_config(base, a) for a in p.null_arms}
    out = (out_dir or default_out_dir(cfg.training.runs_dir, "power", cfg.name)).resolve()
    market_grid, specs = study_grid(p)
    identity = {
        # what decides the results; the goal and its confidence only read them
        "settings": {
            k: v
            for k, v in p.model_dump(mode="json").items()
            if k not in ("null_arms", "max_false_positive_rate", "false_positive_confidence")
        },
        "null_arms": {
            a.name: {
                "market_seeds": list(a.market_seeds),
                "training_seeds": list(a.training_seeds),
                "config": arms[a.name],
            }
            for a in p.null_arms
        },
        "config": base,
    }
    if progress:
        if out_dir is None or not (out / STUDY_FILE).is_file():
            raise InputError(f"--progress needs the --out folder of a power study ({out} is not)")
        return _progress_report(cfg, p, out, identity, market_grid, specs)
    open_study(out, identity)
    before = _elapsed(out)

    def tick() -> None:
        _write_json_atomic(
            out / RESULTS / "elapsed.json", {"seconds": before + time.perf_counter() - started}
        )

    tasks = [
        MarketTask(
            strength=s,
            market_seed=m,
            store=str(out / "markets" / f"{market_name(s, m)}.duckdb"),
            config=_with(
                base,
                "data",
                synthetic={**base["data"]["synthetic"], "seed": m, "signal_strength": s},
            ),
            split=p.split,
            entry_costs=p.rule_entry_costs,
        )
        for s, m in market_grid
    ]
    market_dir = out / RESULTS / "markets"
    done_markets: dict[str, MarketReference] = {
        k: v
        for k, v in _load_results(market_dir, MarketReference).items()
        if Path(v.store).exists()
    }
    todo = [t for t in tasks if market_name(t.strength, t.market_seed) not in done_markets]

    def market_done(m: MarketReference) -> None:
        name = market_name(m.strength, m.market_seed)
        _write_json_atomic(market_dir / f"{name}.json", asdict(m))
        done_markets[name] = m
        tick()

    log.info(
        "power study: %d markets (%d done before) in %s", len(tasks), len(tasks) - len(todo), out
    )
    map_tasks(prepare_market, todo, workers, backend, on_result=market_done)
    markets = [done_markets[market_name(t.strength, t.market_seed)] for t in tasks]
    rows: list[RunRow] = []
    if not rule_only:
        run_dir = out / RESULTS / "runs"
        done_runs: dict[str, RunRow] = _load_results(run_dir, RunRow)
        by_key = {spec.key: spec for spec in specs}
        jobs = []
        for spec in specs:
            if spec.key in done_runs:
                continue
            folder = out / "runs" / spec.key
            if folder.exists():
                # What an interrupted attempt left: its result was never stored, so it restarts.
                log.warning("power study: removing the unfinished run folder %s", folder)
                shutil.rmtree(folder)
            config = arms[spec.arm] if spec.arm != DEFAULT_ARM else base
            store = str(out / "markets" / f"{market_name(spec.strength, spec.market_seed)}.duckdb")
            market = next(t for t in tasks if t.store == store)
            data = _with(config, "data", **{**market.config["data"], "store_path": store})
            data = _with(
                data,
                "training",
                seed=spec.training_seed,
                total_timesteps=p.total_timesteps,
                runs_dir=str(folder),
            )
            jobs.append(Job(key=spec.key, config=data, splits=(p.split,)))

        def run_done(o: JobOutcome) -> None:
            row = _row(by_key[o.key], o, p.split)
            _write_json_atomic(run_dir / f"{o.key}.json", asdict(row))
            done_runs[o.key] = row
            tick()

        log.info(
            "power study: %d training runs of %d timesteps (%d done before)",
            len(specs),
            p.total_timesteps,
            len(specs) - len(jobs),
        )
        if jobs:
            pool = run_jobs(jobs, workers, backend, on_outcome=run_done)
            if pool.failures:
                lines = "; ".join(f"{f.key}: {f.error}" for f in pool.failures)
                raise StairwaysError(
                    f"power study in {out}: {len(pool.failures)} runs failed: {lines} (the "
                    "finished runs are kept; run the same command again to retry the others)"
                )
        rows = [done_runs[spec.key] for spec in specs]
    tick()
    names, summaries = summarise(rows, markets, p.strengths, p.null_arms if not rule_only else ())
    report = PowerReport(
        out_dir=out,
        settings=p,
        markets=markets,
        rows=rows,
        summaries=summaries,
        gate_names=names,
        seconds=_elapsed(out),
        market_strength=cfg.data.synthetic.signal_strength,
        planned_runs=0 if rule_only else len(specs),
    )
    files = write_power_outputs(report, cfg.name, rule_only=rule_only)
    log.info("power study finished in %.0f s: %s", report.seconds, files["markdown"])
    return PowerReport(**{**report.__dict__, "files": files})


# ----- outputs -----------------------------------------------------------------------------------


def _cell(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def markdown_table(report: PowerReport) -> str:
    """The per-strength table as Markdown (what the README quotes)."""
    names = report.gate_names
    header = [
        "signal strength",
        "training config",
        "runs",
        "all gates pass",
        *names,
        "agent $/day",
        "agent daily Sharpe",
        "rule $/day",
        "rule daily Sharpe",
        "rule significant",
        "baselines pass",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in report.summaries:
        cells = [
            f"{s.strength:g}",
            s.arm,
            str(s.runs),
            s.verdict.text(),
            *(f"{s.gate_rates[g].k}/{s.gate_rates[g].n}" for g in names),
            _cell(s.agent_mean_daily_pnl, "+.2f"),
            _cell(s.agent_daily_sharpe, ".2f"),
            f"{s.rule_mean_daily_pnl:+.2f}",
            _cell(s.rule_daily_sharpe, ".2f"),
            f"{s.rule_significant.k}/{s.rule_significant.n}",
            f"{s.baselines_passed.k}/{s.baselines_passed.n}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_lines(report: PowerReport) -> list[str]:
    """One line per arm: the false-positive count, its exact upper bound, SHOWN or not."""
    return [f"False-positive rate, {f.text()}." for f in report.false_positives]


def calibration_text(report: PowerReport) -> str:
    """What the strengths mean (the rule's daily Sharpe) and what the pipeline finds."""
    p = report.settings
    planted = [s for s in report.summaries if s.arm == DEFAULT_ARM and s.strength > 0.0]
    if not planted:
        return ""
    rule = ", ".join(
        f"{s.rule_daily_sharpe:.1f} at strength {s.strength:g}"
        for s in planted
        if s.rule_daily_sharpe is not None
    )
    parts = [
        f"Calibration: the rule that knows the planted signal earns a daily Sharpe ratio of {rule}."
    ]
    default = report.market_strength
    at_default = next((s for s in planted if s.strength == default), None)
    if default is not None and at_default is not None and at_default.rule_daily_sharpe is not None:
        parts.append(
            f"The default synthetic market plants strength {default:g} (rule daily Sharpe "
            f"{at_default.rule_daily_sharpe:.1f}): far stronger than a real lead-lag edge after "
            "costs is likely to be, so it shows that the pipeline works, not what it can find."
        )
    trained = [s for s in planted if s.runs]
    found = next((s for s in trained if s.verdict.rate >= POWER_TARGET), None)
    if found is not None:
        weaker = [s for s in trained if s.strength < found.strength]
        missed = "; ".join(f"strength {s.strength:g}: {s.verdict.k}/{s.verdict.n}" for s in weaker)
        sharpe = "n/a" if found.rule_daily_sharpe is None else f"{found.rule_daily_sharpe:.1f}"
        parts.append(
            f"At {p.total_timesteps:,} timesteps per run, expect the pipeline to find a signal of "
            f"strength {found.strength:g} or stronger (rule daily Sharpe {sharpe}; "
            f"{found.verdict.k}/{found.verdict.n} runs pass every gate)"
            + (f"; weaker ones it mostly misses ({missed})." if missed else ".")
        )
    elif trained:
        parts.append(
            f"At {p.total_timesteps:,} timesteps per run, no planted strength passes every gate in "
            f"{POWER_TARGET:.0%} of runs."
        )
    return " ".join(parts)


def _grid_text(report: PowerReport) -> str:
    p = report.settings
    text = (
        f"Strength 0: {len(p.null_market_seeds)} no-signal markets x "
        f"{len(p.null_training_seeds)} training seeds of the default config"
    )
    for a in p.null_arms:
        text += f", {len(a.market_seeds)} x {len(a.training_seeds)} of {a.name} ({a.config.name})"
    return (
        text + f"; every other strength: {len(p.market_seeds)} markets x "
        f"{len(p.training_seeds)} training seeds. {p.total_timesteps:,} training timesteps per "
        f"run, judged on the {p.split!r} split"
    )


def markdown_report(report: PowerReport, config_name: str, *, rule_only: bool = False) -> str:
    """The whole Markdown page: verdict first, then the table and how it was made."""
    headline = (
        [
            "Calibration only (--rule-only): the reference rule and the baselines on every "
            "market; no agent was trained."
        ]
        if rule_only
        else verdict_lines(report)
    )
    calibration = calibration_text(report)
    versions = code_versions(report.rows)
    code = "; ".join(f"{c}: {n} runs" for c, n in versions.items())
    if len(versions) > 1:
        shown = "; ".join(f"{c}: {n} runs" for c, n in list(versions.items())[:5])
        more = f" and {len(versions) - 5} more" if len(versions) > 5 else ""
        code = (
            f"Note: the runs started from {len(versions)} checkout states (git commit and "
            f"uncommitted changes: {shown}{more}). A worker process keeps the code it imported "
            "when it started, so the runs of one invocation share their code; a study resumed "
            "after a code change mixes versions, and training repeats bit for bit only with "
            "the same code."
        )
    elif versions:
        code = f"Code: {code}."
    return "\n".join(
        [
            f"# Power study: {config_name}",
            "",
            *(line + "\n" for line in headline),
            markdown_table(report),
            "",
            *([calibration, ""] if calibration else []),
            f"{_grid_text(report)}. Gate columns count the "
            "runs passing that gate. The rule knows the planted signal (see "
            'stairways.evaluation.power); "rule significant" counts markets where its money '
            "passes the significance and excess gates; baselines are flat and buy-and-hold of "
            "each ticker (counted per market and baseline, passing all gates). Intervals in the "
            "table are Wilson 95 %; the false-positive bound is the exact (Clopper-Pearson) "
            "one-sided bound. "
            f"Study time {report.seconds / 60:.1f} min wall clock, "
            f"{report.cpu_seconds / 60:.1f} min of CPU in the workers.",
            "",
            *([code, ""] if code else []),
        ]
    )


README_BEGIN = "<!-- power-table:begin"
README_END = "<!-- power-table:end -->"


def readme_block(report: PowerReport) -> str:
    """What the README shows between its power-table markers: the verdict lines, the table and
    the calibration (every figure from the study)."""
    calibration = calibration_text(report)
    return "\n".join(
        [
            *(line + "\n" for line in verdict_lines(report)),
            markdown_table(report),
            "",
            *([calibration, ""] if calibration else []),
            f"{_grid_text(report)}; generated by `stairways validate power --config "
            f"config/power.yaml --readme README.md` in {report.seconds / 60:.0f} min "
            f"({report.cpu_seconds / 60:.0f} CPU-minutes).",
        ]
    )


def write_readme_block(readme: Path, report: PowerReport) -> Path:
    """Replace the block between the README's power-table markers with :func:`readme_block`."""
    try:
        text = readme.read_text()
    except OSError as err:
        raise InputError(f"cannot read {readme}: {err}") from None
    start = text.find(README_BEGIN)
    end = text.find(README_END)
    if start < 0 or end < start or text.count(README_BEGIN) != 1:
        raise InputError(
            f"{readme} needs exactly one '{README_BEGIN} ... -->' line followed by a "
            f"'{README_END}' line to take the power table"
        )
    head_end = text.index("\n", start) + 1
    readme.write_text(text[:head_end] + readme_block(report) + "\n" + text[end:])
    return readme


def write_power_outputs(
    report: PowerReport, config_name: str, *, rule_only: bool = False
) -> dict[str, Path]:
    """Write power_runs.csv, power_summary.csv, power.md and power.json."""
    out = report.out_dir
    names = report.gate_names
    runs_csv = out / "power_runs.csv"
    with runs_csv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "strength",
                "training_config",
                "market_seed",
                "training_seed",
                *names,
                "all_gates",
                "mean_daily_pnl",
                "daily_sharpe",
                "sharpe_30min",
                "status",
                "seconds",
                "cpu_seconds",
                "run_dir",
            ]
        )
        for r in report.rows:
            w.writerow(
                [
                    r.strength,
                    r.arm,
                    r.market_seed,
                    r.training_seed,
                    *(int(r.gates[g]) for g in names),
                    int(r.passed),
                    "" if r.mean_daily_pnl is None else repr(r.mean_daily_pnl),
                    "" if r.daily_sharpe is None else repr(r.daily_sharpe),
                    "" if r.sharpe is None else repr(r.sharpe),
                    r.status,
                    f"{r.seconds:.1f}",
                    f"{r.cpu_seconds:.1f}",
                    r.run_dir,
                ]
            )
    summary_csv = out / "power_summary.csv"
    with summary_csv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "strength",
                "training_config",
                "runs",
                "all_gates_rate",
                "all_gates_low",
                "all_gates_high",
                *(f"{g}_rate" for g in names),
                "agent_mean_daily_pnl",
                "agent_daily_sharpe",
                "rule_mean_daily_pnl",
                "rule_daily_sharpe",
                "rule_significant_rate",
                "baselines_pass_rate",
            ]
        )
        for s in report.summaries:
            w.writerow(
                [
                    s.strength,
                    s.arm,
                    s.runs,
                    s.verdict.rate,
                    s.verdict.low,
                    s.verdict.high,
                    *(s.gate_rates[g].rate for g in names),
                    "" if s.agent_mean_daily_pnl is None else s.agent_mean_daily_pnl,
                    "" if s.agent_daily_sharpe is None else s.agent_daily_sharpe,
                    s.rule_mean_daily_pnl,
                    "" if s.rule_daily_sharpe is None else s.rule_daily_sharpe,
                    s.rule_significant.rate,
                    s.baselines_passed.rate,
                ]
            )
    md = out / "power.md"
    md.write_text(markdown_report(report, config_name, rule_only=rule_only))
    js = out / "power.json"
    js.write_text(
        json.dumps(
            {
                "config": config_name,
                "settings": report.settings.model_dump(mode="json"),
                "rule_only": rule_only,
                "passed": None if rule_only else report.passed,
                "false_positive_goal_shown": None if rule_only else report.shown,
                "false_positive": asdict(report.false_positive),
                "false_positives": [
                    {**asdict(f), "state": f.state} for f in report.false_positives
                ],
                "calibration": calibration_text(report),
                "seconds": report.seconds,
                "cpu_seconds": report.cpu_seconds,
                "market_strength": report.market_strength,
                "code_versions": code_versions(report.rows),
                "planned_runs": report.planned_runs,
                "summaries": [asdict(s) for s in report.summaries],
                "markets": [asdict(m) for m in report.markets],
                "runs": [asdict(r) for r in report.rows],
            },
            indent=2,
        )
        + "\n"
    )
    return {"runs": runs_csv, "summary": summary_csv, "markdown": md, "json": js}


def report_from_json(text: str, source: str) -> PowerReport:
    """A finished study's report from its ``power.json`` (or a record copied from it).

    The summaries are recomputed from the stored markets and runs, so the README block rendered
    from a record is the block the study wrote.
    """
    from stairways.configbase import validate_model

    try:
        data = json.loads(text)
        settings = validate_model(PowerConfig, data["settings"], f"{source}: settings")
        markets = [MarketReference(**m) for m in data["markets"]]
        rows = [RunRow(**r) for r in data["runs"]]
        seconds = float(data["seconds"])
        strength = data.get("market_strength")
        planned = int(data.get("planned_runs", len(rows)))
        rule_only = bool(data["rule_only"])
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"{source} is not a power study record (power.json): {err}") from None
    if rule_only:
        raise InputError(f"{source} records a --rule-only calibration, not a power study")
    names, summaries = summarise(rows, markets, settings.strengths, settings.null_arms)
    return PowerReport(
        out_dir=Path(source).parent,
        settings=settings,
        markets=markets,
        rows=rows,
        summaries=summaries,
        gate_names=names,
        seconds=seconds,
        market_strength=None if strength is None else float(strength),
        planned_runs=planned,
    )


def readme_block_in(text: str) -> str:
    """What a README holds between its power-table markers (empty when nothing is there)."""
    start = text.find(README_BEGIN)
    end = text.find(README_END)
    if start < 0 or end < start:
        return ""
    return text[text.index("\n", start) + 1 : end]
