"""Named date splits and the guard that keeps training off held-out dates.

Splits live in the config (``DataConfig.splits``); the config refuses splits that overlap, except
a slice lying wholly inside a protected split. The defaults are::

    train       2022-01-03..2023-06-30   learned from (training, the feature normaliser)
    validation  2023-07-03..2023-12-29   held out from training; every development command
                                         (diagnose, trace, tune, seeds, the demo's traces)
                                         evaluates here by default
    test        2024-01-02..2024-12-31   protected; final verdicts only (``stairways evaluate``,
                                         the demo's verdict), every look counted in the test
                                         ledger (:mod:`stairways.data.ledger`)

The validation block is the last half of the training years, so it is as recent as possible
before test and its 126 sessions give development figures a usable precision; train keeps 375
sessions. Sessions are separate episodes and every feature is causal, so no embargo between
train and validation is needed: the first validation session only reads the last train session
to warm its rolling windows, never to learn.

Anything that learns from data (training, fitting the normaliser, tuning on a range) calls
:func:`check_training_range` first. Overlap with a protected split is refused with a
:class:`~stairways.errors.SplitOverlapError` unless ``allow_test_overlap=True``; then a warning is
logged and the returned :class:`TrainingRangeCheck` says so, for the caller to write into the
run manifest. :func:`protected_overlaps` says which protected splits an evaluation touches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from stairways.data.settings import DataConfig, DateRange
from stairways.errors import ConfigError, SplitOverlapError

log = logging.getLogger(__name__)


def split_names(cfg: DataConfig) -> list[str]:
    """Names of the configured splits, sorted."""
    return sorted(cfg.splits)


DEVELOPMENT_SPLIT = "validation"
"""The split development commands (diagnose, trace, tune, seeds) evaluate on by default."""


def resolve_split(cfg: DataConfig, name: str) -> DateRange:
    """The date range of split ``name``; an unknown name is a ConfigError listing the names."""
    try:
        return cfg.splits[name]
    except KeyError:
        hint = ""
        if name == DEVELOPMENT_SPLIT:
            hint = (
                "; development commands evaluate on the validation split by default: add "
                "data.splits.validation (a range inside the training years, disjoint from "
                "train) or name another split"
            )
        raise ConfigError(
            f"unknown split {name!r}; configured splits are {', '.join(split_names(cfg))} "
            f"(data.splits in the config){hint}"
        ) from None


def protected_overlaps(cfg: DataConfig, name: str) -> tuple[str, ...]:
    """Protected splits whose dates split ``name`` touches (itself included when protected)."""
    rng = resolve_split(cfg, name)
    return tuple(p for p in cfg.protected_splits if p == name or cfg.splits[p].overlaps(rng))


def _fmt(rng: DateRange) -> str:
    return f"{rng.start}..{rng.end}"


@dataclass(frozen=True)
class TrainingRangeCheck:
    """Outcome of :func:`check_training_range`, to be written into run manifests.

    :param label: the split name, or ``custom`` for an explicit range
    :param range: the range that will be learned from
    :param overlaps: protected splits it overlaps, with their ranges
    :param override: True when an overlap was allowed by ``allow_test_overlap``
    """

    label: str
    range: DateRange
    overlaps: tuple[tuple[str, DateRange], ...]
    override: bool

    def to_manifest(self) -> dict[str, Any]:
        """Plain data for a run manifest."""
        return {
            "training_range": {
                "label": self.label,
                "start": str(self.range.start),
                "end": str(self.range.end),
            },
            "protected_overlaps": [
                {"split": name, "start": str(r.start), "end": str(r.end)}
                for name, r in self.overlaps
            ],
            "allow_test_overlap_used": self.override,
        }


def check_training_range(
    cfg: DataConfig, what: str | DateRange, *, allow_test_overlap: bool = False
) -> TrainingRangeCheck:
    """Refuse to learn from a range that overlaps a protected split, unless explicitly allowed.

    :param cfg: data config holding the splits and which are protected
    :param what: a split name or an explicit date range
    :param allow_test_overlap: allow the overlap (logged as a warning and recorded)
    """
    if isinstance(what, str):
        label, rng = what, resolve_split(cfg, what)
    else:
        label, rng = "custom", what
    overlaps = tuple(
        (name, cfg.splits[name])
        for name in cfg.protected_splits
        if name != label and cfg.splits[name].overlaps(rng)
    )
    if label in cfg.protected_splits:
        overlaps = ((label, rng), *overlaps)
    if overlaps and not allow_test_overlap:
        listed = "; ".join(f"protected split {n!r} ({_fmt(r)})" for n, r in overlaps)
        raise SplitOverlapError(
            f"training range {label!r} ({_fmt(rng)}) overlaps {listed}. Learn from a range "
            "that does not touch held-out dates, or pass allow_test_overlap "
            "(--allow-test-overlap) to do it anyway; the override is recorded in the run manifest"
        )
    if overlaps:
        log.warning(
            "training range %s (%s) overlaps %s: allowed by allow_test_overlap; results on "
            "those dates are not out of sample",
            label,
            _fmt(rng),
            ", ".join(f"{n} ({_fmt(r)})" for n, r in overlaps),
        )
    return TrainingRangeCheck(label=label, range=rng, overlaps=overlaps, override=bool(overlaps))
