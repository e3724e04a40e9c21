"""``stairways bench startup``: start-up seconds from fresh processes."""

from __future__ import annotations

import pytest

from stairways.bench.startup_bench import run_startup_bench
from stairways.errors import StairwaysError


def test_repeats_below_one_are_refused() -> None:
    with pytest.raises(StairwaysError, match="repeats must be at least 1"):
        run_startup_bench(0)


@pytest.mark.slow  # ten fresh Python processes, three of them training
def test_startup_bench_measures_every_figure_and_only_torch_adam_imports_dynamo() -> None:
    lines: list[tuple[str, str]] = []
    result = run_startup_bench(1, report=lambda name, value: lines.append((name, value)))
    assert [name for name, _ in lines] == [
        "import_torch_s",
        "cli_train_help_s",
        "first_update_s_leanadam",
        "first_update_s_torch_adam",
        "ratio_torch_adam_over_leanadam",
    ]
    assert result.import_torch_s > 0 and result.cli_help_s > 0
    assert result.first_update_s_lean > 0 and result.first_update_s_adam > 0
    # the fact the optimizer choice rests on, not a time
    assert result.dynamo_lean is False
    assert result.dynamo_adam is True
