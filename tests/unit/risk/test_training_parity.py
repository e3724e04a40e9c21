"""The paper stage lets through exactly what the training env trades (one action meaning)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.market.actions import GRID9, apply_action, target_shares
from stairways.market.settings import MarketConfig
from stairways.risk.types import Decision
from tests.unit.risk.helpers import account, intent, new_governor


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.floats(5.0, 1000.0),
    st.floats(5.0, 1000.0),
    st.integers(0, 8),
    st.integers(0, 8),
)
def test_paper_approves_every_grid9_move_at_the_training_size_unchanged(
    nvda: float, msft: float, before: int, after: int
) -> None:
    market = MarketConfig()
    prices = {"NVDA": nvda, "MSFT": msft}
    held = np.zeros(2)
    apply_action(GRID9, before, held, held)
    wanted = np.zeros(2)
    apply_action(GRID9, after, wanted, wanted)
    positions = {
        s: target_shares(float(held[j]), market.max_position_notional, prices[s])
        for j, s in enumerate(("NVDA", "MSFT"))
    }
    gov = new_governor("paper")
    acct = account(positions=positions, prices=prices)
    for j, sym in enumerate(("NVDA", "MSFT")):
        target = target_shares(float(wanted[j]), market.max_position_notional, prices[sym])
        v = gov.check(intent(sym, target=target), acct)
        if target == positions[sym]:
            assert v.decision is Decision.REJECT  # nothing to do
        else:
            assert v.decision is Decision.APPROVE, [r.detail for r in v.reasons]
            assert v.position_after == target
