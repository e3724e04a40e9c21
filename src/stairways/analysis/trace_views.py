"""What the action-trace report shows: the verdict and every table, formatted for a reader.

The notebook (``action_trace_analysis.ipynb``) computes with :mod:`stairways.analysis.action_traces`
and shows the results through these functions, so every number reads as what it is: dollars as
``$1,234.56``, shares as ``1,200 sh``, fractions as percentages. Each function returns a report
block of :mod:`stairways.reports.html`; :func:`show` displays blocks in the notebook, and the
report renderer (:mod:`stairways.analysis.trace_report`) copies them into the HTML page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from stairways.analysis.action_traces import CheckpointTrace, good_vs_bad, position_patterns
from stairways.analysis.flipflop import FlipFlopRule
from stairways.evaluation.metrics import compute_metrics, sharpe_text
from stairways.reports import tables as t
from stairways.reports.html import Block, Level, Paragraph, TableBlock, Verdict, block_html

__all__ = [
    "activity_table",
    "episodes_table",
    "flip_flop_tables",
    "good_vs_bad_table",
    "patterns_table",
    "ranking_table",
    "show",
    "trade_counts_table",
    "verdict",
]

PER_HOUR = t.rate("/h")


def show(*blocks: Block) -> None:
    """Display report blocks in the notebook (as HTML, exactly as the report shows them)."""
    from IPython.display import HTML, display

    for block in blocks:
        display(HTML(block_html(block)))


def _n_tickers(ranked: Sequence[CheckpointTrace]) -> int:
    return len(ranked[0].trace.meta.symbols)


def verdict(
    run_name: str,
    split: str,
    ranked: Sequence[CheckpointTrace],
    summaries: Mapping[str, pd.DataFrame],
    rule: FlipFlopRule,
) -> Verdict:
    """The first thing the report says: how the top-ranked checkpoint did and whether it
    flip-flops. The ranking is by rolling training reward at save time; the results are on
    ``split``, which training never saw.
    """
    best = ranked[0]
    s = summaries[best.label]
    pnl = float(s["net_pnl"].sum())
    sessions = len(s)
    flagged = int(s["flagged"].sum())
    losing = int(s["flagged_losing"].sum())
    level: Level = "pass" if pnl > 0 and flagged == 0 else ("fail" if pnl <= 0 else "warn")
    text = (
        f"Top-ranked checkpoint {best.label}: net P&L {t.dollars(pnl)} over {sessions} sessions of "
        f"{split} ({t.dollars(pnl / sessions)} a session, "
        f"{t.percent(0)(float((s['net_pnl'] > 0).mean()))} of sessions profitable); "
        f"{flagged} of {sessions} episodes flagged as flip-flopping"
        + (f", {losing} of them losing money." if flagged else ".")
    )
    others = [
        f"{c.label}: {t.dollars(float(summaries[c.label]['net_pnl'].sum()))}" for c in ranked[1:4]
    ]
    details = [
        f"Top-ranked checkpoint: {sharpe_text(_metrics(best))} (95% session-bootstrap interval "
        "of the daily Sharpe ratio; the 30-minute one overstates it when windows of a session "
        "move together).",
        f"Flip-flops: {rule.describe(_n_tickers(ranked))}; the top-ranked checkpoint averages "
        f"{PER_HOUR(float(s['flip_rate'].mean()))}.",
    ]
    if others:
        details.append("Next checkpoints by training reward: " + "; ".join(others) + ".")
    details.append(
        f"{len(ranked)} checkpoints of {run_name} replayed on {split} "
        f"({sum(c.reused for c in ranked)} traces reused from earlier evaluations)."
    )
    if best.trace.meta.extra.get("synthetic"):
        details.append("Data: SYNTHETIC market; results say nothing about a real one.")
    return Verdict(level, text, tuple(details))


def _metrics(c: CheckpointTrace) -> dict[str, float | int | None]:
    """The evaluation metrics of a checkpoint's replay (default windows, 95 % intervals)."""
    return compute_metrics(c.trace).to_dict()


def daily_sharpe_text(m: Mapping[str, float | int | None]) -> str:
    """``1.10 [-0.80, 3.00]``: the daily Sharpe ratio with its bootstrap interval."""
    daily, low, high = m.get("daily_sharpe"), m.get("daily_sharpe_low"), m.get("daily_sharpe_high")
    if daily is None:
        return "undefined"
    interval = "" if low is None or high is None else f" [{float(low):.2f}, {float(high):.2f}]"
    return f"{float(daily):.2f}{interval}"


