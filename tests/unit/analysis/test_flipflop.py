import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.analysis.flipflop import (
    FlipFlopRule,
    count_flips,
    detect_flip_flops,
    flip_mask,
    flip_rate,
    random_flip_rate,
)
from stairways.errors import InputError

positions_1d = st.lists(st.sampled_from([-2.0, -1.0, 0.0, 1.0, 3.0]), min_size=0, max_size=80)


def _trace(episodes: dict[str, tuple[list[float], list[float], list[float]]]) -> pd.DataFrame:
    rows = []
    for name, (nvda, msft, pnl) in episodes.items():
        for step, (a, b, p) in enumerate(zip(nvda, msft, pnl, strict=True)):
            rows.append(
                {
                    "session": name,
                    "step": step,
                    "position__NVDA": a,
                    "position__MSFT": b,
                    "step_pnl": p,
                }
            )
    return pd.DataFrame(rows)


def test_direct_reversal_is_a_flip_at_the_step_the_sign_turns() -> None:
    mask = flip_mask(np.array([0, 1, 1, -1, -1, 1]), window=1)
    assert mask.tolist() == [False, False, False, True, False, True]


def test_reversal_through_flat_counts_only_within_the_window() -> None:
    # long at step 0, flat for 2 bars, short at step 3: gap of 3 bars
    pos = np.array([1.0, 0.0, 0.0, -1.0])
    assert int(count_flips(pos, window=3)) == 1
    assert int(count_flips(pos, window=2)) == 0


def test_entering_and_leaving_the_same_side_is_not_a_flip() -> None:
    pos = np.array([1.0, 0.0, 1.0, 0.0, 2.0, 0.0, -0.0])
    assert int(count_flips(pos, window=10)) == 0


def test_tiny_positions_within_tolerance_count_as_flat() -> None:
    pos = np.array([1.0, -1e-12, 1.0])
    assert int(count_flips(pos, window=5, tolerance=1e-9)) == 0
    assert int(count_flips(pos, window=5, tolerance=0.0)) == 2


def test_flips_are_counted_per_ticker_column() -> None:
    pos = np.array([[1, 1], [-1, 1], [1, 1], [1, -1]], dtype=float)
    assert count_flips(pos, window=1).tolist() == [2, 1]


def test_nan_positions_are_refused() -> None:
    with pytest.raises(InputError, match="NaN"):
        flip_mask(np.array([1.0, np.nan]), window=2)


def test_rule_with_zero_window_is_refused() -> None:
    with pytest.raises(InputError, match="window"):
        FlipFlopRule(window=0)


@given(positions_1d, st.integers(min_value=1, max_value=20), st.floats(0.1, 100.0))
def test_flip_count_ignores_position_size_and_mirror_image(
    pos: list[float], window: int, scale: float
) -> None:
    arr = np.asarray(pos, dtype=float)
    base = int(count_flips(arr, window))
    assert int(count_flips(arr * scale, window)) == base
    assert int(count_flips(-arr, window)) == base


@given(positions_1d, st.integers(min_value=1, max_value=20))
def test_flips_grow_with_the_window_and_never_exceed_the_sign_changes(
    pos: list[float], window: int
) -> None:
    arr = np.asarray(pos, dtype=float)
    held = np.sign(arr[arr != 0])
    sign_changes = int((held[1:] != held[:-1]).sum()) if held.size else 0
    small, large = int(count_flips(arr, window)), int(count_flips(arr, window + 5))
    assert small <= large <= sign_changes
    assert int(count_flips(arr, len(arr) + 1)) == sign_changes


@settings(max_examples=50)
@given(st.integers(0, 10_000), st.integers(1, 100_000))
def test_flip_rate_is_flips_per_sixty_bars(flips: int, steps: int) -> None:
    assert flip_rate(flips, steps) == pytest.approx(flips * 60 / steps)


