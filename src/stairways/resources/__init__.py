"""Files shipped inside the package: the default configs and the action-trace notebook.

In a source checkout these files live at the top of the repository (``config/`` and
``notebooks/``), where users read and edit them and where the README's commands name them.
This package links both folders (relative symlinks), so a built wheel carries copies of them
and an installed Stairways reads its own files, never a source tree. Code reaches them only
through the functions here (:mod:`importlib.resources`), never by a path relative to the source.

``stairways config copy`` writes the shipped configs into a folder of the user's, so the
README's ``--config config/...`` commands work from any directory.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from stairways.errors import InputError, MissingResourceError

__all__ = [
    "config_dir",
    "copy_configs",
    "notebook",
    "shipped_config",
    "shipped_config_names",
    "source_checkout",
]


def source_checkout() -> Path | None:
    """The repository Stairways is imported from (an editable install), or None when it runs
    from an installed wheel. Only provenance (the git commit in run manifests) asks this."""
    package = Path(__file__).resolve().parents[1]
    root = package.parents[1]
    marker = root / "pyproject.toml"
    if package.parent.name != "src" or not marker.is_file():
        return None
    return root if 'name = "stairways"' in marker.read_text(encoding="utf-8") else None


def _folder(name: str) -> Path:
    """A shipped folder on disk; an installation whose files are not on disk is refused."""
    root = files(__name__) / name
    if not isinstance(root, Path):
        raise MissingResourceError(
            f"the shipped folder {name}/ of stairways is not a directory on disk ({root!r}); "
            "install stairways from its wheel (pip install) rather than importing it from a zip"
        )
    if not root.is_dir():
        raise MissingResourceError(
            f"the shipped folder {root} is missing; the installation is incomplete: reinstall "
            "stairways (in a checkout: `make install`)"
        )
    return root


def config_dir() -> Path:
    """The folder of shipped configs (``extends:`` between them resolves inside it)."""
    return _folder("config")


def shipped_config_names() -> list[str]:
    """Every shipped config file relative to :func:`config_dir` (such as ``tuning/base.yaml``)."""
    root = config_dir()
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml") if p.is_file())


def shipped_config(name: str) -> Path:
    """The shipped config file ``name`` (relative to the config folder, ``.yaml`` optional).

    :param name: for example ``reward_v3`` or ``curriculum/phase2_oos.yaml``
    """
    relative = name if name.endswith(".yaml") else f"{name}.yaml"
    path = config_dir() / relative
    if not path.is_file():
        raise InputError(
            f"no shipped config named {name!r}; the shipped configs are: "
            + ", ".join(shipped_config_names())
        )
    return path


def notebook(name: str) -> Path:
    """The shipped notebook ``name`` (for example ``action_trace_analysis.ipynb``)."""
    path = _folder("notebooks") / name
    if not path.is_file():
        raise MissingResourceError(
            f"the shipped notebook {path} is missing; reinstall stairways (in a checkout: "
            "`make install`)"
        )
    return path


def copy_configs(dest: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy every shipped config into ``dest`` (keeping sub-folders); returns the files written.

    Files already in ``dest`` with the same content are left alone; a file with other content
    is refused, naming every such file, unless ``overwrite`` is set.

    :param dest: target folder (created when missing)
    :param overwrite: replace files whose content differs from the shipped one
    """
    root = config_dir()
    names = shipped_config_names()
    differing = [
        dest / n
        for n in names
        if (dest / n).exists() and (dest / n).read_bytes() != (root / n).read_bytes()
    ]
    if differing and not overwrite:
        raise InputError(
            f"{len(differing)} file(s) in {dest} differ from the shipped configs and would be "
            f"replaced: {', '.join(str(p) for p in differing)}; pass --force to replace them or "
            "choose another folder"
        )
    written: list[Path] = []
    for n in names:
        target = dest / n
        if target.exists() and target.read_bytes() == (root / n).read_bytes():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / n, target)
        except OSError as err:
            raise InputError(
                f"cannot write {target}: {err.strerror}; choose a folder you can write to"
            ) from None
        written.append(target)
    return written
