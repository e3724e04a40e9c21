"""One exception hierarchy, grouped by what the operator must do.

- :class:`InputError` and its children: the user gave something wrong (a flag, a config value,
  a file). Fix the input and run again. The CLI exits with code 2.
- :class:`MissingResourceError`: something the command needs does not exist yet (a store, a
  model, a run directory). Create it (the message says how) and run again. Exit code 1.
- :class:`TemporaryError`: an outside service failed in a way that may pass (rate limit, network).
  Retry later; importers retry with backoff before raising it. Exit code 1.
- :class:`StoppedBySignalError`: the operator stopped the command (Ctrl-C, SIGTERM) and it
  stopped cleanly; the message says how to resume. Exit code 128 + the signal number (130 for
  Ctrl-C).
- :class:`InternalError`: an invariant of Stairways itself broke (a bug, or files changed under a
  running command). Nothing the user typed is wrong; report it with the message. Exit code 1.
- :class:`StairwaysError`: anything else the system detected and refuses to continue past.
"""

from __future__ import annotations


class StairwaysError(Exception):
    """Base of every error Stairways raises on purpose."""

    exit_code = 1


class InputError(StairwaysError):
    """Bad input from the user: fix it and run again."""

    exit_code = 2


class ConfigError(InputError):
    """A configuration file or override is invalid (names the key path and allowed values)."""


class DataValidationError(InputError):
    """Market data failed validation (names the file, row and rule)."""


class SplitOverlapError(InputError):
    """A date range overlaps a protected split (for example training on test dates)."""


class MissingResourceError(StairwaysError):
    """A store, model, run directory or file the command needs does not exist."""


class StoreError(StairwaysError):
    """The bar store could not be read or written; nothing was changed."""


class TemporaryError(StairwaysError):
    """An outside service failed in a way that may pass; retry later."""


class ExternalServiceError(StairwaysError):
    """An outside service answered with a permanent error (for example a bad API key)."""


class InternalError(StairwaysError):
    """An internal invariant failed: a bug or a file changed under a running command, not input."""


class StoppedBySignalError(StairwaysError):
    """The command was stopped by a signal and wound down cleanly; the message says how to resume.

    :param signum: the signal that stopped it (its exit code is 128 + signum, as a shell reports)
    """

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
