"""Reward audits: does the reward an agent collects agree with the money it makes?

Reads an evaluation trace (one row per step, see :mod:`stairways.evaluation.traces`); every
session is one episode. Definitions:

- Episode reward ``R_e``: the sum of the step rewards; episode P&L ``P_e``: the sum of net step
  P&L. Component sum ``C_e,c``: the sum of component ``c`` over the episode. When the
  components do not add up to the reward (beyond 1e-9 per step), the rest is shown as the
  component ``unexplained``.
- Component share in an episode: ``C_e,c / sum_c |C_e,c|`` (signed). A component's share of the
  absolute reward over the whole trace: ``sum_e |C_e,c| / sum_e sum_c |C_e,c|``.
- Correlations: Pearson, across episodes, of ``R_e`` with ``P_e`` and of each ``C_e,c`` with
  ``P_e``; undefined (None) with fewer than 3 episodes or without variance.
- An episode *ended by drawdown* when its intraday drawdown exceeded the drawdown cap (the env
  terminates at the first step where it does), with the cap read from the run's config.yaml
  (``env.drawdown_cap``) unless given; without a known cap this flag is ``unmeasured``.
- Reward and P&L *disagree* in an episode when one is positive and the other negative;
  episodes where either is exactly zero are left out of the ratio.

Flags (a value strictly above a threshold raises that level):

===================== ==================================================== ======== ========
flag                   value                                                 warning  critical
===================== ==================================================== ======== ========
reward_dispersion      std(R_e) / abs(mean(R_e)) (population std)            1.0      2.0
negative_episodes      share of episodes with R_e < 0                          50%      70%
drawdown_endings       share of episodes ended by drawdown                     5%       10%
component_dominance    largest component share of the absolute reward         60%      80%
reward_hacking         share of (decided) episodes where R_e and P_e disagree  30%      50%
===================== ==================================================== ======== ========

The report (Markdown, HTML, plots) is written by :mod:`stairways.analysis.reward_audit_report`.
``stairways audit rewards`` exits with :data:`AUDIT_CRITICAL_EXIT_CODE` (3) when any audited
trace has a critical flag, 0 otherwise (warnings do not change the exit code), 2 on bad input
and 1 when a trace is missing.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, model_validator

from stairways.configbase import Frozen
from stairways.errors import InputError, MissingResourceError
from stairways.evaluation.reward_pnl import sign_disagreement
from stairways.evaluation.traces import TRACE_FILE, Trace, component_column, read_trace

log = logging.getLogger(__name__)

__all__ = [
    "AUDIT_CRITICAL_EXIT_CODE",
    "AuditFlag",
    "RewardAudit",
    "RewardAuditConfig",
    "audit_trace",
    "drawdown_cap_of_run",
    "drawdown_endings",
    "find_trace",
    "latest_run_traces",
]

AUDIT_CRITICAL_EXIT_CODE = 3
# Episode-table columns of component sums, named like the trace's component columns.
COMPONENT_PREFIX = "reward__"
UNEXPLAINED = "unexplained"
Level = Literal["ok", "warning", "critical", "unmeasured"]


class RewardAuditConfig(Frozen):
    """Warning and critical thresholds of the reward audit (value > threshold raises a flag)."""

    dispersion_warning: float = Field(default=1.0, ge=0.0, le=1e6)
    dispersion_critical: float = Field(default=2.0, ge=0.0, le=1e6)
    negative_share_warning: float = Field(default=0.5, ge=0.0, le=1.0)
    negative_share_critical: float = Field(default=0.7, ge=0.0, le=1.0)
    drawdown_share_warning: float = Field(default=0.05, ge=0.0, le=1.0)
    drawdown_share_critical: float = Field(default=0.10, ge=0.0, le=1.0)
    component_share_warning: float = Field(default=0.6, ge=0.0, le=1.0)
    component_share_critical: float = Field(default=0.8, ge=0.0, le=1.0)
    disagreement_warning: float = Field(default=0.3, ge=0.0, le=1.0)
    disagreement_critical: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Most episodes: reward hacking"
    )

    @model_validator(mode="after")
    def _warning_below_critical(self) -> Self:
        for name in ("dispersion", "negative_share", "drawdown_share", "component_share"):
            warn, crit = getattr(self, f"{name}_warning"), getattr(self, f"{name}_critical")
            if warn > crit:
                raise ValueError(f"{name}_warning {warn} exceeds {name}_critical {crit}")
        if self.disagreement_warning > self.disagreement_critical:
            raise ValueError("disagreement_warning exceeds disagreement_critical")
        return self


@dataclass(frozen=True)
class AuditFlag:
    """One check: its value, thresholds, level and a sentence for the report."""

    name: str
    level: Level
    value: float | None
    warning: float
    critical: float
    message: str


@dataclass(frozen=True)
class RewardAudit:
    """The audit of one trace.

    :param episodes: one row per episode (session, date, steps, reward, pnl, ended_by_drawdown,
        one column per component sum)
    :param components: one row per component (total, mean per episode, share of the absolute
        reward, correlation with P&L)
    """

    source: str
    episodes: pd.DataFrame
    components: pd.DataFrame
    reward_pnl_correlation: float | None
    drawdown_cap: float | None
    flags: tuple[AuditFlag, ...]

    @property
    def critical(self) -> bool:
        """Whether any flag is critical."""
        return any(f.level == "critical" for f in self.flags)

    @property
    def exit_code(self) -> int:
        """0, or :data:`AUDIT_CRITICAL_EXIT_CODE` when a flag is critical."""
        return AUDIT_CRITICAL_EXIT_CODE if self.critical else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (flags, correlations, component table)."""
        return {
            "source": self.source,
            "episodes": len(self.episodes),
            "drawdown_cap": self.drawdown_cap,
            "reward_pnl_correlation": self.reward_pnl_correlation,
            "critical": self.critical,
            "flags": [f.__dict__ for f in self.flags],
            "components": json.loads(self.components.to_json(orient="records")),
        }


