"""The interrupt guard: where a real SIGINT or SIGTERM to this process raises, and where not."""

from __future__ import annotations

import os
import signal

import pytest

from stairways.tuning.interrupts import InterruptGuard


def _signal(signum: int = signal.SIGINT) -> None:
    """Deliver ``signum`` to this process; Python runs the handler before the next bytecode."""
    os.kill(os.getpid(), signum)


def test_signal_outside_a_trial_then_recorded_and_nothing_raised() -> None:
    with InterruptGuard() as guard:
        _signal(signal.SIGTERM)
        assert guard.stopped and guard.signum == signal.SIGTERM


def test_signal_inside_a_trial_then_keyboard_interrupt_there_and_only_once() -> None:
    with InterruptGuard() as guard:
        with pytest.raises(KeyboardInterrupt, match="SIGINT"), guard.trial():
            _signal()
            pytest.fail("the objective went on after the signal")
        _signal()  # a second Ctrl-C during the bookkeeping that follows
        assert guard.signum == signal.SIGINT


def test_signal_inside_a_storage_call_then_raised_right_after_it_not_in_it() -> None:
    finished_the_call = False
    with InterruptGuard() as guard, pytest.raises(KeyboardInterrupt), guard.trial():
        with guard.shielded():
            _signal()
            finished_the_call = True
        pytest.fail("the objective went on after the shielded call")
    assert finished_the_call


def test_trial_after_a_stop_request_then_refused_before_it_starts() -> None:
    requested = [False]
    with InterruptGuard(should_stop=lambda: requested[0]) as guard:
        requested[0] = True
        with pytest.raises(KeyboardInterrupt, match="before the trial started"), guard.trial():
            pytest.fail("a trial started after the stop request")


def test_guard_left_then_previous_handlers_restored() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with InterruptGuard():
        assert signal.getsignal(signal.SIGINT) != before[signal.SIGINT]
    assert {sig: signal.getsignal(sig) for sig in before} == before