RANKING_COLUMNS = (
    t.Column("rank", "rank", t.integer),
    t.Column("steps", "checkpoint (steps)", t.integer),
    t.Column("reward_mean", "training reward", t.number(3)),
    t.Column("net_pnl", "net P&L", t.dollars),
    t.Column("pnl_per_session", "per session", t.dollars),
    t.Column("win_rate", "sessions profitable", t.percent(0)),
    t.Column("sharpe", "Sharpe (30-min)", t.number(2)),
    t.Column("daily_sharpe", "daily Sharpe [95% CI]", t.text),
    t.Column("max_drawdown", "worst session drawdown", t.percent(2)),
    t.Column("flip_rate", "flips", PER_HOUR),
    t.Column("flagged", "flip-flop episodes", t.text),
)


def ranking_table(
    ranked: Sequence[CheckpointTrace], summaries: Mapping[str, pd.DataFrame]
) -> TableBlock:
    """One row per ranked checkpoint: training reward at save time, then results on the split."""
    rows: list[dict[str, object]] = []
    for c in ranked:
        s = summaries[c.label]
        m = _metrics(c)
        rows.append(
            {
                "rank": c.rank,
                "steps": c.steps,
                "reward_mean": c.training_reward,
                "net_pnl": float(s["net_pnl"].sum()),
                "pnl_per_session": float(s["net_pnl"].mean()),
                "win_rate": float((s["net_pnl"] > 0).mean()),
                "sharpe": m["sharpe"],
                "daily_sharpe": daily_sharpe_text(m),
                "max_drawdown": float(s["max_drawdown"].max()),
                "flip_rate": float(s["flip_rate"].mean()),
                "flagged": f"{int(s['flagged'].sum())} of {len(s)}",
            }
        )
    return TableBlock(
        t.table(
            RANKING_COLUMNS,
            rows,
            row_classes=lambda r: "best" if r["rank"] == 1 else "",
        ),
    )


def patterns_table(ranked: Sequence[CheckpointTrace]) -> TableBlock:
    """Share of steps long, short and flat per checkpoint and ticker, and mean size in shares."""
    rows = []
    for c in ranked:
        pat = position_patterns(c.trace)
        for sym, r in pat.iterrows():
            rows.append({"checkpoint": c.label, "symbol": sym, **r.to_dict()})
    return TableBlock(
        t.table(
            (
                t.Column("checkpoint"),
                t.Column("symbol"),
                t.Column("long", fmt=t.percent(1)),
                t.Column("short", fmt=t.percent(1)),
                t.Column("flat", fmt=t.percent(1)),
                t.Column("mean_abs_shares", "mean position", t.shares),
            ),
            rows,
        )
    )


def trade_counts_table(events: pd.DataFrame) -> TableBlock:
    """Entries, exits, reversals and resizes per ticker."""
    kinds = ("entry", "exit", "reversal", "resize")
    counts = events.groupby(["symbol", "kind"]).size().unstack(fill_value=0)
    rows = [
        {"symbol": sym, **{k: int(counts.loc[sym, k]) if k in counts.columns else 0 for k in kinds}}
        for sym in counts.index
    ]
    return TableBlock(
        t.table((t.Column("symbol"), *(t.Column(k, fmt=t.integer) for k in kinds)), rows),
        caption="Trade events of the best checkpoint over the split.",
    )


def activity_table(summaries: Mapping[str, pd.DataFrame]) -> TableBlock:
    """Mean turnover, holding time, exposure and fills per episode, per checkpoint."""
    rows = [
        {
            "checkpoint": label,
            "turnover": float(s["turnover"].mean()),
            "mean_holding_bars": float(s["mean_holding_bars"].mean()),
            "exposure": float(s["exposure"].mean()),
            "fills": float(s["fills"].mean()),
        }
        for label, s in summaries.items()
    ]
    return TableBlock(
        t.table(
            (
                t.Column("checkpoint"),
                t.Column("turnover", "turnover (traded / capital)", t.multiple(1)),
                t.Column("mean_holding_bars", "mean holding", t.rate("bars")),
                t.Column("exposure", "time in the market", t.percent(0)),
                t.Column("fills", "fills per session", t.number(1)),
            ),
            rows,
        ),
        caption="Means per episode (session).",
    )


