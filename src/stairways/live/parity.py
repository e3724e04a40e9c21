"""Parity of the live loop with the replay evaluation: same actions, fills and P&L on a session.

:func:`compare_with_trace` lines up the loop's steps (one per decision; the fills that followed
it and the equity after them) with the rows of the evaluation trace of the same session
(``stairways evaluate`` writes it) and lists every difference. Values are compared exactly,
since both sides run the same functions on the same numbers; ``tolerance`` exists for a
reader who wants to see near-misses as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from stairways.errors import InputError
from stairways.evaluation.traces import Trace, ticker_column
from stairways.live.loop import StepRecord

__all__ = ["ParityReport", "compare_with_trace"]


@dataclass
class ParityReport:
    """The comparison's outcome: counts, the P&L of both sides and the differences."""

    day: str
    steps: int
    trace_steps: int
    fills: int
    live_pnl: float
    replay_pnl: float
    differences: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        """True when actions, fills and P&L agree at every step."""
        return not self.differences

    def lines(self) -> list[str]:
        """A person's summary: the verdict first."""
        verdict = "EQUAL" if self.equal else f"DIFFERENT ({len(self.differences)} differences)"
        out = [
            f"live loop vs replay evaluation on {self.day}: {verdict}",
            f"{self.steps} decisions (replay {self.trace_steps} steps), {self.fills} fills, "
            f"P&L ${self.live_pnl:+,.2f} live vs ${self.replay_pnl:+,.2f} replay",
        ]
        return out + self.differences[:10]


def _differ(a: float, b: float, tol: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return False
    return not abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def compare_with_trace(
    steps: Sequence[StepRecord],
    trace: Trace,
    day: date,
    symbols: Sequence[str],
    capital: float,
    *,
    tolerance: float = 0.0,
) -> ParityReport:
    """Compare the loop's steps with the trace's rows of session ``day``.

    :param steps: the loop's steps (from an uninterrupted session)
    :param trace: the evaluation trace holding the session
    :param day: the session's date
    :param symbols: tickers in order
    :param capital: the session's starting capital
    :param tolerance: relative tolerance of the float comparisons (0: exact)
    """
    frame = trace.frame
    rows = frame[frame["session_date"].astype(str) == day.isoformat()].sort_values("step")
    if rows.empty:
        raise InputError(f"the evaluation trace holds no session on {day}")
    diffs: list[str] = []
    n_fills = 0
    if len(rows) != len(steps):
        diffs.append(f"step count: live {len(steps)}, replay {len(rows)}")
    actions = rows["action"].to_numpy()
    equity = rows["equity"].to_numpy()
    for i, step in enumerate(steps[: len(rows)]):
        if step.action != int(actions[i]):
            diffs.append(f"step {i}: action live {step.action}, replay {int(actions[i])}")
        if _differ(step.equity, float(equity[i]), tolerance):
            diffs.append(f"step {i}: equity live {step.equity!r}, replay {float(equity[i])!r}")
        for sym in symbols:
            fills = [(q, p) for s, q, p, _ in step.fills if s == sym]
            n_fills += len(fills)
            qty = float(sum(q for q, _ in fills))
            want_qty = float(rows[ticker_column("fill_qty", sym)].to_numpy()[i])
            if qty != want_qty:
                diffs.append(f"step {i} {sym}: filled live {qty:g}, replay {want_qty:g}")
                continue
            if fills and qty != 0.0:
                price = float(sum(abs(q) * p for q, p in fills) / sum(abs(q) for q, _ in fills))
                want = float(rows[ticker_column("fill_price", sym)].to_numpy()[i])
                if _differ(price, want, tolerance):
                    diffs.append(f"step {i} {sym}: fill price live {price!r}, replay {want!r}")
    live_end = steps[-1].equity if steps else capital
    replay_end = float(equity[-1]) if len(equity) else capital
    if _differ(live_end, replay_end, tolerance):
        diffs.append(f"P&L: live {live_end - capital:+.6f}, replay {replay_end - capital:+.6f}")
    return ParityReport(
        day=day.isoformat(),
        steps=len(steps),
        trace_steps=len(rows),
        fills=n_fills,
        live_pnl=float(live_end - capital),
        replay_pnl=float(replay_end - capital),
        differences=diffs,
    )
