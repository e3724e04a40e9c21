import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.errors import ConfigError, InputError
from stairways.market.actions import action_labels, n_actions, target_shares, targets_after


def test_grid9_action_is_three_times_nvda_plus_msft_with_short_flat_long() -> None:
    actions = np.arange(9)
    out = targets_after("grid9", actions, np.zeros((9, 2)))
    expected = [(n - 1, m - 1) for n, m in itertools.product(range(3), range(3))]
    assert [tuple(row) for row in out.tolist()] == expected
    assert tuple(out[4]) == (0.0, 0.0)  # flat/flat
    assert tuple(out[0]) == (-1.0, -1.0)
    assert tuple(out[8]) == (1.0, 1.0)
    assert tuple(out[7]) == (1.0, 0.0)  # NVDA long, MSFT flat


def test_grid9_ignores_current_targets() -> None:
    cur = np.array([[1.0, -1.0], [-1.0, 1.0]])
    out = targets_after("grid9", np.array([4, 4]), cur)
    assert out.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_step5_when_hold_then_keeps_open_positions() -> None:
    cur = np.array([[1.0, -1.0], [0.0, 1.0], [-1.0, 0.0]])
    out = targets_after("step5", np.zeros(3, dtype=np.int64), cur)
    assert np.array_equal(out, cur)


def test_step5_moves_one_ticker_one_step_and_clips() -> None:
    cur = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 1.0]])
    out = targets_after("step5", np.array([1, 1, 4, 2]), cur)
    assert out.tolist() == [[1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 1.0]]
    out = targets_after("step5", np.array([3, 2]), np.array([[0.0, 0.0], [1.0, 1.0]]))
    assert out.tolist() == [[0.0, 1.0], [0.0, 1.0]]


@given(
    st.lists(st.integers(0, 4), min_size=1, max_size=60),
    st.tuples(st.sampled_from([-1.0, 0.0, 1.0]), st.sampled_from([-1.0, 0.0, 1.0])),
)
def test_step5_single_ticker_actions_never_change_the_other_leg(
    actions: list[int], start: tuple[float, float]
) -> None:
    cur = np.array([start])
    for a in actions:
        new = targets_after("step5", np.array([a]), cur)
        assert set(new.ravel().tolist()) <= {-1.0, 0.0, 1.0}
        if a in (1, 2):
            assert new[0, 1] == cur[0, 1]
            assert new[0, 0] == min(1.0, max(-1.0, cur[0, 0] + (1 if a == 1 else -1)))
        elif a in (3, 4):
            assert new[0, 0] == cur[0, 0]
            assert new[0, 1] == min(1.0, max(-1.0, cur[0, 1] + (1 if a == 3 else -1)))
        else:
            assert np.array_equal(new, cur)
        cur = new


def test_batch_mapping_equals_row_by_row_mapping() -> None:
    rng = np.random.default_rng(3)
    cur = rng.choice([-1.0, 0.0, 1.0], size=(50, 2))
    acts = rng.integers(0, 5, size=50)
    batch = targets_after("step5", acts, cur)
    rows = np.vstack([targets_after("step5", acts[i : i + 1], cur[i : i + 1]) for i in range(50)])
    assert np.array_equal(batch, rows)


def test_counts_and_labels() -> None:
    assert n_actions("grid9", 2) == 9
    assert n_actions("step5", 2) == 5
    assert action_labels("grid9", ("NVDA", "MSFT"))[4] == "NVDA flat/MSFT flat"
    assert action_labels("grid9", ("NVDA", "MSFT"))[2] == "NVDA short/MSFT long"
    assert action_labels("step5", ("NVDA", "MSFT")) == [
        "hold",
        "NVDA up",
        "NVDA down",
        "MSFT up",
        "MSFT down",
    ]


def test_out_of_range_action_or_unknown_set_is_refused() -> None:
    with pytest.raises(InputError, match=r"\[0, 8\]"):
        targets_after("grid9", np.array([9]), np.zeros((1, 2)))
    with pytest.raises(ConfigError, match="unknown action set"):
        n_actions("grid27", 2)


def test_target_shares_are_whole_and_within_notional() -> None:
    assert target_shares(1.0, 5000.0, 450.0) == 11.0
    assert target_shares(-1.0, 5000.0, 450.0) == -11.0
    assert target_shares(0.0, 5000.0, 450.0) == 0.0
    assert target_shares(1.0, 5000.0, 5000.0) == 1.0
