"""``stairways bench learning``'s pieces: its grid, its verdict and the text it prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.bench.learning_bench import (
    BackendLearning,
    LearningComparison,
    StrengthRow,
    comparison_grid,
    comparison_text,
    write_readme_block,
)
from stairways.errors import InputError
from stairways.evaluation.settings import PowerConfig


def test_grid_runs_strength_zero_on_the_same_markets_and_seeds_without_arms() -> None:
    p = PowerConfig(strengths=(0.0, 1.0), market_seeds=(101, 102), training_seeds=(0, 1, 2))
    assert p.null_runs > 6 and p.null_arms  # the power study's own no-signal grid is larger
    g = comparison_grid(p)
    assert g.markets_of(0.0) == g.markets_of(1.0) == (101, 102)
    assert g.training_seeds_of(0.0) == g.training_seeds_of(1.0) == (0, 1, 2)
    assert g.null_arms == ()
    assert (g.strengths, g.total_timesteps, g.split) == (p.strengths, p.total_timesteps, p.split)


def _comparison(sb3: list[tuple[int, float]], fused: list[tuple[int, float]]) -> LearningComparison:
    """Strength 0 then 1; each entry is (passed of 6, median daily Sharpe)."""

    def learning(name: str, rows: list[tuple[int, float]]) -> BackendLearning:
        made = tuple(
            StrengthRow(s, 6, k, (sharpe - 1.0, sharpe, sharpe + 1.0))
            for s, (k, sharpe) in zip((0.0, 1.0), rows, strict=True)
        )
        return BackendLearning(name, made, 10.0, Path(f"/tmp/{name}"))

    grid = PowerConfig(strengths=(0.0, 1.0), market_seeds=(101,), training_seeds=(0,))
    return LearningComparison(
        learning("sb3", sb3), learning("fused", fused), grid, "n_envs 8", "n_envs 64"
    )


pass_count = st.integers(0, 6)
sharpe = st.floats(-20, 20, allow_nan=False)


@given(a0=pass_count, a1=pass_count, b0=pass_count, b1=pass_count, sa=sharpe, sb=sharpe)
def test_fused_matches_exactly_when_as_good_with_signal_and_no_worse_without(
    a0: int, a1: int, b0: int, b1: int, sa: float, sb: float
) -> None:
    c = _comparison([(a0, 0.0), (a1, sa)], [(b0, 0.0), (b1, sb)])
    assert c.matches == (b0 <= a0 and b1 >= a1 and sb >= sa)


def test_printed_text_holds_the_table_and_verdict_and_the_readme_block_no_folders() -> None:
    c = _comparison([(0, -1.0), (6, 9.0)], [(0, -2.0), (6, 11.0)])
    printed = comparison_text(c)
    assert "| 1 | fused | 6 | 6/6 | 11.000 | 10.000 | 12.000 |" in printed
    assert printed.endswith("fused matches sb3: yes")
    assert "judged on validation; sb3: n_envs 8; fused: n_envs 64" in printed
    assert "/tmp/sb3" in printed
    assert "/tmp/sb3" not in comparison_text(c, folders=False)


def test_readme_block_replaced_between_markers_and_refused_without_them(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- learning-table:begin x -->\nold\n<!-- learning-table:end -->\nb\n")
    write_readme_block(readme, "new", dry_run=True)
    assert "old" in readme.read_text()  # a dry run only checks
    write_readme_block(readme, "new")
    assert readme.read_text() == (
        "a\n<!-- learning-table:begin x -->\nnew\n<!-- learning-table:end -->\nb\n"
    )
    readme.write_text("no markers\n")
    with pytest.raises(InputError, match=r"--readme .*README\.md.*learning-table:begin"):
        write_readme_block(readme, "new", dry_run=True)
