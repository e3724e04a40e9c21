"""Curricula: phases by timestep that change the drawdown cap, entropy and learning rate.

A phase starts at an absolute timestep and lasts until the next one starts. A field left empty
keeps the value in force before the phase (the previous phase's, or the base configuration's),
so a phase only lists what it changes::

    curriculum:
      phases:
        - {start: 0, drawdown_cap: 0.20, ent_coef: 0.05, learning_rate: 1.0e-4}
        - {start: 50000, drawdown_cap: 0.10, ent_coef: 0.02, learning_rate: 7.0e-5}
        - {start: 150000, drawdown_cap: 0.05, ent_coef: 0.01, learning_rate: 3.0e-5}
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Self

from pydantic import Field, model_validator

from stairways.configbase import Frozen

__all__ = ["CurriculumConfig", "CurriculumPhase", "PhaseValues", "phase_index", "resolve_phases"]


class CurriculumPhase(Frozen):
    """One phase: the timestep it starts at and the values it sets."""

    start: int = Field(ge=0, description="First timestep of the phase")
    name: str | None = None
    drawdown_cap: float | None = Field(default=None, gt=0.0, le=1.0, description="Fraction")
    ent_coef: float | None = Field(default=None, ge=0.0, le=1.0)
    learning_rate: float | None = Field(default=None, gt=0.0, le=1.0)


class CurriculumConfig(Frozen):
    """Ordered phases; an empty list means no curriculum."""

    phases: tuple[CurriculumPhase, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.phases:
            return self
        if self.phases[0].start != 0:
            raise ValueError(
                f"the first phase must start at timestep 0, got {self.phases[0].start}"
            )
        for a, b in itertools.pairwise(self.phases):
            if b.start <= a.start:
                raise ValueError(
                    f"phase starts must increase strictly, got {a.start} then {b.start}"
                )
        return self


@dataclass(frozen=True)
class PhaseValues:
    """The values in force during one phase (None: not set by any phase so far)."""

    index: int
    name: str
    start: int
    drawdown_cap: float | None
    ent_coef: float
    learning_rate: float | None


def resolve_phases(curriculum: CurriculumConfig, base_ent_coef: float) -> list[PhaseValues]:
    """Fill each phase's empty fields from the phase before (or the base config).

    :param curriculum: the configured phases
    :param base_ent_coef: entropy coefficient from the training config, used until a phase sets one
    """
    out: list[PhaseValues] = []
    cap: float | None = None
    ent = base_ent_coef
    lr: float | None = None
    for i, phase in enumerate(curriculum.phases):
        cap = phase.drawdown_cap if phase.drawdown_cap is not None else cap
        ent = phase.ent_coef if phase.ent_coef is not None else ent
        lr = phase.learning_rate if phase.learning_rate is not None else lr
        name = phase.name or f"phase{i + 1}"
        out.append(PhaseValues(i, name, phase.start, cap, ent, lr))
    return out


def phase_index(phases: list[PhaseValues], step: int) -> int | None:
    """Index of the phase in force at ``step`` (None without phases)."""
    found: int | None = None
    for p in phases:
        if p.start <= step:
            found = p.index
        else:
            break
    return found
