"""The stress suite's configuration (``config/stress/suite.yaml``): the model and session each
scenario replays, and every scenario's parameters and gates."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field

from stairways.configbase import Frozen, read_yaml, validate_model

__all__ = [
    "DEFAULT_SUITE",
    "OPS",
    "BrokerDisconnectConfig",
    "FlashCrashConfig",
    "GateConfig",
    "OrderBurstConfig",
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


class StressConfig(Frozen):
    """The suite.

    :param run_dir: the trained run whose model the scenarios trade (``--run`` overrides)
    :param checkpoint: its checkpoint (``final``, ``best`` or ``checkpoints/...``)
    :param day: the stored session replayed (None: the first session of ``split``)
    :param split: the split the session belongs to (the features' warm-up follows it)
    :param stage: the ladder stage whose risk limits the governor enforces
    :param risk_dir: folder of the stage files (None: the shipped ``config/risk``)
    :param out_dir: where results go (``--out`` overrides)
    """

    description: str = ""
    run_dir: Path | None = None
    checkpoint: str = "final"
    day: date | None = None
    split: str = "validation"
    stage: str = "paper"
    risk_dir: Path | None = None
    out_dir: Path = Path("reports/stress")
    flash_crash: FlashCrashConfig = FlashCrashConfig()
    broker_disconnect: BrokerDisconnectConfig = BrokerDisconnectConfig()
    order_burst: OrderBurstConfig = OrderBurstConfig()


def load_stress_config(path: Path | None = None) -> StressConfig:
    """The suite config at ``path``, or the shipped ``config/stress/suite.yaml``."""
    from stairways.resources import shipped_config

    source = path if path is not None else shipped_config(DEFAULT_SUITE)
    return validate_model(StressConfig, read_yaml(source), str(source))
