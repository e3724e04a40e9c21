"""Hyperparameter schedules defined on absolute timesteps.

SB3 calls a schedule with ``progress_remaining`` (1 at the start of a ``learn`` call, 0 at its
end). That fraction depends on the length of the current ``learn`` call, so a resumed run would
replay a schedule from its beginning. Schedules here are functions of the run's absolute
timestep instead: :class:`StepSchedule` adapts one to SB3's interface by reading a
:class:`TimestepClock` that a callback advances on every environment step.

In YAML a schedule is a number (constant) or a mapping with ``kind``::

    learning_rate: 3.0e-4
    learning_rate: {kind: linear, start: 3.0e-4, end: 1.0e-5}            # over the whole run
    learning_rate: {kind: piecewise, points: [[0, 1.0e-4], [50000, 7.0e-5]]}
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from stairways.configbase import Frozen

__all__ = [
    "ConstantSchedule",
    "LinearSchedule",
    "PiecewiseSchedule",
    "Schedule",
    "ScheduleSpec",
    "StepSchedule",
    "TimestepClock",
    "schedule_bounds",
    "schedule_function",
]


class ConstantSchedule(Frozen):
    """The same value at every timestep."""

    kind: Literal["constant"] = "constant"
    value: float


class LinearSchedule(Frozen):
    """Linear from ``start`` at ``start_step`` to ``end`` at ``end_step``, flat outside.

    ``end_step`` left empty means the run's ``total_timesteps``.
    """

    kind: Literal["linear"] = "linear"
    start: float
    end: float
    start_step: int = Field(default=0, ge=0)
    end_step: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_step is not None and self.end_step <= self.start_step:
            raise ValueError(f"end_step {self.end_step} must exceed start_step {self.start_step}")
        return self


class PiecewiseSchedule(Frozen):
    """``points`` are (timestep, value) pairs; a value holds from its timestep to the next.

    With ``interpolate: true`` values are joined by straight lines instead of steps.
    """

    kind: Literal["piecewise"] = "piecewise"
    points: tuple[tuple[int, float], ...] = Field(min_length=1)
    interpolate: bool = False

    @model_validator(mode="after")
    def _sorted(self) -> Self:
        steps = [p[0] for p in self.points]
        if steps[0] != 0:
            raise ValueError(f"the first point must be at timestep 0, got {steps[0]}")
        for a, b in itertools.pairwise(steps):
            if b <= a:
                raise ValueError(f"point timesteps must increase strictly, got {a} then {b}")
        return self


Schedule = Annotated[
    ConstantSchedule | LinearSchedule | PiecewiseSchedule, Field(discriminator="kind")
]
# A plain number in YAML is a constant schedule.
ScheduleSpec = float | Schedule


def schedule_bounds(spec: ScheduleSpec) -> tuple[float, float]:
    """Smallest and largest value the schedule can take (used to validate ranges)."""
    if isinstance(spec, int | float):
        return float(spec), float(spec)
    if isinstance(spec, ConstantSchedule):
        return spec.value, spec.value
    if isinstance(spec, LinearSchedule):
        return min(spec.start, spec.end), max(spec.start, spec.end)
    values = [v for _, v in spec.points]
    return min(values), max(values)


def schedule_function(spec: ScheduleSpec, total_timesteps: int) -> Callable[[int], float]:
    """The schedule as a function of the absolute timestep.

    :param spec: a number or a schedule model
    :param total_timesteps: the run's length, the default end of a linear schedule
    """
    if isinstance(spec, int | float):
        value = float(spec)
        return lambda _step: value
    if isinstance(spec, ConstantSchedule):
        value = spec.value
        return lambda _step: value
    if isinstance(spec, LinearSchedule):
        return _linear(spec, total_timesteps)
    return _piecewise(spec)


def _linear(spec: LinearSchedule, total_timesteps: int) -> Callable[[int], float]:
    start_step = spec.start_step
    end_step = spec.end_step if spec.end_step is not None else max(total_timesteps, start_step + 1)
    start, end = spec.start, spec.end

    def value(step: int) -> float:
        if step <= start_step:
            return start
        if step >= end_step:
            return end
        frac = (step - start_step) / (end_step - start_step)
        return start + frac * (end - start)

    return value


def _piecewise(spec: PiecewiseSchedule) -> Callable[[int], float]:
    points = spec.points
    interpolate = spec.interpolate

    def value(step: int) -> float:
        # Points are few (a handful of phases), so a linear scan is clearer than bisect.
        idx = 0
        for i, (at, _) in enumerate(points):
            if at <= step:
                idx = i
            else:
                break
        at, val = points[idx]
        if not interpolate or idx + 1 == len(points):
            return val
        nxt_at, nxt_val = points[idx + 1]
        return val + (step - at) / (nxt_at - at) * (nxt_val - val)

    return value


class TimestepClock:
    """The run's current timestep, advanced by a callback and read by the schedules."""

    def __init__(self, timesteps: int = 0) -> None:
        self.timesteps = timesteps

    def __repr__(self) -> str:
        return f"TimestepClock({self.timesteps})"


class StepSchedule:
    """An SB3 schedule (``progress_remaining -> value``) that reads the absolute timestep.

    :param fn: value as a function of the timestep
    :param clock: where the current timestep is read
    :param override: optional ``timestep -> value or None``; a value replaces ``fn`` (curricula)
    """

    def __init__(
        self,
        fn: Callable[[int], float],
        clock: TimestepClock,
        override: Callable[[int], float | None] | None = None,
    ) -> None:
        self.fn = fn
        self.clock = clock
        self.override = override

    def value_at(self, step: int) -> float:
        """The value at ``step``."""
        if self.override is not None:
            forced = self.override(step)
            if forced is not None:
                return float(forced)
        return float(self.fn(step))

    def __call__(self, progress_remaining: float) -> float:
        # progress_remaining is ignored on purpose: see the module docstring.
        return self.value_at(self.clock.timesteps)

    def __repr__(self) -> str:
        return f"StepSchedule(at {self.clock.timesteps}: {self.value_at(self.clock.timesteps)})"
