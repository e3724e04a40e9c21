"""Success gates: judge an evaluation's metrics, and the baselines' by the same gates.

The gates (definitions and defaults in :mod:`stairways.evaluation.settings`):

=========================== ========================================================= =====
gate                         value                                                     pass
=========================== ========================================================= =====
sharpe                       Sharpe ratio of 30-minute windows (annualised)           >= 0.3
episode_reward_mean          mean per-session reward sum                               >= 0.1
mean_episode_length          mean steps per session                                    >= 80
significance                 95 % bootstrap lower bound of the mean daily net P&L      > 0
excess_over_baselines        95 % paired lower bound of the mean daily net P&L of      > 0
                             policy minus the best baseline (highest mean)
earned_reward_mean           mean per-session money component of the reward           >= 0.1
reward_pnl_disagreement      share of sessions whose reward and P&L disagree in sign   <= 0.5
=========================== ========================================================= =====

Every gate is also applied to every baseline (flat, buy-and-hold of each ticker) on the same
sessions. A gate that some baseline passes is *not informative*: passing it says nothing a
policy that never looks at the market could not also say. The excess gate compares a policy
with the baseline that made the most money on these sessions (flat when every buy-and-hold
lost); for a baseline that is itself or a better one, so no baseline can pass it. Comparing
with the best baseline only (rather than with every one) keeps the day-to-day noise of a
losing buy-and-hold out of the comparison: beating flat already beats a baseline that lost.

An undefined value (a Sharpe ratio without variance, too few sessions for a bootstrap, no
decided session for the disagreement share) never passes. The verdict is saved as gates.json
and decides the exit code of ``stairways evaluate`` and ``stairways validate temporal``: 0 when
every gate passes, :data:`GATES_FAILED_EXIT_CODE` (3) when at least one fails. Exit code 2
stays reserved for bad input and 1 for other failures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from stairways.errors import ConfigError, StairwaysError
from stairways.evaluation import stats
from stairways.evaluation.metrics import (
    Metrics,
    SessionSeries,
    compute_metrics,
    session_series,
    sharpe_text,
)
from stairways.evaluation.settings import EvaluationConfig, GateConfig
from stairways.evaluation.traces import Trace
from stairways.reports import tables as t

GATES_FAILED_EXIT_CODE = 3

SHARPE = "sharpe"
EPISODE_REWARD = "episode_reward_mean"
EPISODE_LENGTH = "mean_episode_length"
SIGNIFICANCE = "significance"
EXCESS = "excess_over_baselines"
EARNED = "earned_reward_mean"
DISAGREEMENT = "reward_pnl_disagreement"

Op = Literal[">=", ">", "<="]

DESCRIPTIONS: dict[str, str] = {
    SHARPE: "Sharpe ratio, 30-minute windows",
    EPISODE_REWARD: "mean episode reward",
    EPISODE_LENGTH: "mean episode length (steps)",
    SIGNIFICANCE: "mean daily net P&L, bootstrap lower bound ($)",
    EXCESS: "daily net P&L over the best baseline, paired lower bound ($)",
    EARNED: "mean earned reward (money component)",
    DISAGREEMENT: "sessions where reward and P&L disagree in sign",
}


class GatesFailedError(StairwaysError):
    """The evaluation ran and was written, but at least one success gate failed (exit 3)."""

    exit_code = GATES_FAILED_EXIT_CODE


@dataclass(frozen=True)
class Evaluated:
    """One replayed policy: its metrics and its per-session values."""

    metrics: Metrics
    series: SessionSeries


def evaluated(trace: Trace, ev: EvaluationConfig) -> Evaluated:
    """Metrics and per-session values of a trace under the evaluation settings ``ev``."""
    metrics = compute_metrics(
        trace,
        window_minutes=ev.sharpe_window_minutes,
        trading_days_per_year=ev.trading_days_per_year,
        confidence=ev.confidence,
        resamples=ev.bootstrap_resamples,
        seed=ev.bootstrap_seed,
        earned_component=ev.gates.earned_component,
    )
    return Evaluated(metrics=metrics, series=session_series(trace, ev.gates.earned_component))


def judge_traces(
    agent: Trace,
    baselines: Mapping[str, Trace],
    ev: EvaluationConfig,
    known: Mapping[str, Evaluated] | None = None,
) -> tuple[Evaluated, dict[str, Evaluated], GateVerdict]:
    """Metrics of the agent and of every baseline, and the gate verdict.

    :param known: baselines already evaluated under ``ev`` (their traces are not evaluated
        again; the baseline cache keeps them)
    """
    own = evaluated(agent, ev)
    done = known or {}
    base = {name: done[name] if name in done else evaluated(t, ev) for name, t in baselines.items()}
    return own, base, evaluate_gates(own, ev, base)


@dataclass(frozen=True)
class GateResult:
    """One gate: the metric, its value (None when undefined), the comparison and the outcome.

    :param detail: what decided an undefined value or which baseline bound the excess gate
    :param baselines_passing: baselines that pass the same gate (the gate is then not
        informative); empty for a baseline's own results
    """

    metric: str
    value: float | None
    threshold: float
    passed: bool
    op: Op = ">="
    detail: str = ""
    baselines_passing: tuple[str, ...] = ()

    @property
    def informative(self) -> bool:
        """Whether no baseline passes this gate."""
        return not self.baselines_passing

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "metric": self.metric,
            "value": self.value,
            "op": self.op,
            "threshold": self.threshold,
            "passed": self.passed,
            "detail": self.detail,
            "informative": self.informative,
            "baselines_passing": list(self.baselines_passing),
        }


def _compare(value: float | None, op: Op, threshold: float) -> bool:
    if value is None or np.isnan(value):
        return False
    if op == ">=":
        return value >= threshold
    if op == ">":
        return value > threshold
    return value <= threshold


def _gate(
    metric: str, value: float | None, op: Op, threshold: float, detail: str = ""
) -> GateResult:
    return GateResult(
        metric=metric,
        value=value,
        threshold=threshold,
        passed=_compare(value, op, threshold),
        op=op,
        detail=detail,
    )


@dataclass(frozen=True)
class GateVerdict:
    """All gates of one evaluation; ``passed`` only when every agent gate passed.

    :param results: the agent's gates, each knowing which baselines pass it
    :param baselines: every baseline's results for the same gates
    :param sharpe: the Sharpe phrase (30-minute and daily with interval) per policy
    """

    results: tuple[GateResult, ...]
    baselines: Mapping[str, tuple[GateResult, ...]] = field(default_factory=dict)
    sharpe: Mapping[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every gate passed."""
        return all(r.passed for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every gate passed, otherwise :data:`GATES_FAILED_EXIT_CODE`."""
        return 0 if self.passed else GATES_FAILED_EXIT_CODE

    def failed(self) -> list[str]:
        """Names of the metrics whose gate failed."""
        return [r.metric for r in self.results if not r.passed]

    def not_informative(self) -> list[str]:
        """Names of the gates that at least one baseline passes."""
        return [r.metric for r in self.results if not r.informative]

    def baseline_passed(self, name: str) -> bool:
        """Whether baseline ``name`` passes every gate (it never should)."""
        return all(r.passed for r in self.baselines[name])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what gates.json holds)."""
        return {
            "passed": self.passed,
            "gates": [r.to_dict() for r in self.results],
            "not_informative": self.not_informative(),
            "baselines": {
                name: {
                    "passed": self.baseline_passed(name),
                    "gates": [r.to_dict() for r in results],
                }
                for name, results in self.baselines.items()
            },
            "sharpe": dict(self.sharpe),
        }

    def table(self) -> str:
        """Plain-text table: each gate for the agent and every baseline, then the verdict."""
        names = list(self.baselines)
        header = ["gate", "agent", "threshold", "result", *names, "informative"]
        rows = []
        for k, r in enumerate(self.results):
            value = "undefined" if r.value is None else f"{r.value:.4f}"
            cells = [r.metric, value, f"{r.op} {r.threshold:g}", "PASS" if r.passed else "FAIL"]
            for name in names:
                cells.append("pass" if self.baselines[name][k].passed else "fail")
            cells.append("yes" if r.informative else "NO (a baseline passes)")
            rows.append(dict(zip(header, cells, strict=True)))
        lines = t.render_text(t.table([t.Column(h) for h in header], rows)).splitlines()
        details = [f"  {r.metric}: {r.detail}" for r in self.results if r.detail]
        if details:
            lines.append("notes:")
            lines.extend(details)
        if self.sharpe:
            lines.append("Sharpe ratios (30-minute windows / daily with its interval):")
            lines.extend(f"  {name}: {text}" for name, text in self.sharpe.items())
        uninformative = self.not_informative()
        if uninformative:
            lines.append(
                "not informative (a baseline passes them too): " + ", ".join(uninformative)
            )
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(line.rstrip() for line in lines)


def _excess(
    own: SessionSeries,
    baselines: Mapping[str, SessionSeries],
    gates: GateConfig,
    ev: EvaluationConfig,
) -> GateResult:
    """Paired lower bound of ``own - best baseline`` (the baseline with the highest mean)."""
    if not baselines:
        raise ConfigError(
            "the excess gate needs baseline replays; set evaluation.baselines: true "
            "(or evaluation.gates.excess: false)"
        )
    if own.n < gates.min_sessions:
        return _gate(
            EXCESS,
            None,
            ">",
            gates.min_excess_daily_pnl,
            f"needs at least {gates.min_sessions} sessions (evaluation.gates.min_sessions), "
            f"got {own.n}",
        )
    for name, base in baselines.items():
        if base.dates != own.dates:
            raise StairwaysError(
                f"baseline {name} replayed other sessions than the policy; the paired "
                "comparison needs the same sessions"
            )
    means = {name: float(base.pnl.mean()) for name, base in baselines.items()}
    best = max(means, key=lambda n: means[n])  # ties: the first in order (flat)
    bound = stats.paired_mean_interval(
        own.pnl,
        baselines[best].pnl,
        confidence=ev.confidence,
        resamples=ev.bootstrap_resamples,
        seed=ev.bootstrap_seed,
    ).lower_bound
    return _gate(
        EXCESS,
        bound,
        ">",
        gates.min_excess_daily_pnl,
        f"best baseline {best} (mean daily net P&L: "
        + ", ".join(f"{n} ${m:+.2f}" for n, m in means.items())
        + ")",
    )


def _policy_gates(
    ev_policy: Evaluated,
    baselines: Mapping[str, SessionSeries],
    ev: EvaluationConfig,
) -> tuple[GateResult, ...]:
    g = ev.gates
    m = ev_policy.metrics
    out = [
        _gate(SHARPE, m.sharpe, ">=", g.min_sharpe),
        _gate(EPISODE_REWARD, m.episode_reward_mean, ">=", g.min_episode_reward_mean),
        _gate(EPISODE_LENGTH, m.mean_episode_length, ">=", g.min_mean_episode_length),
    ]
    if g.significance:
        few = m.sessions < g.min_sessions
        out.append(
            _gate(
                SIGNIFICANCE,
                None if few else m.mean_daily_pnl_lower_bound,
                ">",
                0.0,
                f"needs at least {g.min_sessions} sessions (evaluation.gates.min_sessions), "
                f"got {m.sessions}"
                if few
                else f"{m.confidence:.0%} one-sided bound, mean ${m.mean_daily_pnl:+.2f} a day",
            )
        )
    if g.excess:
        out.append(_excess(ev_policy.series, baselines, g, ev))
    if g.min_earned_reward_mean is not None:
        if ev_policy.series.earned is None:
            raise ConfigError(
                f"the earned-reward gate sums the reward component {g.earned_component!r}, "
                "which this reward does not have; set evaluation.gates.earned_component to its "
                "money component or evaluation.gates.min_earned_reward_mean: null"
            )
        out.append(_gate(EARNED, m.earned_reward_mean, ">=", g.min_earned_reward_mean))
    if g.max_reward_pnl_disagreement is not None:
        out.append(
            _gate(
                DISAGREEMENT,
                m.reward_pnl_disagreement,
                "<=",
                g.max_reward_pnl_disagreement,
                "no session with both a non-zero reward and a non-zero P&L"
                if m.reward_pnl_disagreement is None
                else "",
            )
        )
    return tuple(out)


def evaluate_gates(
    agent: Evaluated,
    ev: EvaluationConfig,
    baselines: Mapping[str, Evaluated] | None = None,
) -> GateVerdict:
    """Judge the agent, and every baseline by the same gates, under ``ev.gates``.

    :param agent: the agent's metrics and per-session values
    :param ev: evaluation settings (gates, bootstrap confidence, resamples and seed)
    :param baselines: baselines replayed on the same sessions (needed by the excess gate)
    """
    baselines = dict(baselines or {})
    series = {name: b.series for name, b in baselines.items()}
    base_results = {name: _policy_gates(b, series, ev) for name, b in baselines.items()}
    own = _policy_gates(agent, series, ev)
    flagged = tuple(
        GateResult(
            metric=r.metric,
            value=r.value,
            threshold=r.threshold,
            passed=r.passed,
            op=r.op,
            detail=r.detail,
            baselines_passing=tuple(n for n, res in base_results.items() if res[k].passed),
        )
        for k, r in enumerate(own)
    )
    sharpe = {"agent": sharpe_text(agent.metrics.to_dict())}
    sharpe.update({n: sharpe_text(b.metrics.to_dict()) for n, b in baselines.items()})
    return GateVerdict(results=flagged, baselines=base_results, sharpe=sharpe)


def write_verdict(verdict: GateVerdict, path: Path) -> Path:
    """Save the verdict as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict.to_dict(), indent=2) + "\n")
    return path
