"""Named splits: defaults, lookup, overlap rules and the training-range guard."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.config import load_config
from stairways.data.settings import DataConfig, DateRange
from stairways.data.splits import (
    DEVELOPMENT_SPLIT,
    check_training_range,
    protected_overlaps,
    resolve_split,
    split_names,
)
from stairways.errors import ConfigError, SplitOverlapError


def _r(a: str, b: str) -> dict[str, str]:
    return {"start": a, "end": b}


def test_default_splits_are_train_a_held_out_validation_half_year_and_the_test_year() -> None:
    cfg = DataConfig()
    assert split_names(cfg) == ["test", "train", "validation"]
    assert resolve_split(cfg, "train") == DateRange(start=date(2022, 1, 3), end=date(2023, 6, 30))
    assert resolve_split(cfg, "validation") == DateRange(
        start=date(2023, 7, 3), end=date(2023, 12, 29)
    )
    assert resolve_split(cfg, "test") == DateRange(start=date(2024, 1, 2), end=date(2024, 12, 31))
    assert cfg.protected_splits == ("test",)
    assert DEVELOPMENT_SPLIT == "validation"
    assert cfg.features.normalisation_split == "train"


def test_validation_is_held_out_from_training_and_touches_no_test_date() -> None:
    cfg = DataConfig()
    assert not cfg.splits["train"].overlaps(cfg.splits["validation"])
    assert protected_overlaps(cfg, "validation") == ()
    assert protected_overlaps(cfg, "test") == ("test",)


def test_unknown_split_is_a_config_error_listing_the_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown split 'valid'.*test, train, validation"):
        resolve_split(DataConfig(), "valid")


def test_a_config_without_validation_says_how_to_add_it() -> None:
    cfg = DataConfig(
        splits={"train": _r("2022-01-03", "2023-12-29"), "test": _r("2024-01-02", "2024-12-31")}
    )
    with pytest.raises(ConfigError, match=r"add data\.splits\.validation"):
        resolve_split(cfg, "validation")


def test_training_on_the_train_split_passes_without_override() -> None:
    check = check_training_range(DataConfig(), "train")
    assert check.override is False and check.overlaps == ()
    assert check.to_manifest()["allow_test_overlap_used"] is False


def test_training_on_a_range_overlapping_test_is_refused_naming_both_ranges() -> None:
    rng = DateRange(start=date(2023, 6, 1), end=date(2024, 1, 31))
    with pytest.raises(SplitOverlapError) as err:
        check_training_range(DataConfig(), rng)
    message = str(err.value)
    assert "2023-06-01..2024-01-31" in message and "'test' (2024-01-02..2024-12-31)" in message
    assert "allow_test_overlap" in message


def test_training_on_a_slice_of_test_is_refused_because_it_lies_in_test() -> None:
    splits = {
        **DataConfig().splits,
        "feb2024": DateRange(start=date(2024, 2, 1), end=date(2024, 2, 29)),
    }
    cfg = DataConfig(splits=splits)
    with pytest.raises(SplitOverlapError, match=r"'feb2024'.*'test'"):
        check_training_range(cfg, "feb2024")
    assert protected_overlaps(cfg, "feb2024") == ("test",)


def test_override_allows_the_overlap_warns_and_is_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="stairways.data.splits"):
        check = check_training_range(DataConfig(), "test", allow_test_overlap=True)
    assert check.override is True
    assert [name for name, _ in check.overlaps] == ["test"]
    manifest = check.to_manifest()
    assert manifest["allow_test_overlap_used"] is True
    assert manifest["protected_overlaps"] == [
        {"split": "test", "start": "2024-01-02", "end": "2024-12-31"}
    ]
    assert any("not out of sample" in r.getMessage() for r in caplog.records)


def test_eval_slice_inside_test_is_accepted_but_a_slice_inside_train_is_refused() -> None:
    base = {"train": _r("2022-01-03", "2023-12-29"), "test": _r("2024-01-02", "2024-12-31")}
    ok = DataConfig(splits={**base, "eval_feb2024": _r("2024-02-01", "2024-02-29")})
    assert "eval_feb2024" in ok.splits
    with pytest.raises(ValueError, match=r"'diag' .* and 'train' .* overlap"):
        DataConfig(splits={**base, "diag": _r("2023-02-01", "2023-02-28")})


def test_validation_split_is_supported_when_it_does_not_overlap_train() -> None:
    cfg = load_config(
        None,
        {
            "data.splits": {
                "train": _r("2022-01-03", "2023-06-30"),
                "validation": _r("2023-07-03", "2023-12-29"),
                "test": _r("2024-01-02", "2024-12-31"),
            }
        },
    ).data
    assert resolve_split(cfg, "validation").end == date(2023, 12, 29)
    assert check_training_range(cfg, "validation").override is False
    with pytest.raises(ConfigError, match=r"data: .*'train' .*'validation' .* overlap"):
        load_config(
            None,
            {
                "data.splits": {
                    "train": _r("2022-01-03", "2023-12-29"),
                    "validation": _r("2023-07-03", "2023-12-29"),
                    "test": _r("2024-01-02", "2024-12-31"),
                }
            },
        )


@given(start=st.integers(0, 1200), length=st.integers(0, 400))
def test_guard_refuses_exactly_the_ranges_that_share_a_day_with_test(
    start: int, length: int
) -> None:
    cfg = DataConfig()
    lo = date(2022, 1, 1) + timedelta(days=start)
    rng = DateRange(start=lo, end=lo + timedelta(days=length))
    touches_test = rng.end >= date(2024, 1, 2) and rng.start <= date(2024, 12, 31)
    if touches_test:
        with pytest.raises(SplitOverlapError):
            check_training_range(cfg, rng)
        assert check_training_range(cfg, rng, allow_test_overlap=True).override
    else:
        assert check_training_range(cfg, rng).override is False
