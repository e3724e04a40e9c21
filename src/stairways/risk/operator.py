"""Operator actions on the governor's state: halt (emergency stop) and resume, both journaled.

``halt`` moves PAUSED or RUNNING to EMERGENCY_STOP: the running trader cancels every open order,
flattens, and refuses every new intent until an operator resumes (MAINTENANCE leaves only to
PAUSED, so halting from it is refused).
``resume`` moves one step back toward trading: EMERGENCY_STOP -> PAUSED (the latch is released,
still no trading), PAUSED -> RUNNING, MAINTENANCE -> PAUSED. Each action is an
``operator_action`` event followed by the ``governor_state`` transition it caused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stairways.risk.ports import KIND_OPERATOR, EventLog
from stairways.risk.state import Actor, StateRecord, TradingStateMachine, TransitionError
from stairways.risk.types import TradingState

__all__ = ["RESUME_STEPS", "OperatorResult", "halt", "resume"]

# Where ``resume`` goes from each state.
RESUME_STEPS: dict[TradingState, TradingState] = {
    TradingState.EMERGENCY_STOP: TradingState.PAUSED,
    TradingState.PAUSED: TradingState.RUNNING,
    TradingState.MAINTENANCE: TradingState.PAUSED,
}


@dataclass(frozen=True, slots=True)
class OperatorResult:
    """The state before and the record the action wrote."""

    before: TradingState
    record: StateRecord


def _act(
    log: EventLog, action: str, to: TradingState | None, operator: str, reason: str, at: datetime
) -> OperatorResult:
    actor = Actor.operator(operator)
    if not actor.name:
        raise TransitionError(f"{action} needs the operator's name (--operator)")
    if not reason.strip():
        raise TransitionError(f"{action} needs a reason (--reason)")
    machine = TradingStateMachine(log)
    before = machine.state
    if to is None:
        target = RESUME_STEPS.get(before)
        if target is None:
            raise TransitionError(
                f"trading is already {before.value} (since {machine.record.since}, by "
                f"{machine.record.who}); nothing to resume"
            )
    else:
        target = to
    # Check before journaling the action, so a refused action leaves only its error.
    if target == before or not machine.can(target):
        machine.transition(target, actor, reason, at)  # raises the precise TransitionError
    log.append(
        KIND_OPERATOR,
        {
            "action": action,
            "operator": actor.name,
            "reason": reason.strip(),
            "from": before.value,
            "to": target.value,
        },
        at,
    )
    record = machine.transition(target, actor, reason, at)
    return OperatorResult(before=before, record=record)


def halt(log: EventLog, operator: str, reason: str, at: datetime) -> OperatorResult:
    """Emergency stop: latched until an operator resumes; the trader cancels and flattens."""
    return _act(log, "halt", TradingState.EMERGENCY_STOP, operator, reason, at)


def resume(log: EventLog, operator: str, reason: str, at: datetime) -> OperatorResult:
    """One step toward trading: EMERGENCY_STOP -> PAUSED -> RUNNING; MAINTENANCE -> PAUSED."""
    return _act(log, "resume", None, operator, reason, at)
