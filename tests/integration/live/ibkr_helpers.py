"""The fake IB gateway replaying a stored session for the live loop's IBKR driver (tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from stairways.brokers.ibkr.fake_gateway import FakeIBGateway, ReplayBar
from stairways.brokers.settings import BrokerConfig
from stairways.journal import Journal, JournalLocation
from stairways.live.ibkr_session import IbkrPlan, IbkrSessionResult, run_ibkr_session
from stairways.live.loop import LiveLoop
from stairways.live.model import LivePolicy
from stairways.risk.store import SqlStateStore
from stairways.stress.gateway import replay_minutes
from tests.integration.live.conftest import DAY, KEY, PARITY_RISK_DIR, LiveRun

SYMBOLS = ("NVDA", "MSFT")


def replay_day(run: LiveRun, policy: LivePolicy, day: date = DAY) -> list[dict[str, ReplayBar]]:
    """The stored session as the gateway replays it (with each bar's stored VWAP)."""
    return replay_minutes(run.store, policy.cfg.data, SYMBOLS, day, "test")


class LoopProbe:
    """Lockstep for an in-process session: the gateway serves the next minute once the loop
    has decided on the last one (``on_loop`` captures the loop as the driver builds it)."""

    def __init__(self) -> None:
        self.loops: list[LiveLoop] = []

    def on_loop(self, loop: LiveLoop) -> None:
        self.loops.append(loop)

    def ready(self, start: int) -> bool:
        if not self.loops:
            return False
        loop = self.loops[-1]
        if loop.done:
            return True
        k = loop.observer.bar_index(datetime.fromtimestamp(start, UTC))
        return bool(loop.steps) and loop.steps[-1].bar >= k


@contextmanager
def replaying_gateway(
    minutes: list[dict[str, ReplayBar]],
    *,
    start_at: int = 0,
    server_version: int = 178,
    away_minutes: int = 0,
    quiet_seconds: float = 0.02,
    ready: Callable[[int], bool] | None = None,
    ready_timeout: float = 5.0,
) -> Iterator[FakeIBGateway]:
    """A fake gateway whose day so far (minutes before ``start_at``) is in its historical data,
    replaying the rest once a client subscribes (in lockstep with ``ready`` when given)."""
    with FakeIBGateway(server_version=server_version) as gw:
        for minute in minutes[:start_at]:
            for s, b in minute.items():
                gw.history.setdefault(s, []).append(
                    (b.start, b.open, b.high, b.low, b.close, b.volume, b.vwap)
                )
        gw.start_replay(
            minutes[start_at:],
            quiet_seconds=quiet_seconds,
            away_minutes=away_minutes,
            ready=ready,
            ready_timeout=ready_timeout,
        )
        yield gw


def broker_config(port: int, **ibkr: Any) -> BrokerConfig:
    """A paper configuration of the fake gateway's port, reconnecting quickly."""
    return BrokerConfig.model_validate(
        {
            "kind": "ibkr",
            "ibkr": {
                "port": port,
                "connect_timeout_seconds": 5.0,
                "reconnect_initial_seconds": 0.2,
                "reconnect_max_seconds": 1.0,
                **ibkr,
            },
        }
    )


def run_against(
    policy: LivePolicy,
    gw: FakeIBGateway,
    location: JournalLocation,
    run: LiveRun,
    *,
    risk_dir: Path = PARITY_RISK_DIR,
    day: date = DAY,
    **kwargs: Any,
) -> IbkrSessionResult:
    """Rehearse ``day`` against the replaying gateway into the journal at ``location``."""
    plan_args: dict[str, Any] = {
        "day": day,
        "split": "test",
        "operator": "tester",
        "risk_dir": risk_dir,
        "max_wall_seconds": 240.0,
        "first_bar_seconds": 30.0,
    }
    plan_args.update(kwargs.pop("plan", {}))
    journal = Journal.open(location, KEY)
    states = SqlStateStore(location, journal=journal)
    try:
        return run_ibkr_session(
            policy,
            IbkrPlan(**plan_args),
            broker_config(gw.port),
            journal=journal,
            store_state=states,
            location=location,
            bar_store=run.store,
            **kwargs,
        )
    finally:
        states.close()
        journal.close()
