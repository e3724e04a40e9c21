"""The stress suite's configuration (``config/stress/suite.yaml``): the model and session each
scenario replays, and every scenario's parameters and gates."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from stairways.configbase import Frozen, read_yaml, validate_model

__all__ = [
    "DEFAULT_SUITE",
    "OPS",
    "BrokerDisconnectConfig",
    "DecisionFloodConfig",
    "FeedWindow",
    "FlashCrashConfig",
    "GateConfig",
    "HalfDayConfig",
    "OrderBurstConfig",
    "PartialFillsConfig",
    "RejectsConfig",
    "RestartConfig",
    "StaleFeedConfig",
    "StressConfig",
    "load_stress_config",
]

DEFAULT_SUITE = "stress/suite.yaml"

Op = Literal["<", "<=", ">", ">=", "=="]
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


class GateConfig(Frozen):
    """A gate: the scenario's figure ``metric`` must satisfy ``metric op threshold``."""

    metric: str = Field(min_length=1)
    op: Op
    threshold: float


class FlashCrashConfig(Frozen):
    """A shock of ``shock`` (fraction) within one bar at ``at_bar``, spreads multiplied by
    ``spread_multiplier`` from the shock until the recovery ends, linear recovery over
    ``recovery_bars`` bars."""

    shock: float = Field(default=-0.03, gt=-0.5, lt=0.5)
    spread_multiplier: float = Field(default=3.0, ge=1.0, le=100.0)
    at_bar: int = Field(default=30, ge=1)
    recovery_bars: int = Field(default=30, ge=1)
    gates: tuple[GateConfig, ...] = ()


class BrokerDisconnectConfig(Frozen):
    """A disconnect of ``bars`` bars at ``at_bar``; then broker calls slowed by
    ``added_latency_ms`` for ``latency_bars`` bars from ``latency_from_bar`` on (the loop must
    flatten after 5 s over 120 ms: about 7 bars of three calls each)."""

    at_bar: int = Field(default=20, ge=1)
    bars: int = Field(default=5, ge=1)
    added_latency_ms: float = Field(default=250.0, ge=0.0)
    latency_from_bar: int = Field(default=30, ge=1)
    latency_bars: int = Field(default=12, ge=1)
    gates: tuple[GateConfig, ...] = ()


class OrderBurstConfig(Frozen):
    """``changes`` consecutive bars from ``at_bar`` on whose decisions all change position."""

    at_bar: int = Field(default=10, ge=1)
    changes: int = Field(default=50, ge=1)
    gates: tuple[GateConfig, ...] = ()


class PartialFillsConfig(Frozen):
    """The first ``orders`` orders fill in chunks of ``fractions`` of their quantity, one chunk
    per bar (the last chunk takes what whole-share rounding left)."""

    fractions: tuple[float, ...] = Field(default=(0.3, 0.3, 0.4), min_length=2)
    orders: int = Field(default=1000, ge=1)
    gates: tuple[GateConfig, ...] = ()

    @model_validator(mode="after")
    def _fractions(self) -> PartialFillsConfig:
        if any(f <= 0.0 for f in self.fractions) or abs(sum(self.fractions) - 1.0) > 1e-9:
            raise ValueError(f"fractions must be positive and sum to 1, got {self.fractions}")
        return self


class RejectsConfig(Frozen):
    """The broker rejects the first ``count`` orders with IB code ``code``."""

    count: int = Field(default=5, ge=1)
    code: int = 201
    gates: tuple[GateConfig, ...] = ()


class FeedWindow(Frozen):
    """From bar ``at_bar`` for ``bars`` minutes the feed delivers nothing (``missing``) or the
    last good minute again (``repeat``); the withheld bars arrive together afterwards."""

    at_bar: int = Field(ge=1)
    bars: int = Field(ge=1, le=60)
    mode: Literal["missing", "repeat"] = "missing"


class StaleFeedConfig(Frozen):
    """Stale-feed windows; between bars the loop is polled every ``poll_seconds`` (session
    clock) while the feed is silent, and the operator resumes after each recovery."""

    windows: tuple[FeedWindow, ...] = (
        FeedWindow(at_bar=40, bars=5, mode="missing"),
        FeedWindow(at_bar=120, bars=4, mode="repeat"),
    )
    poll_seconds: float = Field(default=5.0, gt=0.0, le=60.0)
    gates: tuple[GateConfig, ...] = ()

    @model_validator(mode="after")
    def _apart(self) -> StaleFeedConfig:
        ends = [w.at_bar + w.bars for w in self.windows]
        starts = [w.at_bar for w in self.windows]
        if not self.windows or any(s <= e for s, e in zip(starts[1:], ends[:-1], strict=False)):
            raise ValueError("windows must be given in order, at least one bar apart")
        return self


