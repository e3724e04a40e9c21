import math

import numpy as np
import pytest

from stairways.config import StairwaysConfig
from stairways.evaluation.baselines import baseline_targets, run_baseline, run_baselines
from stairways.evaluation.metrics import compute_metrics
from stairways.market.costs import fill_orders, parkinson_sigma
from tests.unit.evaluation.factory import make_panel

LENGTH = 12


def _prices() -> tuple[np.ndarray, np.ndarray]:
    """Two sessions; closes stay at 100 (NVDA) and 250 (MSFT) until the last bar moves."""
    close = np.empty((2, LENGTH, 2))
    close[..., 0] = 100.0
    close[..., 1] = 250.0
    close[0, -1] = (100.8, 249.0)
    close[1, -1] = (99.5, 251.0)
    open_ = close.copy()
    open_[:, 1, 0] = 100.2  # the bar NVDA is bought at
    open_[:, 1, 1] = 250.1
    return open_, close


def _cfg() -> StairwaysConfig:
    return StairwaysConfig.model_validate({"reward": {"name": "v3"}})


def test_baseline_names_are_flat_then_one_buy_and_hold_per_ticker() -> None:
    names = list(baseline_targets(("NVDA", "MSFT")))
    assert names == ["flat", "buy_and_hold_NVDA", "buy_and_hold_MSFT"]


def test_flat_baseline_has_zero_pnl_fees_and_trades() -> None:
    open_, close = _prices()
    result = run_baseline(_cfg(), make_panel(open_, close), "flat", np.zeros(2))
    f = result.trace.frame
    assert len(f) == 2 * LENGTH
    assert (f["step_pnl"] == 0.0).all()
    assert (f["fees"] == 0.0).all()
    m = compute_metrics(result.trace)
    assert (m.total_pnl, m.total_fees, m.trades_per_day, m.hold_rate) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("action_set", ["grid9", "step5"])
def test_buy_and_hold_pnl_equals_hand_computation_minus_costs(action_set: str) -> None:
    open_, close = _prices()
    panel = make_panel(open_, close)
    cfg = StairwaysConfig.model_validate({"market": {"action_set": action_set}})
    costs = cfg.market.costs
    result = run_baseline(cfg, panel, "buy_and_hold_NVDA", np.array([1.0, 0.0]))
    f = result.trace.frame
    sigma = parkinson_sigma(panel.high[..., 0], panel.low[..., 0])
    for s in range(2):
        shares = math.floor(cfg.market.max_position_notional / close[s, 0, 0])
        # Decided on bar 0, filled at the open of bar 1 with bar 0's sigma and volume.
        buy = fill_orders(shares, open_[s, 1, 0], sigma[s, 0], 1e6, costs)
        # The closing step sells at the last close with the last bar's sigma and volume.
        sell = fill_orders(-shares, close[s, -1, 0], sigma[s, -1], 1e6, costs)
        expected = (
            shares * (float(sell.price) - float(buy.price))
            - float(buy.commission)
            - float(sell.commission)
        )
        session = f[f["session"] == s]
        assert session["step_pnl"].sum() == pytest.approx(expected, abs=1e-9)
        assert session["fees"].sum() == pytest.approx(
            float(buy.commission) + float(sell.commission), abs=1e-12
        )
        fills = session.loc[session["fill_qty__NVDA"] != 0.0, "fill_qty__NVDA"].tolist()
        assert fills == [shares, -shares]
        assert (session["fill_qty__MSFT"] == 0.0).all()
        assert session["position__NVDA"].iloc[-1] == 0.0


def test_all_baselines_replay_the_same_sessions() -> None:
    open_, close = _prices()
    results = run_baselines(_cfg(), make_panel(open_, close))
    assert set(results) == {"flat", "buy_and_hold_NVDA", "buy_and_hold_MSFT"}
    for name, r in results.items():
        assert r.trace.meta.policy == name
        assert len(r.trace.frame) == 2 * LENGTH
    msft = compute_metrics(results["buy_and_hold_MSFT"].trace)
    assert msft.trades_per_day == pytest.approx(2.0)
