"""Ctrl-C and SIGTERM during a search: stop at once, start nothing new, lose no trial.

A worker or a driver holds an :class:`InterruptGuard` while it runs. The first SIGINT or SIGTERM
is remembered (:attr:`InterruptGuard.signum`); it interrupts the objective running at that
moment (as a ``KeyboardInterrupt`` raised inside :meth:`InterruptGuard.trial`, where the worker
catches it and puts the trial back in the queue) and nothing else: outside a trial, and for every
later signal, the guard only records. Inside a trial, storage calls (reporting a score) run
:meth:`InterruptGuard.shielded`: a signal that arrives during one interrupts right after it, so
a database transaction is never cut in half. Bookkeeping (telling the storage, re-queueing,
writing the reports) is never interrupted, and a worker checks :attr:`InterruptGuard.stopped`
before it claims another trial.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["SIGNALS", "InterruptGuard", "signal_name"]

SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """``SIGINT`` for 2 and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class InterruptGuard:
    """Records SIGINT/SIGTERM while entered; raises KeyboardInterrupt only inside a trial.

    :param should_stop: another source of stop requests (a driver's event), polled by
        :attr:`stopped`
    """

    def __init__(self, should_stop: Callable[[], bool] | None = None) -> None:
        self.should_stop = should_stop
        self.signum: int | None = None
        self._in_trial = False  # the objective runs: a signal raises, unless shielded
        self._shields = 0
        self._pending = False  # a signal arrived while shielded; raise when the shield ends
        self._previous: dict[int, Any] = {}

    @property
    def stopped(self) -> bool:
        """Whether a signal arrived or the outside source asks to stop."""
        if self.signum is not None:
            return True
        return self.should_stop is not None and self.should_stop()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if first and self._in_trial:
            if self._shields:
                self._pending = True
                return
            self._in_trial = False
            raise KeyboardInterrupt(signal_name(signum))

    @contextlib.contextmanager
    def trial(self) -> Iterator[None]:
        """The block in which a signal interrupts (raises KeyboardInterrupt); checks first."""
        if self.stopped:
            raise KeyboardInterrupt("stop requested before the trial started")
        self._in_trial = True
        try:
            yield
        finally:
            self._in_trial = False
            self._pending = False

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """A block a signal must not cut (a storage call): it interrupts right after instead."""
        self._shields += 1
        try:
            yield
        finally:
            self._shields -= 1
        if self._shields == 0 and self._pending and self._in_trial:
            self._pending = False
            self._in_trial = False
            raise KeyboardInterrupt(signal_name(self.signum or 2))

    def __enter__(self) -> InterruptGuard:
        # Signal handlers belong to the main thread; elsewhere (a thread of a host program)
        # interrupts are the host's business and only ``should_stop`` applies.
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            # None: the previous handler was not installed from Python; the default is closest.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
