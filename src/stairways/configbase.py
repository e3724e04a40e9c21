"""Base of the typed configuration: frozen models, YAML loading and error formatting.

Every config object is frozen, keyword-only and rejects unknown keys. A bad value fails at load
time with a :class:`~stairways.errors.ConfigError` that names the file, the key path and what is
allowed. Section models live next to the code that uses them; this module holds the base class,
the loader and the top-level :class:`StairwaysConfig` that gathers the sections.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from stairways import resources
from stairways.errors import ConfigError

# The shipped configs (package data; in a checkout the top-level config/ folder).
CONFIG_DIR = resources.config_dir()


class _ConfigFileMarker:
    """Marks a config field that names another config file (see :data:`ConfigFileRef`)."""

    def __repr__(self) -> str:
        return "ConfigFileRef"


CONFIG_FILE_REF = _ConfigFileMarker()
ConfigFileRef = Annotated[Path, CONFIG_FILE_REF]
"""A config field naming another config file. A relative path written in a YAML file is taken
from the folder of the file that wrote it (as ``extends:`` is), so a config folder can be
copied or installed anywhere; a relative path given any other way is taken from the working
directory."""

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
    """Read a YAML mapping; a missing, unreadable or binary file, or a non-mapping: ConfigError."""
    if not path.is_file():
        if path.is_dir():
            raise ConfigError(f"config file {path} is a directory; pass a YAML file")
        raise ConfigError(f"config file not found: {path}")
    text = _read_text(path)
    try:
        data = _parse_yaml(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a mapping at the top level")
    return data


def _parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` through libyaml when it is there (about 8x faster on a run's resolved
    config; the same values): invalid YAML is parsed again by the Python loader, whose error
    quotes the offending line with a caret."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return yaml.safe_load(text)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; unreadable and binary files are refused with what to do."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"cannot read the config file {path}: {err.strerror}. Make it readable "
            "(for example chmod u+r) or pass another file"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        text = ""
        bad = f"byte 0x{raw[err.start]:02x} at offset {err.start} is not UTF-8"
    else:
        nul = text.find("\x00")
        bad = f"it holds a NUL byte at offset {nul}" if nul >= 0 else ""
    if bad:
        raise ConfigError(
            f"config file {path} is not a text file ({bad}): it looks like a binary file or "
            "text in another encoding. Pass the YAML config file, saved as UTF-8"
        )
    return text


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``override``; nested mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _models_in(annotation: Any) -> Iterator[tuple[type[BaseModel], bool]]:
    """Config models inside a field's type, each with whether it sits in a sequence."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, False
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType, Annotated):
        for arg in args[:1] if origin is Annotated else args:
            yield from _models_in(arg)
    elif origin in (tuple, list, Sequence):
        for arg in args:
            if arg is not Ellipsis:
                yield from ((m, True) for m, _ in _models_in(arg))


def config_file_references(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Key paths of the :data:`ConfigFileRef` fields of ``model``; ``"[]"`` stands for every
    item of a list (for example ``("diagnostics", "abc", "arms", "[]", "config")``)."""
    out: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        key = (*prefix, field.alias or name)
        if any(m is CONFIG_FILE_REF for m in field.metadata):
            out.append(key)
        for sub, in_sequence in _models_in(field.annotation):
            out.extend(config_file_references(sub, (*key, "[]") if in_sequence else key))
    return out


def _resolve_references(node: Any, keys: tuple[str, ...], folder: Path) -> Any:
    """``node`` with the relative file names at ``keys`` made absolute from ``folder``."""
    if not keys:
        if isinstance(node, str) and node and not Path(node).is_absolute():
            return str(folder / node)
        return node
    head, rest = keys[0], keys[1:]
    if head == "[]":
        if isinstance(node, list):
            return [_resolve_references(item, rest, folder) for item in node]
        return node
    if isinstance(node, dict) and head in node:
        return {**node, head: _resolve_references(node[head], rest, folder)}
    return node


def load_yaml_with_extends(
    path: Path,
    _seen: tuple[Path, ...] = (),
    *,
    references: Sequence[tuple[str, ...]] = (),
) -> dict[str, Any]:
    """Load a YAML file, resolving an optional ``extends: other.yaml`` (relative to the file).

    :param path: the YAML file
    :param references: key paths naming other files (:func:`config_file_references`); the
        relative names each file writes there are made absolute from that file's folder
    """
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"config files extend each other in a cycle: {chain}")
    data = read_yaml(path)
    for keys in references:
        data = _resolve_references(data, keys, path.parent)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends must be a file name, got {parent!r}")
    base = load_yaml_with_extends(path.parent / parent, (*_seen, path), references=references)
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
