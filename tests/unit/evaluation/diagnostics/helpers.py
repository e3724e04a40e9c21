"""Constructed per-session outcomes for diagnostics tests."""

from __future__ import annotations

from collections.abc import Sequence

from stairways.evaluation.diagnostics.outcomes import SessionOutcomes


def outcomes(
    reward: Sequence[float],
    pnl: Sequence[float] | None = None,
    length: Sequence[int] | None = None,
) -> SessionOutcomes:
    """Outcomes of ``len(reward)`` consecutive February 2024 sessions."""
    n = len(reward)
    return SessionOutcomes(
        sessions=tuple(f"2024-02-{i + 1:02d}" for i in range(n)),
        reward=tuple(float(r) for r in reward),
        net_pnl=tuple(float(p) for p in (pnl if pnl is not None else [0.0] * n)),
        length=tuple(int(x) for x in (length if length is not None else [390] * n)),
    )
