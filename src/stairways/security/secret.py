"""Secret values that never print, and the redaction that keeps them out of logs and errors.

A :class:`Secret` wraps a credential: its ``repr``, ``str`` and ``format`` are ``***``, it
refuses to be pickled or JSON-encoded, and only :meth:`Secret.reveal` returns the value. Every
secret of at least :data:`MIN_REDACTED_LENGTH` characters is remembered (in this process only)
so that :func:`redact` can blank it wherever it turns up in text: the CLI installs
:class:`RedactingFilter` on the log handlers and a redacting ``sys.excepthook`` through
:func:`install_redaction`.
"""

from __future__ import annotations

import hmac
import logging
import sys
import threading
import traceback
from types import TracebackType
from typing import NoReturn

__all__ = [
    "MASK",
    "MIN_REDACTED_LENGTH",
    "RedactingFilter",
    "Secret",
    "contains_secret",
    "install_redaction",
    "redact",
    "remember",
]

MASK = "***"
# Shorter values would blank ordinary words in logs; the vault refuses to store them.
MIN_REDACTED_LENGTH = 8

_lock = threading.Lock()
_known: set[str] = set()
# Longest first, so that a secret containing another is blanked whole.
_ordered: tuple[str, ...] = ()


def remember(value: str) -> None:
    """Add ``value`` to the values :func:`redact` blanks (ignored below the minimum length)."""
    global _ordered
    if len(value) < MIN_REDACTED_LENGTH:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
        _ordered = tuple(sorted(_known, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every remembered secret value replaced by ``***``."""
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    return text


def contains_secret(text: str) -> bool:
    """Whether ``text`` holds any remembered secret value."""
    return any(value in text for value in _ordered)


class Secret:
    """A credential that shows as ``***``; :meth:`reveal` is the one way to read it.

    :param value: the secret text (non-empty)
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds text, not {type(value).__name__}")
        if not value:
            raise ValueError("a Secret cannot be empty")
        self._value = value
        remember(value)

    def reveal(self) -> str:
        """The secret value. Pass it straight to the library that needs it; never log it."""
        return self._value

    def __repr__(self) -> str:
        return MASK

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: read it from the vault where it is needed")


class RedactingFilter(logging.Filter):
    """Blank remembered secret values in a record's message, traceback and stack text."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        if not _ordered:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A bad format string: the handler reports it when it emits; nothing to blank yet.
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redacting_excepthook(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(redact(text))


def install_redaction() -> None:
    """Add :class:`RedactingFilter` to every handler of the root logger and redact tracebacks.

    Idempotent. Handlers added to the root logger later need their own call.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    if sys.excepthook is not _redacting_excepthook:
        sys.excepthook = _redacting_excepthook
