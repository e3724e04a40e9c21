"""The main job: the research pipeline end to end on the embedded (synthetic) market.

Each stage is a function that does real work through the same library calls a user would make
with the CLI, and returns the lines it wants in the summary. The summary says where every
output went and, honestly, what passed and what did not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from stairways.analysis.trace_report import TraceReport, execute_trace_notebook
from stairways.config import StairwaysConfig
from stairways.data import calendar as cal
from stairways.data.panel import SessionPanel
from stairways.data.panel_builder import build_panel, fit_normaliser
from stairways.data.quality import store_overview
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from stairways.evaluation.runner import EvaluationReport, evaluate_run
from stairways.training.rundir import RunDirectory
from stairways.training.trainer import TrainOptions, TrainResult, train

log = logging.getLogger(__name__)


@dataclass
class DemoSummary:
    """Sections of the summary, in order, each a title and its lines."""

    out_dir: Path
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def add(self, title: str, lines: list[str]) -> None:
        """Append a section and log it as it happens."""
        self.sections.append((title, lines))
        log.info("demo stage finished: %s", title)

    def to_markdown(self) -> str:
        """The summary as Markdown."""
        parts = ["# Stairways demo summary", ""]
        for title, lines in self.sections:
            parts += [f"## {title}", "", *[f"- {line}" for line in lines], ""]
        return "\n".join(parts)

    def write(self) -> Path:
        """Write ``summary.md`` into the output directory and return its path."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / "summary.md"
        path.write_text(self.to_markdown())
        return path


def _num(value: float | None) -> str:
    """A signed figure, or 'undefined' (for example a Sharpe ratio of a flat P&L)."""
    return "undefined" if value is None else f"{value:+.3f}"


def _store_covers(store: BarStore, cfg: StairwaysConfig) -> bool:
    """Whether the store holds every configured symbol over every configured split."""
    wanted_start = min(r.start for r in cfg.data.splits.values())
    wanted_end = max(r.end for r in cfg.data.splits.values())
    held = {s.symbol: s for s in store.symbols()}
    for symbol in cfg.data.symbols:
        info = held.get(symbol)
        if info is None:
            return False
        first = info.first_ts.tz_convert(cal.EXCHANGE_TZ).date()
        last = info.last_ts.tz_convert(cal.EXCHANGE_TZ).date()
        if first > wanted_start or last < wanted_end:
            return False
    return True


def market_data_stage(cfg: StairwaysConfig, summary: DemoSummary) -> None:
    """Make sure the store holds the configured market, generating the synthetic one if empty."""
    started = time.perf_counter()
    with BarStore(cfg.data.store_path) as store:
        if _store_covers(store, cfg):
            action = "reused the bars already in the store"
        else:
            bars = generate(cfg.data.synthetic, cfg.data.symbols)
            result = store.write_bars(
                bars,
                source="synthetic",
                synthetic=True,
                details=generator_details(cfg.data.synthetic),
            )
            action = (
                f"generated the synthetic market (seed {cfg.data.synthetic.seed}, signal "
                f"{cfg.data.synthetic.signal} x{cfg.data.synthetic.signal_strength:g}): "
                f"{result.rows_inserted:,} bars inserted, {result.rows_unchanged:,} unchanged"
            )
        overview = store_overview(store, cfg.data.calendar)
    lines = [f"store {cfg.data.store_path}: {action} in {time.perf_counter() - started:.1f} s"]
    for item in overview:
        info = item.info
        label = "SYNTHETIC" if info.synthetic else f"real ({info.source})"
        lines.append(
            f"{info.symbol}: {info.rows:,} bars, {info.sessions} sessions "
            f"{item.first_local.date()}..{item.last_local.date()}, "
            f"{item.completeness.complete_sessions} complete, {label}"
        )
    summary.add("Market data", lines)


