"""Do the reward and the money agree? The reward/P&L sign-disagreement check.

An episode's reward ``R_e`` (sum of step rewards) and its net P&L ``P_e`` (sum of net step P&L)
*disagree* when one is positive and the other negative. Episodes where either is exactly zero
are undecided and left out of the share. A share of disagreeing episodes above one half means
the agent is mostly paid for episodes that lose money (or punished for ones that make money):
the reward pays for something other than money, which is reward hacking.

This is the one implementation of the check: the evaluation gates use it
(``reward_pnl_disagreement``), and the reward audit of :mod:`stairways.analysis.reward_audit`
flags it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Disagreement:
    """How many decided episodes there were and in how many reward and P&L disagreed in sign."""

    episodes: int
    decided: int
    disagreeing: int

    @property
    def share(self) -> float | None:
        """Share of decided episodes that disagree; None when no episode is decided."""
        return self.disagreeing / self.decided if self.decided else None


def sign_disagreement(reward: np.ndarray, pnl: np.ndarray) -> Disagreement:
    """Count episodes whose summed reward and net P&L have opposite signs.

    :param reward: per-episode reward sums
    :param pnl: per-episode net P&L, in the same episode order
    """
    r = np.asarray(reward, dtype=np.float64)
    p = np.asarray(pnl, dtype=np.float64)
    if r.shape != p.shape:
        raise ValueError(f"reward and P&L need one value per episode, got {r.shape} and {p.shape}")
    decided = (r != 0.0) & (p != 0.0)
    disagree = decided & (np.sign(r) != np.sign(p))
    return Disagreement(
        episodes=len(r), decided=int(decided.sum()), disagreeing=int(disagree.sum())
    )
