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
from stairways.evaluation.settings import PowerConfig

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
    if store_path.exists():
        store_path.unlink()  # a store left by an interrupted attempt is rebuilt, never reused
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


@dataclass(frozen=True)
class StrengthSummary:
    """Pass rates and average figures of every run of one strength."""

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


@dataclass(frozen=True)
class PowerReport:
    """A finished study: rows, summaries, the false-positive verdict and the output files."""

    out_dir: Path
    settings: PowerConfig
    markets: list[MarketReference]
    rows: list[RunRow]
    summaries: list[StrengthSummary]
    gate_names: list[str]
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def cpu_seconds(self) -> float:
        """CPU time of every market and run (the study's cost on an otherwise idle machine)."""
        return sum(m.cpu_seconds for m in self.markets) + sum(r.cpu_seconds for r in self.rows)

    @property
    def false_positive(self) -> Rate:
        """Pass rate of the full verdict at strength 0."""
        return next(s.verdict for s in self.summaries if s.strength == 0.0)

    @property
    def passed(self) -> bool:
        """Whether the false-positive rate is within ``max_false_positive_rate``."""
        return self.false_positive.rate <= self.settings.max_false_positive_rate


def quick_settings(p: PowerConfig) -> PowerConfig:
    """A smoke-sized study: strength 0 and the strongest, one market, one seed, 2,000 steps."""
    return p.model_copy(
        update={
            "strengths": (0.0, max(p.strengths)) if max(p.strengths) > 0 else (0.0,),
            "market_seeds": p.market_seeds[:1],
            "training_seeds": p.training_seeds[:1],
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


def _with(data: dict[str, Any], section: str, **values: Any) -> dict[str, Any]:
    out = dict(data)
    out[section] = {**data[section], **values}
    return out


def _row(task_key: tuple[float, int, int], o: JobOutcome, split: str) -> RunRow:
    strength, market_seed, seed = task_key
    gates = o.gates[split]
    m = o.metrics[split]

    def opt(key: str) -> float | None:
        v = m.get(key)
        return None if v is None else float(v)

    return RunRow(
        strength=strength,
        market_seed=market_seed,
        training_seed=seed,
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
    )


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(defined)) if defined else None


def summarise(
    rows: Sequence[RunRow], markets: Sequence[MarketReference], strengths: Sequence[float]
) -> tuple[list[str], list[StrengthSummary]]:
    """Gate names (in gate order) and one summary per strength."""
    names = list(rows[0].gates) if rows else []
    out = []
    for s in strengths:
        group = [r for r in rows if r.strength == s]
        mk = [m for m in markets if m.strength == s]
        base = [p for m in mk for p in m.baselines_passed.values()]
        out.append(
            StrengthSummary(
                strength=s,
                runs=len(group),
                gate_rates={g: wilson(sum(r.gates[g] for r in group), len(group)) for g in names},
                verdict=wilson(sum(r.passed for r in group), len(group)),
                agent_mean_daily_pnl=_mean([r.mean_daily_pnl for r in group]),
                agent_daily_sharpe=_mean([r.daily_sharpe for r in group]),
                rule_mean_daily_pnl=float(np.mean([m.rule["mean_daily_pnl"] for m in mk])),
                rule_daily_sharpe=_mean([_float(m.rule["daily_sharpe"]) for m in mk]),
                rule_significant=wilson(sum(m.rule_significant for m in mk), len(mk)),
                baselines_passed=wilson(sum(base), len(base)),
            )
        )
    return names, out


def _float(v: float | int | None) -> float | None:
    return None if v is None else float(v)


def run_power_study(
    cfg: StairwaysConfig,
    *,
    settings: PowerConfig | None = None,
    out_dir: Path | None = None,
    workers: int | None = None,
    backend: TaskBackend | None = None,
    rule_only: bool = False,
) -> PowerReport:
    """Generate the markets, train and evaluate every run, and write the tables.

    :param cfg: the base config (market, env, reward, training hyperparameters, gates, splits)
    :param settings: the study grid (default ``cfg.evaluation.power``)
    :param out_dir: output folder (default ``<training.runs_dir>/power_<config>_<UTC>``)
    :param workers: cap on local worker processes
    :param backend: run markets and runs as tasks on this backend (Ray) instead
    :param rule_only: only generate the markets and measure the reference rule and the
        baselines (a calibration of the strengths; no agent is trained, no pass rate given)
    """
    p = settings or cfg.evaluation.power
    started = time.perf_counter()
    base = _study_config(cfg, p.split)
    out = out_dir or default_out_dir(cfg.training.runs_dir, "power", cfg.name)
    if (out / "power.json").exists():
        raise InputError(f"{out} already holds a power study (power.json); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    grid = [(s, m) for s in p.strengths for m in p.market_seeds]
    tasks = [
        MarketTask(
            strength=s,
            market_seed=m,
            store=str((out / "markets" / f"{market_name(s, m)}.duckdb").resolve()),
            config=_with(
                base,
                "data",
                synthetic={**base["data"]["synthetic"], "seed": m, "signal_strength": s},
            ),
            split=p.split,
            entry_costs=p.rule_entry_costs,
        )
        for s, m in grid
    ]
    log.info("power study: generating %d markets in %s", len(tasks), out)
    markets: list[MarketReference] = map_tasks(prepare_market, tasks, workers, backend)
    jobs = []
    keys: dict[str, tuple[float, int, int]] = {}
    for task in tasks:
        for seed in p.training_seeds:
            name = f"{market_name(task.strength, task.market_seed)}_train{seed}"
            data = _with(task.config, "data", store_path=task.store)
            data = _with(
                data,
                "training",
                seed=seed,
                total_timesteps=p.total_timesteps,
                runs_dir=str((out / "runs" / name).resolve()),
            )
            jobs.append(Job(key=name, config=data, splits=(p.split,)))
            keys[name] = (task.strength, task.market_seed, seed)
    rows: list[RunRow] = []
    if not rule_only:
        log.info("power study: %d training runs of %d timesteps", len(jobs), p.total_timesteps)
        pool = run_jobs(jobs, workers, backend)
        if pool.failures:
            lines = "; ".join(f"{f.key}: {f.error}" for f in pool.failures)
            raise StairwaysError(f"power study in {out}: {len(pool.failures)} runs failed: {lines}")
        rows = [_row(keys[o.key], o, p.split) for o in pool.outcomes]
    names, summaries = summarise(rows, markets, p.strengths)
    report = PowerReport(
        out_dir=out,
        settings=p,
        markets=markets,
        rows=rows,
        summaries=summaries,
        gate_names=names,
        seconds=time.perf_counter() - started,
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


def markdown_report(report: PowerReport, config_name: str, *, rule_only: bool = False) -> str:
    """The whole Markdown page: verdict first, then the table and how it was made."""
    p = report.settings
    fp = report.false_positive
    word = "PASS" if report.passed else "FAIL"
    headline = (
        "Calibration only (--rule-only): the reference rule and the baselines on every market; "
        "no agent was trained."
        if rule_only
        else f"False-positive rate (all gates pass at signal strength 0): {fp.text()}; goal at "
        f"most {p.max_false_positive_rate:.0%}: {word}."
    )
    return "\n".join(
        [
            f"# Power study: {config_name}",
            "",
            headline,
            "",
            markdown_table(report),
            "",
            f"Each strength: {len(p.market_seeds)} synthetic markets (seeds "
            f"{', '.join(str(m) for m in p.market_seeds)}) x {len(p.training_seeds)} training "
            f"seeds ({', '.join(str(t) for t in p.training_seeds)}), {p.total_timesteps:,} "
            f"training timesteps per run, judged on the {p.split!r} split. Gate columns count the "
            "runs passing that gate. The rule knows the planted signal (see "
            'stairways.evaluation.power); "rule significant" counts markets where its money '
            "passes the significance and excess gates; baselines are flat and buy-and-hold of "
            "each ticker (counted per market and baseline, passing all gates). Intervals are "
            "Wilson 95 %. "
            f"Study time {report.seconds / 60:.1f} min wall clock, "
            f"{report.cpu_seconds / 60:.1f} min of CPU in the workers.",
            "",
        ]
    )


README_BEGIN = "<!-- power-table:begin"
README_END = "<!-- power-table:end -->"


def readme_block(report: PowerReport) -> str:
    """What the README shows between its power-table markers: the verdict line and the table."""
    p = report.settings
    fp = report.false_positive
    return "\n".join(
        [
            f"False-positive rate (every default gate passes with no signal): {fp.text()}; goal "
            f"at most {p.max_false_positive_rate:.0%}.",
            "",
            markdown_table(report),
            "",
            f"{len(p.market_seeds)} synthetic markets x {len(p.training_seeds)} training seeds "
            f"per strength, {p.total_timesteps:,} timesteps per run, judged on {p.split!r}; "
            f"generated by `stairways validate power` in {report.seconds / 60:.0f} min "
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
                "false_positive": asdict(report.false_positive),
                "seconds": report.seconds,
                "cpu_seconds": report.cpu_seconds,
                "summaries": [asdict(s) for s in report.summaries],
                "markets": [asdict(m) for m in report.markets],
                "runs": [asdict(r) for r in report.rows],
            },
            indent=2,
        )
        + "\n"
    )
    return {"runs": runs_csv, "summary": summary_csv, "markdown": md, "json": js}
