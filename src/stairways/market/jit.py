"""Numba compilation for the compiled core (market, env, rewards) with a safe disk cache.

Numba's disk cache decides freshness from the file of the cached function alone, so a kernel
cached with an inlined reward would silently keep the old reward after ``rewards/refined.py``
changed. The locator below stamps every cached core function with a hash of all the core's
source files instead: any change to any of them recompiles everything on next use.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from numba import njit
from numba.core.caching import CacheImpl, InTreeCacheLocator

F = TypeVar("F", bound=Callable[..., Any])

_PACKAGE = Path(__file__).resolve().parents[1]
CORE_DIRS: tuple[Path, ...] = tuple(_PACKAGE / d for d in ("market", "env", "rewards"))


@functools.cache
def core_source_stamp() -> str:
    """SHA-256 of every Python file of the compiled core (names and contents)."""
    digest = hashlib.sha256()
    for folder in CORE_DIRS:
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class CoreCacheLocator(InTreeCacheLocator):
    """In-tree cache for core functions whose freshness stamp covers the whole core."""

    def get_source_stamp(self) -> str:
        """The stamp of the whole core, not just the function's own file."""
        return core_source_stamp()

    @classmethod
    def from_function(cls, py_func: Callable[..., Any], py_file: str) -> Any:
        """Serve only functions defined in the core packages."""
        if Path(py_file).resolve().parent not in CORE_DIRS:
            return None
        return super().from_function(py_func, py_file)


if CoreCacheLocator not in CacheImpl._locator_classes:
    CacheImpl._locator_classes.insert(0, CoreCacheLocator)


def core_jit(func: F | None = None, *, inline: bool = False, refcount: bool = True) -> Any:
    """``numba.njit`` with the core's cache; ``inline=True`` inlines the function into callers.

    ``refcount=False`` compiles without numba's reference counting (its runtime, NRT): every
    row view a loop takes (``pf[i]``, ``shares[i]``) otherwise costs a counted increment and
    decrement, about a third of the batched env's step. Only for functions that allocate
    nothing (numba refuses to compile one that does: "NRT required but not enabled") and
    whose arrays all belong to the caller for the length of the call.
    """
    options: dict[str, Any] = {"cache": True}
    if inline:
        options["inline"] = "always"
    if not refcount:
        options["_nrt"] = False
    if func is None:
        return njit(**options)
    return njit(**options)(func)
