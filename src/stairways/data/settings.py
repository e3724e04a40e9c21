"""Configuration of the data layer: store, symbols, splits, synthetic market and features."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from stairways.configbase import Frozen
from stairways.data.schema import SYMBOLS_DEFAULT


class DateRange(Frozen):
    """An inclusive range of session dates."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def overlaps(self, other: DateRange) -> bool:
        """Whether the two ranges share at least one day."""
        return self.start <= other.end and other.start <= self.end


def _default_splits() -> dict[str, DateRange]:
    return {
        "train": DateRange(start=date(2022, 1, 3), end=date(2023, 12, 29)),
        "test": DateRange(start=date(2024, 1, 2), end=date(2024, 12, 31)),
        "eval_feb2024": DateRange(start=date(2024, 2, 1), end=date(2024, 2, 29)),
    }


class SyntheticConfig(Frozen):
    """The seeded synthetic market (see :mod:`stairways.data.synthetic`)."""

    seed: int = Field(default=20220103, ge=0, description="Generator seed")
    start: date = date(2022, 1, 3)
    end: date = date(2024, 12, 31)
    signal: str = Field(default="lead_lag", description="Planted signal kind")
    signal_strength: float = Field(default=1.0, ge=0.0, le=10.0, description="0 disables it")


class FeatureConfig(Frozen):
    """Feature computation and normalisation."""

    clip: float = Field(default=5.0, gt=0.0, le=100.0, description="Clip normalised values")
    normalisation_split: str = Field(default="train", description="Split the statistics use")


class DataConfig(Frozen):
    """Where bars live, which symbols trade, and the named splits."""

    store_path: Path = Path("data/stairways.duckdb")
    symbols: tuple[str, ...] = SYMBOLS_DEFAULT
    calendar: str = "XNYS"
    splits: dict[str, DateRange] = Field(default_factory=_default_splits)
    protected_splits: tuple[str, ...] = ("test",)
    synthetic: SyntheticConfig = SyntheticConfig()
    features: FeatureConfig = FeatureConfig()

    @model_validator(mode="after")
    def _known_splits(self) -> Self:
        if not self.symbols:
            raise ValueError("symbols must name at least one ticker")
        for name in self.protected_splits:
            if name not in self.splits:
                raise ValueError(f"protected split {name!r} is not one of {sorted(self.splits)}")
        if self.features.normalisation_split not in self.splits:
            raise ValueError(
                f"features.normalisation_split {self.features.normalisation_split!r} "
                f"is not one of {sorted(self.splits)}"
            )
        return self
