"""README figures from a command: what the demo finds with the planted signal on and off.

``stairways readme-figures`` (``make readme-figures``) runs the demo's pipeline for each market
and seed: it generates the seeded synthetic market twice (the planted signal as configured, and
the same market with ``signal_strength`` 0) into stores of its own, trains the demo config with
each seed on ``train``, and gives each run its final verdict on the test year (each verdict is a
counted look in that store's test ledger, and the figures say how many there were). It writes

- ``figures.json``: every figure, per run, with the commit, budget and dates that produced it;
- ``figures.md``: the Markdown block the README quotes.

With ``--readme`` it replaces the README's block between ``<!-- readme-figures:begin -->`` and
``<!-- readme-figures:end -->`` (:func:`replace_marked_block`); with ``--record`` it copies
``figures.json`` to the committed record (``docs/readme_figures.json``) from which a test checks
that the README block is exactly what :func:`render_block` makes of it. No figure in that block
is typed by hand.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stairways.config import StairwaysConfig, load_config
from stairways.data.settings import SyntheticConfig
from stairways.data.store import BarStore
from stairways.data.synthetic import generate, generator_details
from stairways.demo import verdict_checkpoint
from stairways.errors import InputError
from stairways.evaluation.runner import evaluate_run
from stairways.training.rundir import git_state
from stairways.training.trainer import TrainOptions, train

log = logging.getLogger(__name__)

BLOCK_NAME = "readme-figures"
FIGURES_FILE = "figures.json"
BLOCK_FILE = "figures.md"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Market:
    """One synthetic market the figures are measured on.

    :param name: ``signal_on`` or ``signal_off``
    :param label: how the README names it
    :param signal: planted signal kind
    :param signal_strength: its strength (0 turns it off)
    :param store: the bar store it was generated into
    :param sessions: sessions per symbol
    :param bars: bars of all symbols
    """

    name: str
    label: str
    signal: str
    signal_strength: float
    store: str
    sessions: int
    bars: int


@dataclass(frozen=True)
class RunFigures:
    """The figures of one run's final verdict (dollars per session, Sharpe ratios, gates)."""

    market: str
    seed: int
    run_dir: str
    checkpoint: str
    status: str
    timesteps: int
    train_seconds: float
    evaluate_seconds: float
    sessions: int
    mean_daily_pnl: float
    mean_daily_pnl_lower_bound: float | None
    daily_sharpe: float | None
    daily_sharpe_low: float | None
    daily_sharpe_high: float | None
    sharpe_30min: float | None
    trades_per_day: float
    gates_passed: bool
    failed_gates: tuple[str, ...]
    test_looks: int


@dataclass(frozen=True)
class FiguresReport:
    """Everything the README block is rendered from (``figures.json``)."""

    generated: str
    git_commit: str
    config: str
    total_timesteps: int
    split: str
    split_start: str
    split_end: str
    confidence: float
    cores: int
    markets: tuple[Market, ...]
    runs: tuple[RunFigures, ...]
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "figures") -> FiguresReport:
        """Read a report written by :meth:`to_json`; a wrong shape names the file and key."""
        try:
            raw = json.loads(text)
            if raw.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"schema_version {raw.get('schema_version')!r}")
            markets = tuple(Market(**m) for m in raw.pop("markets"))
            runs = tuple(
                RunFigures(**{**r, "failed_gates": tuple(r["failed_gates"])})
                for r in raw.pop("runs")
            )
            return cls(markets=markets, runs=runs, **raw)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
            raise InputError(
                f"{where} is not a figures file written by `stairways readme-figures` "
                f"({type(err).__name__}: {err}); regenerate it"
            ) from None