def features_stage(cfg: StairwaysConfig, summary: DemoSummary) -> dict[str, SessionPanel]:
    """Fit the feature normaliser on train only and build a panel for every configured split."""
    started = time.perf_counter()
    with BarStore(cfg.data.store_path, read_only=True) as store:
        normaliser = fit_normaliser(cfg.data, store)
        panels = {name: build_panel(cfg.data, name, store, normaliser) for name in cfg.data.splits}
    norm_path = normaliser.save(summary.out_dir / "normaliser.json")
    lines = [
        f"{len(next(iter(panels.values())).feature_names)} causal features per ticker, "
        f"normalised with statistics fitted on '{cfg.data.features.normalisation_split}' only "
        f"(saved to {norm_path}), clipped at +/-{cfg.data.features.clip:g}",
    ]
    for name, panel in panels.items():
        rng = cfg.data.splits[name]
        lines.append(
            f"split {name} {rng.start}..{rng.end}: {panel.n_sessions} sessions, "
            f"{int(panel.lengths.sum()):,} steps, {len(panel.excluded_sessions)} excluded, "
            f"fingerprint {panel.fingerprint}"
        )
    lines.append(f"built in {time.perf_counter() - started:.1f} s")
    summary.add("Features and splits", lines)
    return panels


def training_stage(cfg: StairwaysConfig, summary: DemoSummary, command: list[str]) -> TrainResult:
    """Train one PPO run on the train split (the config's budget) under ``training.runs_dir``."""
    started = time.perf_counter()
    result = train(cfg, TrainOptions(command=command, progress=False))
    first = result.first_rolling_reward
    last = result.rolling_reward
    trend = (
        f"rolling episode reward {first:.3f} at the start -> {last:.3f} at the end"
        if first is not None and last is not None
        else "too few episodes for a rolling reward"
    )
    lines = [
        f"run directory {result.run_dir} (config.yaml, manifest.json, monitor.csv, "
        "checkpoints/, tensorboard/)",
        f"status {result.status}"
        + (f" ({result.stop_reason})" if result.stop_reason else "")
        + f": {result.timesteps:,} timesteps, {result.episodes} episodes, "
        f"{result.steps_per_second:,.0f} steps/s, {time.perf_counter() - started:.0f} s",
        trend,
    ]
    summary.add("Training", lines)
    return result


def verdict_checkpoint(result: TrainResult) -> tuple[str, str]:
    """The checkpoint a run's verdict is given on, and how to say which it is.

    A completed run has a final model; a run the speed-bump stopped has none, so its newest
    checkpoint (saved when it stopped) stands in, and the wording says so.
    """
    if result.final_model is not None:
        return "final", "the final model"
    files = RunDirectory.open(result.run_dir).latest_checkpoint()
    return str(files.model), f"the last checkpoint ({files.model.name})"


def evaluation_stage(
    result: TrainResult, summary: DemoSummary, split: str = "test"
) -> EvaluationReport:
    """Replay the run's last model on the held-out split against the gates and baselines.

    A completed run is evaluated on its final model; a run the speed-bump stopped has none, so
    its newest checkpoint (saved when it stopped) is evaluated, and the summary says so.
    """
    checkpoint, which = verdict_checkpoint(result)
    report = evaluate_run(result.run_dir, checkpoint=checkpoint, split=split)
    agent = report.agent
    lines = [
        f"out-of-sample replay of {which} on '{split}' written to {report.out_dir} "
        "(traces.parquet, metrics.json, gates.json, baselines/)",
        report.data_label,
        f"agent: mean daily net P&L ${agent.mean_daily_pnl:+,.2f}, sum of daily returns on "
        f"fixed capital {agent.sum_daily_returns:+.2%}, {agent.sharpe_text()}, "
        f"max drawdown {agent.max_drawdown:.2%} of capital at risk, "
        f"{agent.trades_per_day:.1f} trades/day, "
        f"episode reward mean {agent.episode_reward_mean:+.3f}, "
        f"mean episode length {agent.mean_episode_length:.0f} steps",
    ]
    # The verdict is on the protected test year: say how often it has been looked at.
    lines += [f"test ledger: {count.describe()}" for count in report.test_looks]
    for name, base in report.baselines.items():
        lines.append(
            f"baseline {name}: mean daily net P&L ${base.mean_daily_pnl:+,.2f}, "
            f"{base.sharpe_text()}"
        )
    for gate in report.verdict.results:
        lines.append(
            f"gate {gate.metric}: {_num(gate.value)} {gate.op} {gate.threshold:+.3f}: "
            f"{'PASS' if gate.passed else 'FAIL'}"
            + ("" if gate.informative else " (not informative: a baseline passes it too)")
        )
    lines.append(
        "verdict: "
        + ("all success gates PASSED" if report.verdict.passed else "success gates NOT passed")
    )
    summary.add("Out-of-sample evaluation", lines)
    return report