def test_flip_flopping_episode_is_flagged_and_calm_episode_is_not() -> None:
    n = 120
    # Flip-flopper: NVDA reverses every 2 bars, loses money.
    flipper = [1.0 if (i // 2) % 2 == 0 else -1.0 for i in range(n)]
    # Calm: long for the first half, flat after, one short stint late and far from the long.
    calm = [1.0] * 50 + [0.0] * 50 + [-1.0] * 20
    trace = _trace(
        {
            "2024-02-01": (flipper, [0.0] * n, [-0.5] * n),
            "2024-02-02": (calm, [0.0] * n, [0.1] * n),
        }
    )
    rule = FlipFlopRule(window=3)
    out = detect_flip_flops(
        trace,
        episode_columns=["session"],
        position_columns=["position__NVDA", "position__MSFT"],
        pnl_column="step_pnl",
        rule=rule,
        order_column="step",
    )
    bad, good = out.loc["2024-02-01"], out.loc["2024-02-02"]
    assert bad["flips"] == 59  # a reversal every 2 bars over 120 bars
    assert bad["flip_rate"] == pytest.approx(59 * 60 / 120)
    assert bool(bad["flagged"]) and bool(bad["flagged_losing"])
    assert bad["net_pnl"] == pytest.approx(-60.0)
    assert good["flips"] == 0
    assert not bool(good["flagged"]) and not bool(good["flagged_losing"])
    assert good["flips_position__NVDA"] == 0


def test_flagged_but_profitable_episode_is_not_flagged_as_losing() -> None:
    n = 60
    flipper = [1.0 if i % 2 == 0 else -1.0 for i in range(n)]
    trace = _trace({"d": (flipper, [0.0] * n, [1.0] * n)})
    out = detect_flip_flops(
        trace,
        episode_columns=["session"],
        position_columns=["position__NVDA"],
        pnl_column="step_pnl",
        rule=FlipFlopRule(window=1),
    )
    assert bool(out.loc["d", "flagged"]) and not bool(out.loc["d", "flagged_losing"])


def test_steps_are_put_in_order_before_counting() -> None:
    trace = _trace({"d": ([1.0, 0.0, 0.0, 0.0, -1.0], [0.0] * 5, [0.0] * 5)})
    shuffled = trace.iloc[[4, 0, 2, 1, 3]]
    kwargs = dict(
        episode_columns=["session"],
        position_columns=["position__NVDA"],
        pnl_column="step_pnl",
        rule=FlipFlopRule(window=2),
    )
    ordered = detect_flip_flops(shuffled, order_column="step", **kwargs)  # type: ignore[arg-type]
    assert ordered.loc["d", "flips"] == 0
    unordered = detect_flip_flops(shuffled, **kwargs)  # type: ignore[arg-type]
    assert unordered.loc["d", "flips"] == 1  # rows taken as given: -1 then 1 right after


def test_missing_position_column_names_the_column() -> None:
    trace = _trace({"d": ([1.0], [0.0], [0.0])})
    with pytest.raises(InputError, match="position__AAPL"):
        detect_flip_flops(
            trace,
            episode_columns=["session"],
            position_columns=["position__AAPL"],
            pnl_column="step_pnl",
            rule=FlipFlopRule(),
        )


def test_default_rule_flags_above_a_quarter_of_the_random_rate() -> None:
    rule = FlipFlopRule()
    assert (rule.window, rule.share) == (5, 0.25)
    assert random_flip_rate(5, 2) == pytest.approx(39.835, abs=1e-3)
    assert rule.threshold(2) == pytest.approx(9.959, abs=1e-3)
    assert "9.96" not in rule.describe(2) and "10.0 flips per 60 bars" in rule.describe(2)


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 8), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_random_rate_matches_the_detector_on_random_positions(
    window: int, tickers: int, seed: int
) -> None:
    # Positions drawn uniformly from short, flat and long every bar, counted by the detector.
    bars = 60_000
    pos = np.random.default_rng(seed).integers(-1, 2, size=(bars, tickers)).astype(float)
    measured = flip_rate(int(count_flips(pos, window).sum()), bars)
    expected = random_flip_rate(window, tickers)
    # 60,000 bars: the standard error of the rate is below 1 % of it
    assert measured == pytest.approx(expected, rel=0.04)


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5, float("nan")])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(InputError, match="share"):
        FlipFlopRule(share=share)


def test_a_deliberate_profitable_trader_is_not_flagged_and_a_flip_flopper_is() -> None:
    n = 390
    # Deliberate: holds NVDA for 40-bar stretches, reversing through a few flat bars, about
    # three reversals an hour, and makes money.
    deliberate = []
    side = 1.0
    while len(deliberate) < n:
        deliberate += [side] * 36 + [0.0] * 4
        side = -side
    deliberate = deliberate[:n]
    # Flip-flopper: reverses every 4 bars (15 per hour) and loses money.
    flipper = [1.0 if (i // 4) % 2 == 0 else -1.0 for i in range(n)]
    trace = _trace(
        {
            "deliberate": (deliberate, [0.0] * n, [0.3] * n),
            "flipper": (flipper, [0.0] * n, [-0.4] * n),
        }
    )
    out = detect_flip_flops(
        trace,
        episode_columns=["session"],
        position_columns=["position__NVDA", "position__MSFT"],
        pnl_column="step_pnl",
        rule=FlipFlopRule(),
        order_column="step",
    )
    good, bad = out.loc["deliberate"], out.loc["flipper"]
    assert good["flip_rate"] == pytest.approx(9 * 60 / n)  # 9 reversals in the session
    assert not bool(good["flagged"])
    assert bad["flip_rate"] > FlipFlopRule().threshold(2)
    assert bool(bad["flagged"]) and bool(bad["flagged_losing"])