def _corr(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation; None with fewer than 3 points or without variance."""
    if len(x) < 3 or float(np.std(x)) == 0.0 or float(np.std(y)) == 0.0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _level(value: float | None, warning: float, critical: float) -> Level:
    if value is None:
        return "unmeasured"
    if value > critical:
        return "critical"
    if value > warning:
        return "warning"
    return "ok"


def drawdown_endings(trace: Trace, drawdown_cap: float) -> np.ndarray:
    """Per episode (session order), whether it ended by drawdown: its intraday drawdown
    exceeded ``drawdown_cap`` (the env terminates at the first step where it does).
    """
    f = trace.frame
    max_dd = f.groupby("session", sort=True)["drawdown"].max().to_numpy(dtype=np.float64)
    return max_dd > drawdown_cap


def episode_table(trace: Trace, drawdown_cap: float | None) -> pd.DataFrame:
    """Per-episode sums: steps, reward, P&L, drawdown ending and every component."""
    f = trace.frame
    comps = list(trace.meta.reward_components)
    cols = {c: f[component_column(c)].to_numpy(dtype=np.float64) for c in comps}
    reward = f["reward"].to_numpy(dtype=np.float64)
    residual = reward - (np.sum(np.vstack(list(cols.values())), axis=0) if cols else 0.0)
    if np.max(np.abs(residual), initial=0.0) > 1e-9:
        cols[UNEXPLAINED] = residual
    frame = pd.DataFrame(
        {
            "session": f["session"].to_numpy(),
            "reward": reward,
            "pnl": f["step_pnl"].to_numpy(dtype=np.float64),
            "drawdown": f["drawdown"].to_numpy(dtype=np.float64),
            **{f"{COMPONENT_PREFIX}{c}": v for c, v in cols.items()},
        }
    )
    grouped = frame.groupby("session", sort=True)
    out = grouped[["reward", "pnl", *(f"{COMPONENT_PREFIX}{c}" for c in cols)]].sum()
    out.insert(0, "steps", grouped.size())
    dates = f.groupby("session", sort=True)["session_date"].first().dt.strftime("%Y-%m-%d")
    out.insert(0, "session_date", dates)
    max_dd = grouped["drawdown"].max()
    out["max_drawdown"] = max_dd
    if drawdown_cap is None:
        out["ended_by_drawdown"] = pd.NA
    else:
        out["ended_by_drawdown"] = drawdown_endings(trace, drawdown_cap)
    return out.reset_index()


def component_names(episodes: pd.DataFrame) -> list[str]:
    """Names of the components in an episode table (columns ``reward__<name>``)."""
    n = len(COMPONENT_PREFIX)
    return [c[n:] for c in episodes.columns if c.startswith(COMPONENT_PREFIX)]


def audit_trace(
    trace: Trace,
    cfg: RewardAuditConfig,
    *,
    drawdown_cap: float | None = None,
    source: str = "",
) -> RewardAudit:
    """Audit one trace: episode table, component table, correlations and flags."""
    episodes = episode_table(trace, drawdown_cap)
    names = component_names(episodes)
    reward = episodes["reward"].to_numpy(dtype=np.float64)
    pnl = episodes["pnl"].to_numpy(dtype=np.float64)
    cols = [f"{COMPONENT_PREFIX}{n}" for n in names]
    sums = episodes[cols].to_numpy(dtype=np.float64) if names else np.zeros((len(reward), 0))
    abs_total = float(np.abs(sums).sum())
    comp_rows = []
    for k, name in enumerate(names):
        col = sums[:, k]
        comp_rows.append(
            {
                "component": name,
                "total": float(col.sum()),
                "mean_per_episode": float(col.mean()) if len(col) else 0.0,
                "share_of_abs_reward": float(np.abs(col).sum()) / abs_total if abs_total else 0.0,
                "corr_with_pnl": _corr(col, pnl),
            }
        )
    components = pd.DataFrame(
        comp_rows,
        columns=["component", "total", "mean_per_episode", "share_of_abs_reward", "corr_with_pnl"],
    )
    denom = np.abs(sums).sum(axis=1)
    for k, name in enumerate(names):
        episodes[f"share__{name}"] = np.divide(
            sums[:, k],
            denom,
            out=np.zeros(len(denom)),
            where=denom > 0,
        )
    corr = _corr(reward, pnl)
    flags = _flags(episodes, components, reward, pnl, drawdown_cap, cfg)
    return RewardAudit(
        source=source,
        episodes=episodes,
        components=components,
        reward_pnl_correlation=corr,
        drawdown_cap=drawdown_cap,
        flags=tuple(flags),
    )


def _flags(
    episodes: pd.DataFrame,
    components: pd.DataFrame,
    reward: np.ndarray,
    pnl: np.ndarray,
    drawdown_cap: float | None,
    cfg: RewardAuditConfig,
) -> list[AuditFlag]:
    n = len(reward)
    flags: list[AuditFlag] = []

    mean, std = float(reward.mean()), float(reward.std(ddof=0))
    if mean == 0.0:
        cv: float | None = math.inf if std > 0.0 else 0.0
    else:
        cv = std / abs(mean)
    flags.append(
        AuditFlag(
            "reward_dispersion",
            _level(cv, cfg.dispersion_warning, cfg.dispersion_critical),
            cv,
            cfg.dispersion_warning,
            cfg.dispersion_critical,
            f"episode reward std/|mean| is {cv:.3g} (mean {mean:.4g}, std {std:.4g})",
        )
    )

    neg = float(np.mean(reward < 0.0))
    flags.append(
        AuditFlag(
            "negative_episodes",
            _level(neg, cfg.negative_share_warning, cfg.negative_share_critical),
            neg,
            cfg.negative_share_warning,
            cfg.negative_share_critical,
            f"{neg:.1%} of {n} episodes have a negative reward",
        )
    )

    if drawdown_cap is None:
        flags.append(
            AuditFlag(
                "drawdown_endings",
                "unmeasured",
                None,
                cfg.drawdown_share_warning,
                cfg.drawdown_share_critical,
                "drawdown cap unknown (no run config.yaml with env.drawdown_cap; pass "
                "--drawdown-cap): episodes ending by drawdown were not counted",
            )
        )
    else:
        dd = float(np.mean(episodes["ended_by_drawdown"].to_numpy(dtype=bool)))
        flags.append(
            AuditFlag(
                "drawdown_endings",
                _level(dd, cfg.drawdown_share_warning, cfg.drawdown_share_critical),
                dd,
                cfg.drawdown_share_warning,
                cfg.drawdown_share_critical,
                f"{dd:.1%} of {n} episodes ended by drawdown (cap {drawdown_cap:g})",
            )
        )

    if len(components) >= 2:
        top = components.loc[components["share_of_abs_reward"].idxmax()]
        share = float(top["share_of_abs_reward"])
        flags.append(
            AuditFlag(
                "component_dominance",
                _level(share, cfg.component_share_warning, cfg.component_share_critical),
                share,
                cfg.component_share_warning,
                cfg.component_share_critical,
                f"component {top['component']} is {share:.1%} of the absolute reward",
            )
        )
    else:
        flags.append(
            AuditFlag(
                "component_dominance",
                "unmeasured",
                None,
                cfg.component_share_warning,
                cfg.component_share_critical,
                "the reward has fewer than two components; dominance does not apply",
            )
        )

    check = sign_disagreement(reward, pnl)
    n_decided = check.decided
    if check.share is None:
        flags.append(
            AuditFlag(
                "reward_hacking",
                "unmeasured",
                None,
                cfg.disagreement_warning,
                cfg.disagreement_critical,
                "no episode has both a non-zero reward and a non-zero P&L",
            )
        )
    else:
        share = check.share
        level = _level(share, cfg.disagreement_warning, cfg.disagreement_critical)
        what = (
            "possible reward hacking: the agent is paid for episodes that lose money (or "
            "punished for ones that make money)"
            if level == "critical"
            else "reward and P&L mostly agree"
            if level == "ok"
            else "reward and P&L often disagree"
        )
        flags.append(
            AuditFlag(
                "reward_hacking",
                level,
                share,
                cfg.disagreement_warning,
                cfg.disagreement_critical,
                f"reward and P&L disagree in sign in {check.disagreeing} of {n_decided} "
                f"episodes ({share:.1%}): {what}",
            )
        )
    return flags


def find_trace(path: Path) -> Path:
    """The trace to audit for ``path``: a traces.parquet file, an evaluation directory holding
    one, or a run directory (its most recently written agent trace under ``eval/``).
    """
    if path.is_file():
        return path
    if not path.exists():
        raise MissingResourceError(f"{path} does not exist (expected a run directory or a trace)")
    direct = path / TRACE_FILE
    if direct.is_file():
        return direct
    found = [p for p in (path / "eval").glob(f"**/{TRACE_FILE}") if "baselines" not in p.parts]
    if not found:
        raise MissingResourceError(
            f"no evaluation trace under {path}; run `stairways evaluate {path}` first"
        )
    return max(found, key=lambda p: p.stat().st_mtime_ns)


def latest_run_traces(runs_dir: Path, count: int) -> list[Path]:
    """Traces of the ``count`` run directories under ``runs_dir`` evaluated most recently."""
    if not runs_dir.is_dir():
        raise MissingResourceError(f"runs directory {runs_dir} does not exist")
    latest: list[tuple[int, Path]] = []
    skipped = []
    for run in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        traces = [p for p in (run / "eval").glob(f"**/{TRACE_FILE}") if "baselines" not in p.parts]
        if not traces:
            skipped.append(run.name)
            continue
        newest = max(traces, key=lambda p: p.stat().st_mtime_ns)
        latest.append((newest.stat().st_mtime_ns, newest))
    if skipped:
        log.warning("runs without an evaluation trace (not audited): %s", ", ".join(skipped))
    if not latest:
        raise MissingResourceError(
            f"no run under {runs_dir} has an evaluation trace; run `stairways evaluate RUN_DIR`"
        )
    latest.sort(reverse=True)
    return [p for _, p in latest[:count]]


def drawdown_cap_of_run(trace: Trace, trace_path: Path) -> float | None:
    """The drawdown cap the trace was replayed with: the trace's own metadata when it records
    one (``extra.drawdown_cap``), else env.drawdown_cap of the run's resolved config.yaml.
    """
    recorded = trace.meta.extra.get("drawdown_cap")
    if isinstance(recorded, int | float):
        return float(recorded)
    candidates = []
    if trace.meta.run:
        candidates.append(Path(trace.meta.run) / "config.yaml")
    # A run's trace lies at RUN/eval/SPLIT/CHECKPOINT/traces.parquet: look a few levels up.
    candidates.extend(p / "config.yaml" for p in trace_path.resolve().parents[:5])
    for cfg_path in candidates:
        if not cfg_path.is_file():
            continue
        try:
            data = yaml.safe_load(cfg_path.read_text())
        except yaml.YAMLError as err:
            raise InputError(f"{cfg_path}: not valid YAML ({err})") from None
        env = data.get("env") if isinstance(data, dict) else None
        if isinstance(env, dict) and isinstance(env.get("drawdown_cap"), int | float):
            return float(env["drawdown_cap"])
        return None
    return None


def audit_path(
    path: Path,
    cfg: RewardAuditConfig,
    drawdown_cap: float | None = None,
) -> tuple[RewardAudit, Path]:
    """Find, read and audit the trace for ``path``; returns the audit and the trace file."""
    trace_file = find_trace(path)
    trace = read_trace(trace_file, create_hint=f"stairways evaluate {path}")
    cap = drawdown_cap if drawdown_cap is not None else drawdown_cap_of_run(trace, trace_file)
    return audit_trace(trace, cfg, drawdown_cap=cap, source=str(trace_file)), trace_file