def trace_stage(run_dir: Path, summary: DemoSummary, split: str) -> TraceReport:
    """Execute the action-trace notebook on the run and write its HTML report."""
    started = time.perf_counter()
    report = execute_trace_notebook(run_dir, split=split)
    summary.add(
        "Action traces",
        [
            f"report {report.html} (executed notebook {report.notebook}, tables in "
            f"{report.tables}), split '{split}', {time.perf_counter() - started:.0f} s",
        ],
    )
    return report


def live_stage(
    result: TrainResult, report: EvaluationReport, summary: DemoSummary, *, who: str
) -> bool:
    """Register the evaluated model and rehearse one evaluated session through the live loop.

    The rehearsal replays the first session of the evaluation's split with the simulated
    broker on the controllable clock, journaled as a rehearsal, under the paper stage's limits
    loosened so that no limit binds inside the env's own rules (``config/risk/parity``); the
    loop's actions, fills and P&L are then compared with the evaluation's trace. Returns
    whether they are equal.
    """
    import secrets as secrets_mod

    from stairways.clock import ExchangeClock
    from stairways.configbase import CONFIG_DIR
    from stairways.evaluation.traces import read_run_trace
    from stairways.journal import Journal, JournalLocation, MacKey
    from stairways.live.ladder import SessionReviewer
    from stairways.live.ladder_config import load_ladder_config
    from stairways.live.model import LivePolicy
    from stairways.live.parity import compare_with_trace
    from stairways.live.registry import load_model_ref, register_model, stage_of
    from stairways.live.session import SessionPlan, rehearse
    from stairways.risk.store import SqlStateStore

    started = time.perf_counter()
    live_dir = summary.out_dir / "live"
    live_dir.mkdir(parents=True, exist_ok=True)
    key_path = live_dir / "demo-journal.key"
    if not key_path.is_file():
        # A demo-only key beside the demo's journals; a real journal's key lives in the vault.
        key_path.write_text(secrets_mod.token_hex(32))
        key_path.chmod(0o600)
    key = MacKey(bytes.fromhex(key_path.read_text().strip()))
    trace = read_run_trace(result.run_dir, report.split, report.checkpoint.name)
    day = date.fromisoformat(str(trace.frame["session_date"].iloc[0])[:10])
    at = ExchangeClock().now()
    main = JournalLocation.sqlite(live_dir / "journal.sqlite")
    with Journal.open(main, key) as journal:
        model, new = register_model(journal, result.run_dir, report.checkpoint.name, by=who, at=at)
        ref = load_model_ref(journal, model.model_id)
        stage = stage_of(journal, model.model_id)
    policy = LivePolicy(ref)
    rehearsals = JournalLocation.sqlite(live_dir / "rehearsals.sqlite")
    with Journal.open(rehearsals, key) as journal:
        states = SqlStateStore(rehearsals, journal=journal)
        try:
            done = rehearse(
                policy,
                SessionPlan(
                    day=day,
                    split=report.split,
                    operator=who,
                    risk_dir=CONFIG_DIR / "risk" / "parity",
                    state_dir=live_dir / "sim",
                ),
                journal=journal,
                store_state=states,
                location=rehearsals,
                reviewer=SessionReviewer(main, key, load_ladder_config(), ExchangeClock()),
            )
        finally:
            states.close()
    parity = compare_with_trace(
        done.steps, trace, day, tuple(policy.cfg.data.symbols), policy.cfg.market.starting_capital
    )
    s = done.summary
    lines = [
        f"registered model {model.model_id} ({'new' if new else 'already registered'}), "
        f"fingerprint {model.fingerprint[:16]}, ladder stage {stage}, in journal {main.path}",
        f"rehearsed {day} ({report.split}) through the live loop with the simulated broker on "
        f"the controllable clock: session {done.session_id}, {s.get('decisions', 0)} decisions, "
        f"{s.get('orders_sent', 0)} orders, decision latency p99 {s.get('latency_ms_p99', 0):.2f} "
        "ms; journaled as a REHEARSAL (never counts toward a ladder stage) in "
        f"{rehearsals.path}",
        *parity.lines()[:2],
        *(done.review.lines()[:2] if done.review is not None else []),
        f"lineage of an order: stairways lineage <order id> --journal {rehearsals.path}",
        f"ladder status: stairways ladder status --journal {main.path}",
        f"took {time.perf_counter() - started:.0f} s",
    ]
    summary.add("Live loop rehearsal", lines)
    return parity.equal