class RestartConfig(Frozen):
    """The loop runs in its own process, is killed with SIGKILL at a random bar between the
    fractions ``kill_between`` of the session (``seed``) and restarted, ``kills`` times."""

    kills: int = Field(default=1, ge=1, le=10)
    kill_between: tuple[float, float] = (0.2, 0.8)
    seed: int = 7
    timeout_seconds: float = Field(default=600.0, gt=0.0)
    gates: tuple[GateConfig, ...] = ()

    @model_validator(mode="after")
    def _window(self) -> RestartConfig:
        lo, hi = self.kill_between
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"kill_between must be 0 <= lo < hi <= 1, got {self.kill_between}")
        return self


class HalfDayConfig(Frozen):
    """An early-close session (XNYS half day) on which the model is made to hold its largest
    position from ``hold_minutes_before_close`` before the early close: the governor must
    flatten before it.

    :param day: the half day (None: the first half day of ``split``)
    :param split: its split (None: the suite's)
    :param risk_dir: the stage files (None: the suite's)
    """

    day: date | None = None
    split: str | None = None
    risk_dir: Path | None = None
    hold_minutes_before_close: int = Field(default=30, ge=1, le=300)
    gates: tuple[GateConfig, ...] = ()


class DecisionFloodConfig(Frozen):
    """``rate`` decisions per second through the live loop for ``seconds`` of flood
    (``short_seconds`` with ``--short``); the journal commits decisions without orders in
    groups, every ``group_commit_ms`` or ``group_commit_records`` records."""

    rate: float = Field(default=1000.0, gt=0.0, le=100_000.0)
    seconds: float = Field(default=600.0, gt=0.0, le=86_400.0)
    short_seconds: float = Field(default=3.0, gt=0.0, le=600.0)
    group_commit_ms: float = Field(default=20.0, gt=0.0, le=1000.0)
    group_commit_records: int = Field(default=512, ge=1, le=100_000)
    gates: tuple[GateConfig, ...] = ()


class StressConfig(Frozen):
    """The suite.

    :param run_dir: the trained run whose model the scenarios trade (``--run`` overrides)
    :param checkpoint: its checkpoint (``final``, ``best`` or ``checkpoints/...``)
    :param model: without a run: the registered model to stress, by id or stage alias (the
        model at that stage of the ladder now); None: a run is required
    :param day: the stored session replayed (None: the first session of ``split``)
    :param split: the split the session belongs to (the features' warm-up follows it)
    :param stage: the ladder stage whose risk limits the governor enforces
    :param risk_dir: folder of the stage files (None: the shipped ``config/risk``)
    :param out_dir: where results go (``--out`` overrides)
    """

    description: str = ""
    run_dir: Path | None = None
    checkpoint: str = "final"
    model: str | None = "paper"
    day: date | None = None
    split: str = "validation"
    stage: str = "paper"
    risk_dir: Path | None = None
    out_dir: Path = Path("reports/stress")
    flash_crash: FlashCrashConfig = FlashCrashConfig()
    broker_disconnect: BrokerDisconnectConfig = BrokerDisconnectConfig()
    order_burst: OrderBurstConfig = OrderBurstConfig()
    # the same scenarios against the fake IB gateway (stairways.stress.gateway)
    broker_disconnect_ibkr: BrokerDisconnectConfig = BrokerDisconnectConfig()
    order_burst_ibkr: OrderBurstConfig = OrderBurstConfig()
    decision_flood: DecisionFloodConfig = DecisionFloodConfig()
    partial_fills: PartialFillsConfig = PartialFillsConfig()
    rejects: RejectsConfig = RejectsConfig()
    stale_feed: StaleFeedConfig = StaleFeedConfig()
    restart: RestartConfig = RestartConfig()
    half_day: HalfDayConfig = HalfDayConfig()


def load_stress_config(path: Path | None = None) -> StressConfig:
    """The suite config at ``path``, or the shipped ``config/stress/suite.yaml``."""
    from stairways.resources import shipped_config

    source = path if path is not None else shipped_config(DEFAULT_SUITE)
    return validate_model(StressConfig, read_yaml(source), str(source))
