"""Curricula: phases by timestep that change the drawdown cap, entropy and learning rate.

A phase starts at an absolute timestep and lasts until the next one starts. A field left empty
keeps the value in force before the phase (the previous phase's, or the base configuration's),
so a phase only lists what it changes::

    curriculum:
      phases:
        - {start: 0, drawdown_cap: 0.20, ent_coef: 0.05, learning_rate: 1.0e-4}
        - {start: 50000, drawdown_cap: 0.10, ent_coef: 0.02, learning_rate: 7.0e-5}
        - {start: 150000, drawdown_cap: 0.05, ent_coef: 0.01, learning_rate: 3.0e-5}

A phase field replaces a setting of the base configuration while the phase is in force (see
:data:`SHADOWED_SETTINGS`), so one value has two places it could be set. A config that sets
both is refused at load (:func:`refuse_shadowed_settings`), naming both places: a learning
rate, entropy coefficient or drawdown cap searched by a grid, passed as a flag or written in the
base config would otherwise be silently ignored. A resolved config leaves the shadowed settings
out when it is written (:func:`omit_shadowed_settings`): the phases are their record.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, Field, model_validator

from stairways.configbase import Frozen

__all__ = [
    "SHADOWED_SETTINGS",
    "CurriculumConfig",
    "CurriculumPhase",
    "PhaseValues",
    "Shadow",
    "is_set",
    "omit_shadowed_settings",
    "phase_index",
    "refuse_shadowed_settings",
    "resolve_phases",
    "shadows",
]

# Phase field -> the setting (dotted path in the top-level config) it replaces while in force.
SHADOWED_SETTINGS: dict[str, str] = {
    "drawdown_cap": "env.drawdown_cap",
    "ent_coef": "training.ent_coef",
    "learning_rate": "training.learning_rate",
}


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


@dataclass(frozen=True)
class Shadow:
    """A setting that a curriculum phase replaces, and the first phase that does."""

    setting: str
    field: str
    phase: int
    phase_name: str
    start: int

    @property
    def phase_key(self) -> str:
        """Where the phase sets it, as a key path (``training.curriculum.phases[0].ent_coef``)."""
        return f"training.curriculum.phases[{self.phase}].{self.field}"

    def describe(self) -> str:
        """``training.curriculum.phases[1].ent_coef (phase 'tighter') from timestep 50000``."""
        return f"{self.phase_key} (phase {self.phase_name!r}) from timestep {self.start}"


def shadows(curriculum: CurriculumConfig) -> dict[str, Shadow]:
    """The settings the phases replace, each with the first phase that sets it."""
    out: dict[str, Shadow] = {}
    for i, phase in enumerate(curriculum.phases):
        for field, setting in SHADOWED_SETTINGS.items():
            if setting not in out and getattr(phase, field) is not None:
                name = phase.name or f"phase{i + 1}"
                out[setting] = Shadow(setting, field, i, name, phase.start)
    return out


def is_set(root: BaseModel, dotted: str) -> bool:
    """Whether the key path ``a.b.c`` was given explicitly (a file or override set it)."""
    node: Any = root
    *parents, last = dotted.split(".")
    for key in parents:
        if key not in node.model_fields_set:
            return False
        node = getattr(node, key)
    return last in node.model_fields_set


def refuse_shadowed_settings(root: BaseModel, curriculum: CurriculumConfig) -> None:
    """Raise ValueError when a setting is given explicitly and a curriculum phase replaces it.

    :param root: the top-level config (its explicitly given keys are checked)
    :param curriculum: its curriculum
    """
    problems = [_conflict(s) for s in shadows(curriculum).values() if is_set(root, s.setting)]
    if problems:
        raise ValueError(
            "; ".join(problems) + ". Set each value in one place: remove the setting, or "
            "remove that field from the curriculum phases (training.curriculum.phases: [] "
            "turns the curriculum off)"
        )


def _conflict(s: Shadow) -> str:
    if s.setting == "env.drawdown_cap":
        # The env's cap still applies where no curriculum runs: the evaluation replay.
        used = (
            "only in the evaluation replay"
            if s.start == 0
            else "only before then and in the evaluation replay"
        )
        return (
            f"{s.setting} is set, but {s.describe()} replaces it in training, so it applies {used}"
        )
    used = "never be used" if s.start == 0 else "stop applying at that timestep"
    return f"{s.setting} is set, but {s.describe()} replaces it, so the value given would {used}"


def omit_shadowed_settings(data: dict[str, Any], curriculum: CurriculumConfig) -> dict[str, Any]:
    """``data`` (a dumped config) without the settings the curriculum replaces."""
    for setting in shadows(curriculum):
        *parents, last = setting.split(".")
        node: Any = data
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return data
