"""The top-level configuration: one typed object per run, gathered from section models.

A YAML file may ``extends:`` another; keys missing from the file take the documented defaults.
File names inside a config (``extends:`` and every :data:`~stairways.configbase.ConfigFileRef`
field, such as the reward A/B/C arms) are taken from the folder of the file that writes them.
Command-line overrides are applied as dotted key paths before validation, so they are
validated like everything else and recorded in the resolved config.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from stairways.configbase import (
    CONFIG_DIR,
    Frozen,
    config_file_references,
    load_yaml_with_extends,
    set_by_path,
    validate_model,
)
from stairways.data.settings import DataConfig
from stairways.env.settings import EnvConfig
from stairways.evaluation.diagnostics.settings import DiagnosticsConfig
from stairways.evaluation.settings import EvaluationConfig
from stairways.journal.settings import JournalConfig
from stairways.market.settings import MarketConfig
from stairways.rewards.settings import RewardConfig
from stairways.security.settings import SecurityConfig
from stairways.training.curriculum import omit_shadowed_settings, refuse_shadowed_settings
from stairways.training.settings import TrainingConfig

__all__ = ["CONFIG_DIR", "StairwaysConfig", "dump_config", "load_config"]


class StairwaysConfig(Frozen):
    """Everything that describes a run. Sections are owned by their packages."""

    name: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]+$")
    data: DataConfig = DataConfig()
    market: MarketConfig = MarketConfig()
    env: EnvConfig = EnvConfig()
    reward: RewardConfig = RewardConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()
    journal: JournalConfig = JournalConfig()
    security: SecurityConfig = SecurityConfig()

    @model_validator(mode="after")
    def _one_place_per_value(self) -> Self:
        # A setting a curriculum phase replaces must not also be given (see curriculum.py).
        refuse_shadowed_settings(self, self.training.curriculum)
        return self

    @model_serializer(mode="wrap")
    def _without_shadowed(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The phases are the record of what they replace; writing the unused default as well
        # would make the written config refuse to load.
        data: dict[str, Any] = handler(self)
        return omit_shadowed_settings(data, self.training.curriculum)


def load_config(
    path: Path | str | None = None, overrides: Mapping[str, Any] | None = None
) -> StairwaysConfig:
    """Load and validate a config file (defaults only when ``path`` is None).

    :param path: YAML file, possibly using ``extends:``
    :param overrides: dotted key paths to values, applied before validation
    """
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        p = Path(path)
        data = load_yaml_with_extends(p, references=config_file_references(StairwaysConfig))
        source = str(p)
        data.setdefault("name", p.stem)
    for key, value in (overrides or {}).items():
        data = set_by_path(data, key, value)
    return validate_model(StairwaysConfig, data, source)


def dump_config(cfg: StairwaysConfig) -> str:
    """The fully resolved config as YAML (what run directories record)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