def replace_marked_block(text: str, name: str, block: str, where: str = "README") -> str:
    """``text`` with the lines between ``<!-- name:begin -->`` and ``<!-- name:end -->`` replaced.

    The markers stay; a missing or repeated marker is an InputError naming ``where``.
    """
    begin, end = f"<!-- {name}:begin", f"<!-- {name}:end -->"
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(begin)]
    ends = [i for i, line in enumerate(lines) if line.startswith(end)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise InputError(
            f"{where} must hold exactly one '{begin} ... -->' line followed by one '{end}' "
            f"line (found {len(starts)} and {len(ends)}); add them where the block belongs"
        )
    body = block if block.endswith("\n") else block + "\n"
    return "".join([*lines[: starts[0] + 1], body, *lines[ends[0] :]])


def marked_block(text: str, name: str) -> str:
    """The lines between the markers of ``name`` (see :func:`replace_marked_block`)."""
    begin, end = f"<!-- {name}:begin", f"<!-- {name}:end -->"
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(begin)]
    ends = [i for i, line in enumerate(lines) if line.startswith(end)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise InputError(f"no single block {name!r} between markers")
    return "".join(lines[starts[0] + 1 : ends[0]])


def _money(value: float | None) -> str:
    if value is None:
        return "undefined"
    sign = "-" if value < 0 else "+"
    return f"{sign}${abs(value):,.2f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"


def _span(values: Sequence[float | None], fmt: Any) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "undefined"
    lo, hi = min(known), max(known)
    return fmt(lo) if lo == hi else f"{fmt(lo)} to {fmt(hi)}"


def render_block(report: FiguresReport) -> str:
    """The README block: provenance, a sentence per market, then one table row per run."""
    seeds = sorted({r.seed for r in report.runs})
    level = f"{report.confidence:.0%}"
    commit, _, dirty = report.git_commit.partition("+")
    changes = " with uncommitted changes" if dirty else ""
    lines = [
        f"Generated by `stairways readme-figures` on {report.generated[:10]} at commit "
        f"{commit[:12]}{changes} ({report.cores} cores): the `{report.config}` config, "
        f"{report.total_timesteps:,} training steps per run, seeds "
        f"{', '.join(str(s) for s in seeds)}, final verdict on the `{report.split}` split "
        f"({report.split_start}..{report.split_end}). Each market has "
        f"{report.markets[0].sessions:,} XNYS sessions and {report.markets[0].bars:,} one-minute "
        "bars (NVDA and MSFT).",
        "",
    ]
    for market in report.markets:
        runs = [r for r in report.runs if r.market == market.name]
        passed = sum(r.gates_passed for r in runs)
        lines.append(
            f"- **{market.label}** ({market.signal} x{market.signal_strength:g}): mean daily net "
            f"P&L {_span([r.mean_daily_pnl for r in runs], _money)} per session, daily Sharpe "
            f"{_span([r.daily_sharpe for r in runs], _num)}; {passed} of {len(runs)} seeds pass "
            "every gate."
        )
    lines += [
        "",
        f"| market | seed | mean daily net P&L | daily Sharpe [{level} interval] | "
        "30-min Sharpe | trades/day | gates | test looks |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    labels = {m.name: m.label for m in report.markets}
    for r in report.runs:
        interval = (
            ""
            if r.daily_sharpe_low is None or r.daily_sharpe_high is None
            else f" [{_num(r.daily_sharpe_low)}, {_num(r.daily_sharpe_high)}]"
        )
        gates = "PASS" if r.gates_passed else "FAIL: " + ", ".join(r.failed_gates)
        lines.append(
            f"| {labels[r.market]} | {r.seed} | {_money(r.mean_daily_pnl)} | "
            f"{_num(r.daily_sharpe)}{interval} | {_num(r.sharpe_30min)} | "
            f"{r.trades_per_day:.1f} | {gates} | {r.test_looks} |"
        )
    train = [r.train_seconds for r in report.runs]
    lines += [
        "",
        f"Training took {_span(train, lambda v: f'{v:.0f}')} s per run on that machine. "
        '"test looks" counts the verdicts given on that market\'s test year so far (the test '
        "ledger beside its store).",
    ]
    return "\n".join(lines) + "\n"


def _same_details(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return json.loads(json.dumps(stored, sort_keys=True)) == json.loads(
        json.dumps(wanted, sort_keys=True)
    )


def ensure_market(
    path: Path, synthetic: SyntheticConfig, symbols: Sequence[str], name: str, label: str
) -> Market:
    """The synthetic market in ``path``: generated when absent, reused when it is the same one.

    A store that holds other bars (another seed, strength or range) is an InputError: figures
    are never measured on a market other than the one they name.
    """
    wanted = generator_details(synthetic)
    if path.exists():
        with BarStore(path, read_only=True) as store:
            held = {s.symbol: s for s in store.symbols()}
        mismatched = [
            s for s in symbols if s not in held or not _same_details(held[s].details, wanted)
        ]
        if mismatched:
            raise InputError(
                f"{path} holds other bars than the {label} market for {', '.join(mismatched)}; "
                "remove it or choose another --out"
            )
        log.info("reusing the %s market in %s", label, path)
    else:
        bars = generate(synthetic, symbols)
        with BarStore(path) as store:
            store.write_bars(bars, source="synthetic", synthetic=True, details=wanted)
            held = {s.symbol: s for s in store.symbols()}
        log.info("generated the %s market into %s", label, path)
    return Market(
        name=name,
        label=label,
        signal=synthetic.signal,
        signal_strength=synthetic.signal_strength,
        store=str(path),
        sessions=max(held[s].sessions for s in symbols),
        bars=sum(held[s].rows for s in symbols),
    )


def _run_figures(
    market: Market, seed: int, cfg: StairwaysConfig, command: Sequence[str]
) -> RunFigures:
    """Train one seed on one market and give its final verdict on the evaluation split."""
    started = time.perf_counter()
    result = train(cfg, TrainOptions(command=command, progress=False))
    trained = time.perf_counter()
    checkpoint, _ = verdict_checkpoint(result)
    report = evaluate_run(result.run_dir, checkpoint=checkpoint, split=cfg.evaluation.split)
    evaluated = time.perf_counter()
    agent = report.agent
    looks = [c.looks for c in report.test_looks if c.this_look is not None]
    return RunFigures(
        market=market.name,
        seed=seed,
        run_dir=str(result.run_dir),
        checkpoint=report.checkpoint.name,
        status=result.status,
        timesteps=result.timesteps,
        train_seconds=round(trained - started, 1),
        evaluate_seconds=round(evaluated - trained, 1),
        sessions=agent.sessions,
        mean_daily_pnl=agent.mean_daily_pnl,
        mean_daily_pnl_lower_bound=agent.mean_daily_pnl_lower_bound,
        daily_sharpe=agent.daily_sharpe,
        daily_sharpe_low=agent.daily_sharpe_low,
        daily_sharpe_high=agent.daily_sharpe_high,
        sharpe_30min=agent.sharpe,
        trades_per_day=agent.trades_per_day,
        gates_passed=report.verdict.passed,
        failed_gates=tuple(report.verdict.failed()),
        test_looks=max(looks) if looks else 0,
    )


def run_readme_figures(
    config: Path | None,
    seeds: Sequence[int],
    out_dir: Path,
    *,
    total_timesteps: int | None = None,
    overrides: Mapping[str, object] | None = None,
    command: Sequence[str] = (),
) -> FiguresReport:
    """Measure the demo with the planted signal on and off; write figures.json and figures.md.

    :param config: the demo's config (None: the defaults, as ``stairways demo``)
    :param seeds: training seeds, one run per seed and market
    :param out_dir: markets, runs and the two output files go here
    :param total_timesteps: training budget (default: the config's)
    :param overrides: further dotted config overrides applied to every run
    :param command: the command line, recorded in every run
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"give one or more distinct seeds, got {list(seeds)}")
    base = dict(overrides or {})
    if total_timesteps is not None:
        base["training.total_timesteps"] = total_timesteps
    cfg0 = load_config(config, base)
    on = cfg0.data.synthetic
    off = on.model_copy(update={"signal_strength": 0.0})
    markets = (
        ensure_market(
            out_dir / "markets" / "signal_on.duckdb",
            on,
            cfg0.data.symbols,
            "signal_on",
            "planted signal on",
        ),
        ensure_market(
            out_dir / "markets" / "signal_off.duckdb",
            off,
            cfg0.data.symbols,
            "signal_off",
            "planted signal off",
        ),
    )
    runs: list[RunFigures] = []
    for market in markets:
        for seed in seeds:
            cfg = load_config(
                config,
                {
                    **base,
                    "data.store_path": market.store,
                    "data.synthetic.signal_strength": market.signal_strength,
                    "training.seed": seed,
                    "training.runs_dir": str(out_dir / "runs" / market.name),
                },
            )
            log.info("readme figures: %s, seed %d", market.label, seed)
            runs.append(_run_figures(market, seed, cfg, command))
    split = cfg0.evaluation.split
    rng = cfg0.data.splits[split]
    commit, dirty = git_state()
    report = FiguresReport(
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        git_commit=commit + ("+dirty" if dirty else ""),
        config=cfg0.name,
        total_timesteps=cfg0.training.total_timesteps,
        split=split,
        split_start=str(rng.start),
        split_end=str(rng.end),
        confidence=cfg0.evaluation.confidence,
        cores=os.cpu_count() or 1,
        markets=markets,
        runs=tuple(runs),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / FIGURES_FILE).write_text(report.to_json())
    (out_dir / BLOCK_FILE).write_text(render_block(report))
    return report
