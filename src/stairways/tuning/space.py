"""Search spaces: which config values a study varies, and how, read from YAML.

A space file names parameters by their dotted path in :class:`~stairways.config.StairwaysConfig`
and gives either ``choices`` (grid or categorical) or a range (``type: float`` / ``type: int``
with ``low``, ``high`` and optionally ``log`` or ``step``) for Bayesian (TPE) search::

    name: mini_grid
    sampler: grid
    budget: {total_timesteps: 20000, seeds_per_trial: 1}
    parameters:
      training.learning_rate: {choices: [1.0e-4, 7.0e-5, 5.0e-5]}
      training.target_kl: {choices: [0.015, 0.0075]}
      training.clip_range:                 # a schedule is a choice among schedule specs
        choices: [0.2, {kind: linear, start: 0.3, end: 0.1}]
      env.drawdown_cap: {type: float, low: 0.02, high: 0.2, log: true}

Every path is checked against the config's schema when the file loads (an unknown path is a
:class:`~stairways.errors.ConfigError` naming it), and every candidate value is validated
against the base config before a study starts. A parameter that a curriculum phase of the base
config replaces (a learning rate, entropy coefficient or drawdown cap the phases set) is
refused, naming the axis and the phase: its trials would all train the same model.

Optuna stores categorical values only as plain scalars, so a choice that is a mapping (a
schedule) is stored as its JSON text, its *label*; :func:`decode` turns labels back to values.
"""

from __future__ import annotations

import itertools
import json
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self, Union

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from pydantic import BaseModel, Field, field_validator, model_validator

from stairways.config import StairwaysConfig, load_config
from stairways.configbase import Frozen, load_yaml_with_extends, set_by_path, validate_model
from stairways.errors import ConfigError
from stairways.training.curriculum import shadows
from stairways.tuning.settings import SearchSettings

__all__ = [
    "ChoiceParam",
    "FloatParam",
    "IntParam",
    "Label",
    "SearchSpace",
    "check_config_path",
    "check_not_shadowed",
    "check_values",
    "decode",
    "distributions",
    "grid_points",
    "label_of",
    "load_space",
    "override_settings",
    "suggest",
    "trial_config",
]

# What Optuna can store as a categorical value.
Label = None | bool | int | float | str


def label_of(value: Any) -> Label:
    """The storable label of a choice: scalars as they are, anything else as sorted JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


class ChoiceParam(Frozen):
    """A finite set of values (a grid axis or a categorical TPE parameter)."""

    type: Literal["choice"] = "choice"
    choices: tuple[Any, ...] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, v: tuple[Any, ...]) -> tuple[Any, ...]:
        labels = [label_of(c) for c in v]
        if len(set(map(repr, labels))) != len(labels):
            raise ValueError(f"choices must be distinct, got {list(v)}")
        return v

    @property
    def labels(self) -> tuple[Label, ...]:
        """The stored label of each choice, in order."""
        return tuple(label_of(c) for c in self.choices)

    def value_of(self, label: Label) -> Any:
        """The choice whose label is ``label``."""
        for choice in self.choices:
            if label_of(choice) == label:
                return choice
        raise ConfigError(f"value {label!r} is not one of the choices {list(self.labels)}")

    def candidates(self) -> tuple[Any, ...]:
        """Values to validate against the config."""
        return self.choices


class FloatParam(Frozen):
    """A continuous range; ``log`` samples uniformly in log space, ``step`` discretises it."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _range(self) -> Self:
        _check_range(self.low, self.high, self.log, self.step)
        return self

    def candidates(self) -> tuple[Any, ...]:
        """Values to validate against the config (the bounds)."""
        return (self.low, self.high)