EPISODE_COLUMNS = (
    t.Column("net_pnl", "net P&L", t.dollars),
    t.Column("reward", "reward", t.number(3)),
    t.Column("steps", "steps", t.integer),
    t.Column("turnover", "turnover", t.multiple(1)),
    t.Column("fills", "fills", t.integer),
    t.Column("max_drawdown", "max drawdown", t.percent(2)),
    t.Column("exposure", "time in the market", t.percent(0)),
    t.Column("mean_holding_bars", "mean holding", t.rate("bars")),
    t.Column("flip_rate", "flips", PER_HOUR),
)


def good_vs_bad_table(summary: pd.DataFrame, fraction: float = 0.25) -> TableBlock:
    """Means of the best and worst ``fraction`` of episodes by net P&L."""
    means = good_vs_bad(summary, fraction).reset_index(names="group")
    columns = [
        c if c.key != "fills" else t.Column("fills", "fills", t.number(1)) for c in EPISODE_COLUMNS
    ]
    return TableBlock(
        t.table((t.Column("group"), t.Column("episodes", fmt=t.integer), *columns), means),
        caption=f"Best and worst {fraction:.0%} of the best checkpoint's episodes by net P&L.",
    )


def episodes_table(summary: pd.DataFrame) -> TableBlock:
    """Every episode of one checkpoint, worst net P&L first; flagged flip-floppers marked."""
    frame = summary.sort_values("net_pnl", kind="stable").reset_index()
    frame["session"] = pd.to_datetime(frame["session_date"]).dt.strftime("%Y-%m-%d")
    frame["flag"] = np.where(
        frame["flagged_losing"], "flip-flop, losing", np.where(frame["flagged"], "flip-flop", "")
    )
    return TableBlock(
        t.table(
            (t.Column("session"), *EPISODE_COLUMNS, t.Column("flag")),
            frame,
            row_classes=lambda r: "bad" if r["flagged"] else "",
        ),
        sortable=True,
        caption="Every episode of the best checkpoint (click a header to sort).",
    )


def flip_flop_tables(
    ranked: Sequence[CheckpointTrace],
    summaries: Mapping[str, pd.DataFrame],
    rule: FlipFlopRule,
) -> list[Block]:
    """The rule in words, the per-checkpoint flip-flop table and the flagged episodes."""
    rows = []
    for c in ranked:
        s = summaries[c.label]
        rows.append(
            {
                "checkpoint": c.label,
                "episodes": len(s),
                "mean_rate": float(s["flip_rate"].mean()),
                "max_rate": float(s["flip_rate"].max()),
                "flagged": int(s["flagged"].sum()),
                "flagged_losing": int(s["flagged_losing"].sum()),
                "net_pnl": float(s["net_pnl"].sum()),
            }
        )
    blocks: list[Block] = [
        Paragraph(rule.describe(_n_tickers(ranked)).capitalize() + "."),
        TableBlock(
            t.table(
                (
                    t.Column("checkpoint"),
                    t.Column("episodes", fmt=t.integer),
                    t.Column("mean_rate", "mean flips", PER_HOUR),
                    t.Column("max_rate", "most in an episode", PER_HOUR),
                    t.Column("flagged", "flagged", t.integer),
                    t.Column("flagged_losing", "flagged and losing", t.integer),
                    t.Column("net_pnl", "net P&L", t.dollars),
                ),
                rows,
            )
        ),
    ]
    flagged = pd.concat(summaries, names=["checkpoint"])
    flagged = flagged[flagged["flagged"]].reset_index()
    if len(flagged):
        flagged["session"] = pd.to_datetime(flagged["session_date"]).dt.strftime("%Y-%m-%d")
        blocks.append(
            TableBlock(
                t.table(
                    (
                        t.Column("checkpoint"),
                        t.Column("session"),
                        t.Column("flips", "reversals", t.integer),
                        t.Column("flip_rate", "per hour", PER_HOUR),
                        t.Column("net_pnl", "net P&L", t.dollars),
                    ),
                    flagged,
                    row_classes=lambda r: "bad" if r["flagged_losing"] else "",
                ),
                sortable=True,
                caption="Flagged episodes (losing ones highlighted).",
            )
        )
    else:
        blocks.append(Paragraph("No episode of any checkpoint is flagged."))
    return blocks
