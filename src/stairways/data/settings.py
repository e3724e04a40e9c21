"""Configuration of the data layer: store, symbols, splits, synthetic market and features."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal, Self

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
    # train learns, validation serves every development command, test gives final verdicts
    # only (see stairways.data.splits for why the validation block is where it is).
    return {
        "train": DateRange(start=date(2022, 1, 3), end=date(2023, 6, 30)),
        "validation": DateRange(start=date(2023, 7, 3), end=date(2023, 12, 29)),
        "test": DateRange(start=date(2024, 1, 2), end=date(2024, 12, 31)),
    }


class SyntheticConfig(Frozen):
    """The seeded synthetic market (see :mod:`stairways.data.synthetic`)."""

    seed: int = Field(default=20220103, ge=0, le=2**63 - 1, description="Generator seed")
    start: date = date(2022, 1, 3)
    end: date = date(2024, 12, 31)
    signal: Literal["lead_lag", "vwap_reversion", "both"] = Field(
        default="lead_lag", description="Planted signal kind"
    )
    signal_strength: float = Field(default=1.0, ge=0.0, le=10.0, description="0 disables it")
    lead_lag_beta: float = Field(
        default=1.0,
        ge=0.0,
        le=5.0,
        description="Total NVDA drift caused by one unit of MSFT return (at strength 1)",
    )
    lead_lag_halflife_bars: float = Field(
        default=5.0, gt=0.0, le=120.0, description="Half-life of the lead-lag effect in bars"
    )
    vwap_reversion_rate: float = Field(
        default=0.02,
        ge=0.0,
        le=0.5,
        description="Per-bar pull of the price toward the session VWAP (at strength 1)",
    )
    correlation: float = Field(
        default=0.62, ge=0.0, le=0.95, description="Cross-ticker correlation of 1-minute shocks"
    )
    jumps_per_session: float = Field(
        default=0.4, ge=0.0, le=20.0, description="Mean number of price jumps per ticker-session"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class FeatureConfig(Frozen):
    """Feature computation and normalisation."""

    clip: float = Field(default=5.0, gt=0.0, le=100.0, description="Clip normalised values")
    normalisation_split: str = Field(default="train", description="Split the statistics use")
    warmup_sessions: int = Field(
        default=1, ge=1, le=20, description="Earlier sessions read to warm the rolling windows"
    )
    warmup_bars: int = Field(
        default=30,
        ge=21,
        le=5000,
        description="Bars of history a session needs before its open to enter a panel",
    )


class JumpCheckConfig(Frozen):
    """The per-bar jump check of imports and ``stairways data quality`` (see
    :mod:`stairways.data.jumps`).

    A bar is judged against the previous good close of the same session. Its limit, in
    absolute log return, is ``min(max_log_return, max(scale_multiple x scale, min_log_return))``
    where ``scale`` is a rolling robust scale of 1-minute returns (1.4826 x the rolling median
    absolute return over ``scale_window_bars``). The defaults leave every jump of the synthetic
    market alone with room to spare (over twelve seeds its largest moves reach 56 robust scales
    and a log return of 0.072, and none trips even at 65 scales and 0.035) and catch a print
    ten times the price (log return 2.3). On real minute bars of liquid large caps (a robust
    scale near 0.001) a move beyond about 10 % in one minute is flagged.
    """

    enabled: bool = Field(default=True, description="Run the check on imports and quality")
    max_log_return: float = Field(
        default=0.25,
        gt=0.0,
        le=5.0,
        description="A move beyond this absolute log return (about 28 %) is always flagged",
    )
    scale_multiple: float = Field(
        default=100.0,
        gt=0.0,
        le=1000.0,
        description="A move beyond this many robust scales is flagged (above min_log_return)",
    )
    min_log_return: float = Field(
        default=0.05,
        ge=0.0,
        le=5.0,
        description="A move within this absolute log return is never flagged",
    )
    scale_window_bars: int = Field(
        default=390, ge=10, le=20_000, description="Bars in the centred rolling robust scale"
    )
    scale_min_bars: int = Field(
        default=30,
        ge=5,
        le=20_000,
        description="Fewer returns in the window: only max_log_return applies",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_log_return > self.max_log_return:
            raise ValueError(
                f"min_log_return {self.min_log_return} is above max_log_return "
                f"{self.max_log_return}"
            )
        if self.scale_min_bars > self.scale_window_bars:
            raise ValueError(
                f"scale_min_bars {self.scale_min_bars} is above scale_window_bars "
                f"{self.scale_window_bars}"
            )
        return self


class DataConfig(Frozen):
    """Where bars live, which symbols trade, and the named splits."""

    store_path: Path = Path("data/stairways.duckdb")
    symbols: tuple[str, ...] = SYMBOLS_DEFAULT
    calendar: str = "XNYS"
    splits: dict[str, DateRange] = Field(default_factory=_default_splits)
    protected_splits: tuple[str, ...] = ("test",)
    synthetic: SyntheticConfig = SyntheticConfig()
    features: FeatureConfig = FeatureConfig()
    jumps: JumpCheckConfig = JumpCheckConfig()

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
        self._splits_do_not_overlap()
        return self

    def _splits_do_not_overlap(self) -> None:
        """Splits are disjoint, except a slice lying wholly inside a protected split.

        This is what keeps train, validation and test apart: a slice of test (say February
        2024) may sit inside it (both are held out, and evaluating it is a counted look at
        test), but no split may share a day with train or validation.
        """
        names = sorted(self.splits)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                ra, rb = self.splits[a], self.splits[b]
                if not ra.overlaps(rb):
                    continue
                if (a in self.protected_splits and _contains(ra, rb)) or (
                    b in self.protected_splits and _contains(rb, ra)
                ):
                    continue
                raise ValueError(
                    f"splits {a!r} ({ra.start}..{ra.end}) and {b!r} ({rb.start}..{rb.end}) "
                    "overlap; splits must be disjoint, except a slice lying wholly inside a "
                    f"protected split ({', '.join(self.protected_splits) or 'none'})"
                )


def _contains(outer: DateRange, inner: DateRange) -> bool:
    """Whether ``inner`` lies wholly inside ``outer``."""
    return outer.start <= inner.start and inner.end <= outer.end
