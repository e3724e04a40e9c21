"""Broker configuration: which broker, paper or live, and how to reach Interactive Brokers.

Defaults are the safe choice: the simulated broker, paper mode, a gateway on localhost. Live
trading needs ``mode: live`` in the configuration *and* the explicit live flag at run time;
either alone is refused. IBKR's standard ports tell paper from live (TWS 7497 paper, 7496 live;
IB Gateway 4002 paper, 4001 live); a paper configuration on a live port, or a live one on a
paper port, is refused before connecting, and after connecting the account itself is checked
(IBKR paper account ids start with ``D``).

A broker configuration is its own YAML file (``--broker-config``), with the keys of
:class:`BrokerConfig` at the top level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from stairways.brokers.errors import BrokerConfigError
from stairways.configbase import Frozen, read_yaml, set_by_path, validate_model
from stairways.market.settings import CostConfig

__all__ = [
    "LIVE_PORTS",
    "PAPER_PORTS",
    "BrokerConfig",
    "ClientIds",
    "IbkrConfig",
    "SimConfig",
    "check_live_permission",
    "load_broker_config",
]

PAPER_PORTS: dict[str, int] = {"tws": 7497, "gateway": 4002}
LIVE_PORTS: dict[str, int] = {"tws": 7496, "gateway": 4001}

Mode = Literal["paper", "live"]


class ClientIds(Frozen):
    """One fixed API client id per process role.

    IB lets only the client id that placed an order modify or cancel it, so the trader keeps
    one id for its whole life; ``broker flatten`` uses a global cancel, which reaches every
    client's orders.
    """

    trader: int = Field(default=11, ge=1, le=2_000_000_000, description="The live loop")
    check: int = Field(default=12, ge=1, le=2_000_000_000, description="broker check")
    flatten: int = Field(default=13, ge=1, le=2_000_000_000, description="broker flatten")
    history: int = Field(default=14, ge=1, le=2_000_000_000, description="data import --ibkr")

    @model_validator(mode="after")
    def _distinct(self) -> ClientIds:
        ids = [self.trader, self.check, self.flatten, self.history]
        if len(set(ids)) != len(ids):
            raise ValueError(f"client ids must differ per role, got {ids}")
        return self


class IbkrConfig(Frozen):
    """How to reach TWS or IB Gateway and how hard to talk to it."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Gateway host")
    gateway: Literal["gateway", "tws"] = Field(
        default="gateway", description="IB Gateway or TWS (decides the default port)"
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="API port; null uses the standard port of the gateway kind and mode",
    )
    account: str = Field(
        default="", description="Account id; empty uses the only account the login manages"
    )
    client_ids: ClientIds = ClientIds()
    connect_timeout_seconds: float = Field(default=10.0, gt=0.0, le=120.0)
    request_timeout_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    max_messages_per_second: int = Field(
        default=40,
        ge=1,
        le=49,
        description="Client-side budget of API messages per second (IB's limit is 50)",
    )
    reconnect_initial_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    reconnect_max_seconds: float = Field(default=60.0, gt=0.0, le=900.0)
    reconnect_max_attempts: int = Field(
        default=30, ge=1, le=10_000, description="Attempts before giving up and halting"
    )
    history_requests_per_10_minutes: int = Field(
        default=50,
        ge=1,
        le=60,
        description="Historical data pacing (IB allows 60 requests per 10 minutes)",
    )
    history_min_interval_seconds: float = Field(
        default=2.0,
        ge=0.0,
        le=60.0,
        description="Pause between historical requests (IB: at most 6 per contract in 2 s)",
    )
    fractional_shares: bool = Field(
        default=False,
        description="The account may send fractional stock quantities through the API (IB "
        "grants this per account; a stage sized in fractions is refused without it)",
    )


class SimConfig(Frozen):
    """The simulated broker: the market core's costs, capital and where its state lives."""

    state_path: Path | None = Field(
        default=None, description="SQLite file of orders, fills and positions; null: memory"
    )
    starting_capital: float = Field(default=10_000.0, gt=0.0, le=1e10)
    costs: CostConfig = CostConfig()
    account: str = Field(default="SIM", min_length=1)
    quantity_decimals: int = Field(
        default=0,
        ge=0,
        le=4,
        description="0: whole shares; d: fractional shares in steps of 10**-d (orders are "
        "rounded toward zero to the step)",
    )


class BrokerConfig(Frozen):
    """Which broker the live side talks to and in which mode."""

    kind: Literal["sim", "ibkr"] = Field(default="sim", description="sim or ibkr")
    mode: Mode = Field(default="paper", description="paper (default) or live")
    symbols: tuple[str, ...] = Field(default=("NVDA", "MSFT"), min_length=1)
    ibkr: IbkrConfig = IbkrConfig()
    sim: SimConfig = SimConfig()

    @model_validator(mode="after")
    def _port_matches_mode(self) -> BrokerConfig:
        port = self.ibkr.port
        if port is None:
            return self
        other = LIVE_PORTS if self.mode == "paper" else PAPER_PORTS
        if port in other.values():
            kind = "live" if self.mode == "paper" else "paper"
            raise ValueError(
                f"ibkr.port {port} is a {kind} port but mode is {self.mode!r}; use "
                f"{self.standard_port()} for {self.mode} or change mode"
            )
        return self

    def standard_port(self) -> int:
        """The standard port of the configured gateway kind in the configured mode."""
        table = PAPER_PORTS if self.mode == "paper" else LIVE_PORTS
        return table[self.ibkr.gateway]

    def ibkr_port(self) -> int:
        """The port to connect to: the configured one or the standard one."""
        return self.ibkr.port if self.ibkr.port is not None else self.standard_port()


def check_live_permission(cfg: BrokerConfig, live_flag: bool) -> None:
    """Refuse live mode without the flag, and the flag without live mode."""
    if cfg.mode == "live" and not live_flag:
        raise BrokerConfigError(
            "the broker configuration says mode: live, but the live flag was not given; "
            "pass --live to trade real money (paper is the default)"
        )
    if live_flag and cfg.mode != "live":
        raise BrokerConfigError(
            "--live was given but the broker configuration says mode: paper; set mode: live "
            "in the broker configuration as well"
        )


def load_broker_config(
    path: Path | None = None, overrides: dict[str, Any] | None = None
) -> BrokerConfig:
    """Load a broker YAML file (defaults when None) and apply dotted-key overrides."""
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    for key, value in (overrides or {}).items():
        data = set_by_path(data, key, value)
    source = str(path) if path is not None else "the broker defaults"
    if overrides:
        source += " with " + ", ".join(sorted(overrides))
    return validate_model(BrokerConfig, data, source)
