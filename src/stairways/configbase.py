"""Base of the typed configuration: frozen models, YAML loading and error formatting.

Every config object is frozen, keyword-only and rejects unknown keys. A bad value fails at load
time with a :class:`~stairways.errors.ConfigError` that names the file, the key path and what is
allowed. Section models live next to the code that uses them; this module holds the base class,
the loader and the top-level :class:`StairwaysConfig` that gathers the sections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from stairways.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "config"

M = TypeVar("M", bound=BaseModel)


class Frozen(BaseModel):
    """Base of every config section: frozen, keyword-only, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def format_validation_error(err: ValidationError, source: str) -> str:
    """Turn a pydantic error into lines naming the key path, the problem and the given value."""
    lines = [f"invalid configuration in {source}:"]
    for item in err.errors():
        path = ".".join(str(p) for p in item["loc"]) or "<root>"
        given = item.get("input")
        shown = repr(given) if not isinstance(given, dict) else "{...}"
        lines.append(f"  {path}: {item['msg']} (given {shown})")
    return "\n".join(lines)


def validate_model(model: type[M], data: dict[str, Any], source: str) -> M:
    """Build ``model`` from ``data`` or raise ConfigError naming ``source`` and the key path."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping document is a ConfigError."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a mapping at the top level")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``override``; nested mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml_with_extends(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Load a YAML file, resolving an optional ``extends: other.yaml`` (relative to the file)."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"config files extend each other in a cycle: {chain}")
    data = read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends must be a file name, got {parent!r}")
    base = load_yaml_with_extends(path.parent / parent, (*_seen, path))
    return deep_merge(base, data)


def set_by_path(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``data`` with ``dotted`` (``a.b.c``) set to ``value``."""
    keys = dotted.split(".")
    out = dict(data)
    node = out
    for key in keys[:-1]:
        child = node.get(key)
        child = dict(child) if isinstance(child, dict) else {}
        node[key] = child
        node = child
    node[keys[-1]] = value
    return out
