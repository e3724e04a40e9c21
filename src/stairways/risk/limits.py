"""Risk limits per ladder stage, loaded from ``config/risk/<stage>.yaml`` and validated at load.

Every limit is required in every stage file: a stage that leaves one out fails at load, as do a
negative limit, an alert level above its limit, an unknown key, or levels in the wrong order.
The error names the file and the key path. The optional keys are the loss alert, which
defaults to 80% of the loss limit (:data:`DEFAULT_LOSS_ALERT_FRACTION`), and ``sizing``, which
defaults to the model's own account in whole shares (:class:`Sizing`; the shipped files state
it).

Dollar figures are notionals at the last trade price; times are seconds or minutes of exchange
time. The stage's ``allocated_capital`` is the capital the strategy trades with: drawdown
layers are measured on ``allocated_capital + the day's P&L`` from its peak of the day, so a
$100 strategy inside a larger account still stops at 10% of its own money.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from stairways.configbase import CONFIG_DIR, Frozen, read_yaml, validate_model
from stairways.errors import ConfigError
from stairways.market.actions import MAX_QUANTITY_DECIMALS
from stairways.market.settings import CostConfig, MarketConfig

__all__ = [
    "BROKER_MESSAGES_PER_SECOND",
    "DEFAULT_LOSS_ALERT_FRACTION",
    "RISK_CONFIG_DIR",
    "DrawdownLayers",
    "ExposureLimits",
    "LatencyGuard",
    "LossLimits",
    "OrderFlowLimits",
    "Protections",
    "RiskLimits",
    "SessionRules",
    "Sizing",
    "limits_table",
    "load_stage",
    "stage_names",
]

RISK_CONFIG_DIR = CONFIG_DIR / "risk"
# Interactive Brokers disconnects a client that sends more than 50 messages per second.
BROKER_MESSAGES_PER_SECOND = 50
DEFAULT_LOSS_ALERT_FRACTION = 0.8


class ExposureLimits(Frozen):
    """How large orders and positions may be, in dollars at the last trade price."""

    max_order_notional: float = Field(gt=0.0, description="Largest single order")
    max_position_notional: float = Field(gt=0.0, description="Largest position per symbol")
    max_gross_exposure: float = Field(gt=0.0, description="Largest sum of |positions|")
    max_daily_turnover: float = Field(
        gt=0.0, description="Traded notional per session: fills, working orders and this order"
    )
    allow_short: bool = Field(description="Whether a position may go below zero")

    @model_validator(mode="after")
    def _ordered(self) -> ExposureLimits:
        if self.max_position_notional > self.max_gross_exposure:
            raise ValueError(
                f"max_position_notional ({self.max_position_notional}) is above "
                f"max_gross_exposure ({self.max_gross_exposure}); one position cannot exceed "
                "the gross limit"
            )
        return self


class LossLimits(Frozen):
    """The day's loss limit (realised + unrealised - fees) and its alert level, in dollars."""

    intraday_loss_limit: float = Field(gt=0.0, description="Flatten and halt at this loss")
    intraday_loss_alert: float | None = Field(
        default=None,
        gt=0.0,
        description="Alert at this loss; default 80% of the limit",
    )

    @model_validator(mode="after")
    def _alert_below_limit(self) -> LossLimits:
        if self.intraday_loss_alert is not None and (
            self.intraday_loss_alert > self.intraday_loss_limit
        ):
            raise ValueError(
                f"intraday_loss_alert ({self.intraday_loss_alert}) is above "
                f"intraday_loss_limit ({self.intraday_loss_limit}); the alert must come first"
            )
        return self

    @property
    def alert(self) -> float:
        """The alert level in dollars (the configured one, or 80% of the limit)."""
        if self.intraday_loss_alert is not None:
            return self.intraday_loss_alert
        return DEFAULT_LOSS_ALERT_FRACTION * self.intraday_loss_limit


class OrderFlowLimits(Frozen):
    """Order rate, message budget, price collar and market-data freshness."""

    max_orders_per_minute: int = Field(gt=0, le=600, description="Approved orders per 60 s")
    max_messages_per_second: int = Field(
        gt=0,
        lt=BROKER_MESSAGES_PER_SECOND,
        description="Orders and cancels per second; the broker disconnects at 50",
    )
    price_collar: float = Field(
        gt=0.0,
        lt=1.0,
        description="Largest relative distance of a limit or decision price from the last trade",
    )
    stale_data_seconds: float = Field(
        gt=0.0, description="No new bar for this long blocks new exposure on the symbol"
    )
    max_consecutive_rejects: int = Field(
        default=3,
        gt=0,
        le=1000,
        description="Broker rejects in a row (no fill between) that pause trading",
    )