class IntParam(Frozen):
    """An integer range; ``log`` samples uniformly in log space."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _range(self) -> Self:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        return self

    def candidates(self) -> tuple[Any, ...]:
        """Values to validate against the config (the bounds)."""
        return (self.low, self.high)


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low >= high:
        raise ValueError(f"low {low} must be below high {high}")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, got {low}")
    if log and step is not None:
        raise ValueError("a range cannot have both log and step")


Param = Annotated[ChoiceParam | FloatParam | IntParam, Field(discriminator="type")]


class SearchSpace(SearchSettings):
    """A study: its name, its settings and the parameters it varies."""

    name: str = Field(default="study", pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    parameters: dict[str, Param] = Field(min_length=1)

    @field_validator("parameters", mode="before")
    @classmethod
    def _choice_by_default(cls, v: Any) -> Any:
        # ``{choices: [...]}`` is the common case; writing ``type: choice`` is optional.
        if not isinstance(v, Mapping):
            return v
        out = {}
        for key, spec in v.items():
            if isinstance(spec, Mapping) and "type" not in spec and "choices" in spec:
                spec = {"type": "choice", **spec}
            elif isinstance(spec, list | tuple):
                spec = {"type": "choice", "choices": list(spec)}
            out[key] = spec
        return out

    @model_validator(mode="after")
    def _paths_and_sampler(self) -> Self:
        for path in self.parameters:
            try:
                check_config_path(path)
            except ConfigError as err:
                # As a ValueError, pydantic reports it with the file name and the key path.
                raise ValueError(str(err)) from None
        if self.sampler == "grid":
            ranges = [p for p, spec in self.parameters.items() if not isinstance(spec, ChoiceParam)]
            if ranges:
                raise ValueError(
                    f"the grid sampler needs choices for every parameter; {ranges} are ranges "
                    "(give choices, or use sampler: tpe)"
                )
        return self

    @property
    def grid_size(self) -> int:
        """Number of grid points (the product of the choice counts; 0 for range spaces)."""
        size = 1
        for spec in self.parameters.values():
            if not isinstance(spec, ChoiceParam):
                return 0
            size *= len(spec.choices)
        return size

    def target_trials(self) -> int:
        """Finished trials the study should reach: ``n_trials``, capped at the grid size."""
        if self.sampler == "grid":
            return min(self.n_trials or self.grid_size, self.grid_size)
        if self.n_trials is None:
            raise ConfigError(
                f"space {self.name!r}: the tpe sampler needs n_trials (or --trials N)"
            )
        return self.n_trials


def load_space(path: Path) -> SearchSpace:
    """Read and validate a search-space file (``extends:`` allowed); name defaults to its stem."""
    data = load_yaml_with_extends(path)
    data.setdefault("name", path.stem)
    return validate_model(SearchSpace, data, str(path))


def override_settings(space: SearchSpace, updates: Mapping[str, Any], source: str) -> SearchSpace:
    """A copy of ``space`` with dotted settings (``budget.seeds_per_trial``) replaced, validated."""
    data = space.model_dump(mode="python")
    for key, value in updates.items():
        data = set_by_path(data, key, value)
    return validate_model(SearchSpace, data, source)


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of an annotation, with Annotated and Optional/Union unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


def check_config_path(path: str, root: type[BaseModel] = StairwaysConfig) -> None:
    """Raise ConfigError unless ``path`` (``a.b.c``) names a field of the config schema."""
    alternatives: list[Any] = [root]
    walked: list[str] = []
    for key in path.split("."):
        nxt: list[Any] = []
        known: list[str] = []
        for alt in alternatives:
            if isinstance(alt, type) and issubclass(alt, BaseModel):
                known.extend(alt.model_fields)
                if key in alt.model_fields:
                    nxt.extend(_unwrap(alt.model_fields[key].annotation))
            elif typing.get_origin(alt) is dict:
                # Mappings such as data.splits accept any key.
                nxt.extend(_unwrap(typing.get_args(alt)[1]))
        where = ".".join(walked) or "the top level"
        if not nxt:
            hint = f" (known: {', '.join(sorted(set(known)))})" if known else " (it is a value)"
            raise ConfigError(
                f"unknown parameter path {path!r}: {where} has no field {key!r}{hint}"
            )
        alternatives = nxt
        walked.append(key)


def check_values(
    space: SearchSpace,
    base_config: Path | None,
    base_overrides: Mapping[str, Any],
    source: str,
) -> None:
    """Validate every candidate value (choices, range bounds, grid points) on the base config.

    An axis that a curriculum phase of the base config replaces is refused first.
    """
    check_not_shadowed(space, base_config, base_overrides, source)
    for path, spec in space.parameters.items():
        for value in spec.candidates():
            try:
                trial_config(base_config, base_overrides, {path: value})
            except ConfigError as err:
                raise ConfigError(
                    f"{source}: parameter {path} = {value!r} is invalid: {err}"
                ) from None
    if space.sampler == "grid":
        for point in grid_points(space):
            try:
                trial_config(base_config, base_overrides, decode(space, point))
            except ConfigError as err:
                raise ConfigError(f"{source}: grid point {point} is invalid: {err}") from None


def check_not_shadowed(
    space: SearchSpace,
    base_config: Path | None,
    base_overrides: Mapping[str, Any],
    source: str,
) -> None:
    """Refuse parameters that a curriculum phase of the base config replaces."""
    base = trial_config(base_config, base_overrides, {})
    found = shadows(base.training.curriculum)
    where = str(base_config) if base_config is not None else "the default config"
    for path in space.parameters:
        if path in found:
            raise ConfigError(
                f"{source}: parameter {path} would change nothing in training: in the base "
                f"config {where}, {found[path].describe()} replaces it. Search it on a base "
                "config whose curriculum does not set it (config/tuning/base.yaml turns the "
                "curriculum off), or drop the parameter"
            )


def trial_config(
    base_config: Path | None, base_overrides: Mapping[str, Any], params: Mapping[str, Any]
) -> StairwaysConfig:
    """The base config with the base overrides, then the trial's parameters, applied."""
    return load_config(base_config, {**base_overrides, **params})


