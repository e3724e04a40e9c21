"""The reward-audit report: verdict, flags, components, plots and episodes, for a reader.

The audit itself (statistics and flags) is :mod:`stairways.analysis.reward_audit`; this module
only presents it, through :mod:`stairways.reports`: one list of blocks rendered as a
self-contained HTML page and as Markdown beside the plots, so the two never disagree. Shares
read as percentages, P&L as dollars.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from stairways.analysis.reward_audit import COMPONENT_PREFIX, AuditFlag, RewardAudit
from stairways.reports import tables as t
from stairways.reports.html import (
    Block,
    Figure,
    Heading,
    Level,
    Paragraph,
    TableBlock,
    Verdict,
    render_markdown,
    write_page,
)

__all__ = ["audit_blocks", "audit_plots", "summary_table", "write_audit_report"]

TITLE = "Reward audit"
# Flags whose value is a ratio rather than a share of episodes or of the reward.
RATIO_FLAGS = frozenset({"reward_dispersion"})
LEVEL_CLASSES = {"CRITICAL": "fail", "WARNING": "warn", "OK": "pass", "UNMEASURED": "muted"}


def audit_plots(audit: RewardAudit) -> list[Figure]:
    """Reward against P&L per episode, component shares, and the episode-reward histogram."""
    # Imported here: the CLI imports this module at start-up, and pyplot costs about a second.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = audit.episodes
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ended = ep["ended_by_drawdown"].fillna(False).to_numpy(dtype=bool)
    ax.scatter(ep["pnl"][~ended], ep["reward"][~ended], s=18, label="episode")
    if ended.any():
        ax.scatter(
            ep["pnl"][ended],
            ep["reward"][ended],
            s=30,
            marker="x",
            color="red",
            label="ended by drawdown",
        )
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    corr = audit.reward_pnl_correlation
    ax.set_title(f"Episode reward vs P&L (corr {'undefined' if corr is None else f'{corr:.2f}'})")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _pos: t.whole_dollars(v)))
    ax.set_xlabel("episode net P&L")
    ax.set_ylabel("episode reward")
    ax.legend(fontsize=8)
    scatter = Figure.from_matplotlib(fig, "episode reward against P&L", "reward_vs_pnl.png")

    comps = audit.components
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.4 * len(comps) + 1)))
    if len(comps):
        ax.barh(comps["component"], comps["share_of_abs_reward"], color="steelblue")
        ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _pos: f"{v:.0%}"))
    ax.set_xlabel("share of the absolute reward")
    ax.set_title("Reward components")
    shares = Figure.from_matplotlib(fig, "reward component shares", "component_shares.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(ep["reward"], bins=min(30, max(5, len(ep) // 2)), color="slategray")
    ax.axvline(0, color="red", lw=0.8)
    ax.set_xlabel("episode reward")
    ax.set_ylabel("episodes")
    ax.set_title("Distribution of episode rewards")
    hist = Figure.from_matplotlib(fig, "distribution of episode rewards", "reward_histogram.png")
    return [scatter, shares, hist]


def _flag_value(flag: AuditFlag, value: float | None) -> str:
    return t.number(2)(value) if flag.name in RATIO_FLAGS else t.percent(1)(value)


def _flags_table(flags: Sequence[AuditFlag]) -> TableBlock:
    rows = [
        {
            "flag": f.name,
            "level": f.level.upper(),
            "value": _flag_value(f, f.value),
            "warning": _flag_value(f, f.warning),
            "critical": _flag_value(f, f.critical),
            "detail": f.message,
        }
        for f in flags
    ]
    return TableBlock(
        t.table(
            (
                t.Column("flag"),
                t.Column("level"),
                t.Column("value", align="right"),
                t.Column("warning", "warning above", align="right"),
                t.Column("critical", "critical above", align="right"),
                t.Column("detail"),
            ),
            rows,
        ),
        status_classes=LEVEL_CLASSES,
    )


def _components_table(audit: RewardAudit) -> TableBlock:
    return TableBlock(
        t.table(
            (
                t.Column("component"),
                t.Column("total", fmt=t.number(3)),
                t.Column("mean_per_episode", "mean per episode", t.number(4)),
                t.Column("share_of_abs_reward", "share of the absolute reward", t.percent(1)),
                t.Column("corr_with_pnl", "correlation with P&L", t.signed(2)),
            ),
            audit.components,
        )
    )


def _episodes_table(audit: RewardAudit) -> TableBlock:
    ep = audit.episodes
    components = [c for c in ep.columns if c.startswith(COMPONENT_PREFIX)]
    return TableBlock(
        t.table(
            (
                t.Column("session_date", "session"),
                t.Column("steps", fmt=t.integer),
                t.Column("reward", fmt=t.number(3)),
                t.Column("pnl", "net P&L", t.dollars),
                t.Column("max_drawdown", "max drawdown", t.percent(2)),
                t.Column("ended_by_drawdown", "ended by drawdown"),
                *(t.Column(c, c[len(COMPONENT_PREFIX) :], t.number(3)) for c in components),
            ),
            ep,
            row_classes=lambda r: "bad" if r["reward"] * r["pnl"] < 0 else "",
        ),
        sortable=True,
        caption="Episodes where reward and P&L disagree in sign are highlighted.",
    )


def audit_blocks(audit: RewardAudit, plots: Sequence[Figure]) -> list[Block]:
    """The report: verdict first, then flags, components, plots and every episode."""
    worst = [f for f in audit.flags if f.level == "critical"] or [
        f for f in audit.flags if f.level == "warning"
    ]
    level: Level = "fail" if audit.critical else ("warn" if worst else "pass")
    headline = (
        f"CRITICAL: {', '.join(f.name for f in worst)} (exit code {audit.exit_code})"
        if audit.critical
        else f"No critical flag (exit code {audit.exit_code})"
        + (f"; warnings: {', '.join(f.name for f in worst)}" if worst else "")
    )
    corr = audit.reward_pnl_correlation
    details = [f.message for f in worst] + [
        f"{len(audit.episodes)} episodes; correlation of episode reward with episode P&L "
        f"{t.signed(2)(corr)}; drawdown cap {t.percent(1)(audit.drawdown_cap)}.",
    ]
    return [
        Verdict(level, headline, tuple(details)),
        Paragraph(f"Trace: {audit.source}", muted=True),
        Heading(2, "Flags"),
        _flags_table(audit.flags),
        Heading(2, "Components"),
        _components_table(audit),
        Heading(2, "Plots"),
        *plots,
        Heading(2, "Episodes"),
        _episodes_table(audit),
    ]


def write_audit_report(audit: RewardAudit, out_dir: Path) -> dict[str, Path]:
    """Write reward_audit.md, reward_audit.html (self-contained), PNGs, episodes.csv, audit.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    plots = audit_plots(audit)
    for fig in plots:
        path = out_dir / fig.name
        path.write_bytes(fig.png)
        files[fig.name] = path
    episodes_path = out_dir / "episodes.csv"
    audit.episodes.to_csv(episodes_path, index=False)
    files["episodes"] = episodes_path
    json_path = out_dir / "audit.json"
    json_path.write_text(json.dumps(audit.to_dict(), indent=2, default=str) + "\n")
    files["json"] = json_path
    blocks = audit_blocks(audit, plots)
    md_path = out_dir / "reward_audit.md"
    md_path.write_text(render_markdown(TITLE, blocks))
    files["markdown"] = md_path
    files["html"] = write_page(out_dir / "reward_audit.html", TITLE, blocks)
    return files


def summary_table(audits: Sequence[RewardAudit]) -> str:
    """Every flag of every audit as one text table, for the terminal."""
    rows = [
        {"trace": a.source, "level": f.level.upper(), "flag": f.name, "detail": f.message}
        for a in audits
        for f in a.flags
    ]
    return t.render_text(
        t.table((t.Column("level"), t.Column("flag"), t.Column("detail"), t.Column("trace")), rows)
    )