class SessionRules(Frozen):
    """Rules relative to the session's close (16:00, or 13:00 on a half day), in seconds."""

    no_new_exposure_before_close: float = Field(gt=0.0, description="No new exposure from here")
    flatten_before_close: float = Field(gt=0.0, description="Flatten every position from here")
    flatten_retry: float = Field(gt=0.0, description="Retry a flatten that has not filled")
    hard_cutoff_before_close: float = Field(
        gt=0.0, description="Cancel everything and close out; refuse every intent"
    )

    @model_validator(mode="after")
    def _ordered(self) -> SessionRules:
        if not (
            self.hard_cutoff_before_close
            < self.flatten_before_close
            <= self.no_new_exposure_before_close
        ):
            raise ValueError(
                "expected hard_cutoff_before_close < flatten_before_close <= "
                f"no_new_exposure_before_close, got {self.hard_cutoff_before_close}, "
                f"{self.flatten_before_close}, {self.no_new_exposure_before_close}"
            )
        return self


class DrawdownLayers(Frozen):
    """Drawdown from the day's peak equity (fractions): halve sizes, reduce only, flatten+halt."""

    halve_sizes_at: float = Field(gt=0.0, lt=1.0)
    reduce_only_at: float = Field(gt=0.0, lt=1.0)
    flatten_and_halt_at: float = Field(gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> DrawdownLayers:
        if not (self.halve_sizes_at < self.reduce_only_at < self.flatten_and_halt_at):
            raise ValueError(
                "expected halve_sizes_at < reduce_only_at < flatten_and_halt_at, got "
                f"{self.halve_sizes_at}, {self.reduce_only_at}, {self.flatten_and_halt_at}"
            )
        return self


class Protections(Frozen):
    """Loss-streak guard and cooldown after a stop (in the manner of freqtrade's protections).

    ``loss_streak`` losing round trips in a row lock new exposure for ``loss_streak_lock``
    minutes. After the governor flattens on a stop (loss limit, drawdown halt, emergency stop),
    new exposure waits ``cooldown_after_stop`` minutes even when trading is resumed sooner.
    """

    loss_streak: int = Field(gt=0, le=100)
    loss_streak_lock: float = Field(gt=0.0, description="Minutes")
    cooldown_after_stop: float = Field(gt=0.0, description="Minutes")


class LatencyGuard(Frozen):
    """``consecutive`` decisions in a row slower than ``max_decision_ms`` pause trading."""

    max_decision_ms: float = Field(gt=0.0)
    consecutive: int = Field(gt=0, le=1000)


class Sizing(Frozen):
    """How the stage sizes a full target (+1 long, -1 short) and in what quantity steps.

    ``position_notional`` null trades the model's own account (its ``market.starting_capital``
    and ``market.max_position_notional``: paper mirrors training). A dollar figure makes the
    stage notional-sized: a full target is that many dollars of the symbol at the decision
    price, the session's account is ``allocated_capital``, and the training env and replay
    evaluate the same account with :func:`stage_market`. ``quantity_decimals`` above 0 sizes
    in fractional shares (steps of ``10**-d``), so $10 buys 0.0245 shares of a $408 stock;
    only a broker that takes fractions may trade such a stage.
    """

    position_notional: float | None = Field(
        default=None,
        gt=0.0,
        description="Dollars of a full long or short; null: the model's max_position_notional",
    )
    quantity_decimals: int = Field(
        default=0,
        ge=0,
        le=MAX_QUANTITY_DECIMALS,
        description="0: whole shares; d: fractional shares in steps of 10**-d",
    )

    @property
    def fractional(self) -> bool:
        """Whether orders are sized in fractions of a share."""
        return self.quantity_decimals > 0


class RiskLimits(Frozen):
    """Everything the governor enforces for one ladder stage."""

    stage: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    symbols: tuple[str, ...] = Field(min_length=1, description="Symbols the stage may trade")
    allocated_capital: float = Field(gt=0.0, description="Capital the strategy trades with")
    exposure: ExposureLimits
    loss: LossLimits
    order_flow: OrderFlowLimits
    session: SessionRules
    drawdown: DrawdownLayers
    protections: Protections
    latency: LatencyGuard
    costs: CostConfig = Field(
        default=CostConfig(),
        description="Cost model that estimates an order's costs (the market core's default)",
    )
    sizing: Sizing = Field(
        default=Sizing(), description="Full-target size and quantity steps (default: the model's)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> RiskLimits:
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols are repeated: {list(self.symbols)}")
        full = self.sizing.position_notional
        ex = self.exposure
        if full is not None and full > min(ex.max_order_notional, ex.max_position_notional):
            raise ValueError(
                f"sizing.position_notional ({full:g}) is more than exposure.max_order_notional "
                f"({ex.max_order_notional:g}) or exposure.max_position_notional "
                f"({ex.max_position_notional:g}): every order opening a full position would be "
                "cut; size a full position within both limits"
            )
        if self.exposure.max_gross_exposure > self.allocated_capital * 4:
            raise ValueError(
                f"exposure.max_gross_exposure ({self.exposure.max_gross_exposure}) is more than "
                f"4x allocated_capital ({self.allocated_capital}); Reg T intraday margin allows 4x"
            )
        return self


def stage_names(directory: Path = RISK_CONFIG_DIR) -> list[str]:
    """Names of the stage files in ``directory`` (file stems, sorted)."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def _stage_path(stage: str, directory: Path) -> Path:
    path = directory / f"{stage}.yaml"
    if not path.is_file():
        known = ", ".join(stage_names(directory)) or "none"
        raise ConfigError(f"no risk limits for stage {stage!r}: {path} not found (stages: {known})")
    return path


def load_stage(stage: str, directory: Path = RISK_CONFIG_DIR) -> RiskLimits:
    """Load and validate ``<directory>/<stage>.yaml``; errors name the file and the key path.

    :param stage: stage name, the file's stem (``paper``, ``micro_10``, ``scale_50``)
    :param directory: folder holding the stage files
    """
    path = _stage_path(stage, directory)
    return load_limits_file(path)


def load_limits_file(path: Path) -> RiskLimits:
    """Load and validate one limits file; its ``stage`` key must equal the file's stem."""
    data = read_yaml(path)
    limits = validate_model(RiskLimits, data, str(path))
    if limits.stage != path.stem:
        raise ConfigError(
            f"invalid configuration in {path}:\n  stage: {limits.stage!r} does not match the "
            f"file name; rename the file or set stage: {path.stem}"
        )
    return limits


@lru_cache(maxsize=16)
def _cached(path: str, mtime_ns: int) -> RiskLimits:
    return load_limits_file(Path(path))


def load_stage_cached(stage: str, directory: Path = RISK_CONFIG_DIR) -> RiskLimits:
    """:func:`load_stage`, cached while the file is unchanged."""
    path = _stage_path(stage, directory)
    return _cached(str(path), path.stat().st_mtime_ns)


def limits_table(limits: RiskLimits) -> list[tuple[str, str]]:
    """The limits in force as (key path, value shown for a person) rows, in file order."""
    rows: list[tuple[str, str]] = []

    def show(key: str, value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if key == "sizing.position_notional" and value is None:
            return "the model's (market.max_position_notional)"
        if key == "sizing.quantity_decimals":
            return "whole shares" if value == 0 else f"steps of {10.0**-value:g} shares"
        if key.endswith(("notional", "exposure", "turnover", "_limit", "_alert", "capital")):
            return f"${value:,.2f}"
        if key.startswith("drawdown.") or key.endswith("price_collar"):
            return f"{100 * value:g}%"
        if key.startswith("session."):
            return f"{value:g} s"
        if key in ("protections.loss_streak_lock", "protections.cooldown_after_stop"):
            return f"{value:g} min"
        if key.endswith("_ms"):
            return f"{value:g} ms"
        if key.endswith("_seconds"):
            return f"{value:g} s"
        if isinstance(value, (list, tuple)):
            return ", ".join(map(str, value))
        return str(value)

    def walk(prefix: str, data: dict[str, Any]) -> None:
        for key, value in data.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(f"{name}.", value)
            else:
                rows.append((name, show(name, value)))

    dumped = limits.model_dump(mode="python")
    dumped["loss"]["intraday_loss_alert"] = limits.loss.alert
    walk("", dumped)
    return rows


def dump_limits(limits: RiskLimits) -> str:
    """The limits in force as YAML (what the journal records as the configuration in force)."""
    return yaml.safe_dump(limits.model_dump(mode="json"), sort_keys=False)


def stage_market(market: MarketConfig, limits: RiskLimits) -> MarketConfig:
    """The account a stage trades a model with: the model's ``market`` (paper), or, for a
    notional-sized stage, a full target of ``sizing.position_notional`` dollars on
    ``allocated_capital`` in the stage's quantity steps. The live loop, the simulated broker,
    the training env and the replay all take this one market, so they size alike."""
    sizing = limits.sizing
    if sizing.position_notional is None:
        if sizing.quantity_decimals == market.quantity_decimals:
            return market
        return market.model_copy(update={"quantity_decimals": sizing.quantity_decimals})
    return market.model_copy(
        update={
            "starting_capital": limits.allocated_capital,
            "max_position_notional": sizing.position_notional,
            "quantity_decimals": sizing.quantity_decimals,
        }
    )