def grid_points(space: SearchSpace) -> list[dict[str, Label]]:
    """Every grid point as labels, in a fixed order (the first parameter varies slowest)."""
    names = list(space.parameters)
    axes: list[Sequence[Label]] = []
    for name in names:
        spec = space.parameters[name]
        if not isinstance(spec, ChoiceParam):
            raise ConfigError(f"parameter {name} is a range; a grid needs choices")
        axes.append(spec.labels)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """The Optuna distribution of every parameter (categoricals over labels)."""
    out: dict[str, BaseDistribution] = {}
    for name, spec in space.parameters.items():
        if isinstance(spec, ChoiceParam):
            out[name] = CategoricalDistribution(list(spec.labels))
        elif isinstance(spec, FloatParam):
            out[name] = FloatDistribution(spec.low, spec.high, log=spec.log, step=spec.step)
        else:
            out[name] = IntDistribution(spec.low, spec.high, log=spec.log, step=spec.step)
    return out


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Label]:
    """Ask the trial for every parameter; returns labels (see :func:`decode`)."""
    out: dict[str, Label] = {}
    for name, spec in space.parameters.items():
        if isinstance(spec, ChoiceParam):
            out[name] = trial.suggest_categorical(name, list(spec.labels))
        elif isinstance(spec, FloatParam):
            out[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)
        else:
            out[name] = trial.suggest_int(name, spec.low, spec.high, log=spec.log, step=spec.step)
    return out


def decode(space: SearchSpace, labels: Mapping[str, Any]) -> dict[str, Any]:
    """Config values of a trial's stored labels (a schedule label becomes its mapping again)."""
    out: dict[str, Any] = {}
    for name, spec in space.parameters.items():
        if name not in labels:
            raise ConfigError(f"trial parameters lack {name!r} (have {sorted(labels)})")
        label = labels[name]
        out[name] = spec.value_of(label) if isinstance(spec, ChoiceParam) else label
    return out
