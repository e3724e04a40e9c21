"""Where a command will write, checked before it starts its work.

A read-only output directory must fail in a second with a message naming the directory, the
option that chose it and the fix, not after minutes of loading data with an ``OSError``
traceback. :func:`require_writable_dir` is that check; :func:`file_error_message` words an
``OSError`` that still happens later (the CLI shows it instead of a traceback).
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path

from stairways.errors import InputError

__all__ = ["FILE_ERRNOS", "file_error_message", "require_writable_dir", "unwritable_reason"]

# OSErrors about the file system rather than about Stairways: the operator fixes them.
FILE_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
    }
)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (what a ``mkdir -p`` would write into)."""
    current = path.absolute()
    while not current.exists() and current.parent != current:
        current = current.parent
    return current


def _owner(st: os.stat_result) -> str:
    try:
        return pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        return str(st.st_uid)


def unwritable_reason(directory: Path) -> str | None:
    """Why this process cannot create files in the existing ``directory``, or None if it can."""
    if os.access(directory, os.W_OK | os.X_OK):
        return None
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return f"{directory} is on a read-only file system"
        st = directory.stat()
    except OSError as err:
        return f"{directory} cannot be examined ({err.strerror})"
    mode = stat.filemode(st.st_mode)
    return f"{directory} is not writable by this user (permissions {mode}, owner {_owner(st)})"


def require_writable_dir(path: Path | str, option: str, alternative: str | None = None) -> Path:
    """Refuse a directory the command could not create or write, before any work is done.

    Nothing is created: the directory, or the ancestor it would be created in, is examined.

    :param path: the output directory (it may not exist yet)
    :param option: how the user chose it, for the message (``--out``, ``--runs-dir``, ...)
    :param alternative: the other fix besides making it writable (default: choose another
        directory with ``option``)
    :raises InputError: naming the directory, the reason and the fix
    """
    target = Path(path)
    other = alternative or f"choose another directory with {option}"
    existing = _nearest_existing(target)
    if not existing.is_dir():
        raise InputError(
            f"cannot write to {target} (chosen by {option}): {existing} is a file, so the "
            f"directory cannot be created there. To go on, {other}"
        )
    reason = unwritable_reason(existing)
    if reason is not None:
        where = "" if existing == target.absolute() else f", which would be created in {existing}"
        raise InputError(
            f"cannot write to {target} (chosen by {option}){where}: {reason}. Make it writable "
            f"(for example chmod u+w {existing}) or {other}"
        )
    return target


def file_error_message(err: OSError) -> str:
    """One paragraph for a file-system error: what failed on which path and what to do."""
    path = err.filename if err.filename is not None else "a file"
    what = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space (or raise the quota) on that file system and run again"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = (
            "make it writable (or readable, for an input), or point the command at another "
            "location with its options (--out, --runs-dir, --config, ...)"
        )
    else:
        fix = "check that path and run again"
    return f"cannot use {path}: {what}. To go on, {fix}"
