"""How a ladder stage sizes a model's orders, and who may trade a stage sized in fractions.

A stage's ``sizing`` (``config/risk/<stage>.yaml``) either keeps the model's own account (paper:
``position_notional: null``, whole shares, as in training) or makes the stage notional-sized:
a full target is ``position_notional`` dollars at the decision price, on an account of the
stage's ``allocated_capital``, in steps of ``10**-quantity_decimals`` shares. micro_10 trades $10
lots in steps of 0.0001 shares, so every opening order fits its $10 order cap at any price.

:func:`session_market` is the one place a session's market is decided (rehearsal or IBKR):
the loop, the observer, the simulated broker and the journal's session record take it, and a
replay of the same market (``stairways evaluate`` with those ``market.*`` values) sizes alike.
:func:`check_broker_fractions` refuses, before anything starts, a fractional stage on a broker
that cannot take fractions.
"""

from __future__ import annotations

from typing import Any

from stairways.brokers.settings import BrokerConfig
from stairways.errors import ConfigError
from stairways.market.settings import MarketConfig
from stairways.risk.limits import RiskLimits, stage_market

__all__ = ["CAPITAL_OBSERVATIONS", "check_broker_fractions", "session_market", "sizing_record"]

# Observation extras measured against the account's capital: a model that sees them must trade
# an account with its training's capital-to-position ratio, or it sees a market it never saw.
CAPITAL_OBSERVATIONS = ("obs_cash_fraction", "obs_unrealised_pnl", "obs_drawdown")


def session_market(market: MarketConfig, env: Any, limits: RiskLimits, where: str) -> MarketConfig:
    """The market a session of ``limits.stage`` trades the model with (see the module doc).

    :param market: the model's ``market`` config (its training run's)
    :param env: the model's ``env`` config (which observation extras it sees)
    :param limits: the stage's limits
    :param where: the limits file, for the message
    """
    out = stage_market(market, limits)
    if out is market:
        return out
    seen = [name for name in CAPITAL_OBSERVATIONS if getattr(env, name, False)]
    trained = market.starting_capital / market.max_position_notional
    staged = out.starting_capital / out.max_position_notional
    if seen and abs(trained - staged) > 1e-9 * trained:
        raise ConfigError(
            f"stage {limits.stage} ({where}) trades a full position of "
            f"${out.max_position_notional:,.2f} on ${out.starting_capital:,.2f} (capital "
            f"{staged:g}x a position), but the model observes {', '.join('env.' + s for s in seen)}"
            f" and was trained with capital {trained:g}x a position "
            f"(market.starting_capital / market.max_position_notional): it would see an account "
            "it never saw. Set the stage's allocated_capital to "
            f"${trained * out.max_position_notional:,.2f} or train without those observations"
        )
    return out


def check_broker_fractions(limits: RiskLimits, broker: BrokerConfig, where: str) -> None:
    """Refuse a stage sized in fractional shares on a broker that does not take fractions.

    The simulated broker takes the stage's steps; IBKR only with ``ibkr.fractional_shares``
    (IB grants fractional trading through the API per account).

    :param where: the broker config file (or "the default broker config"), for the message
    """
    sizing = limits.sizing
    if not sizing.fractional or broker.kind == "sim":
        return
    if not broker.ibkr.fractional_shares:
        raise ConfigError(
            f"stage {limits.stage} sizes orders in fractional shares (sizing.quantity_decimals: "
            f"{sizing.quantity_decimals} in its limits file) but {where} has "
            "ibkr.fractional_shares: false, and IBKR executes fractional stock orders through "
            "the API only for accounts with that permission. Set ibkr.fractional_shares: true "
            "once the account has it (prove it on the paper account first), or trade a stage "
            "sized in whole shares"
        )


def sizing_record(market: MarketConfig) -> dict[str, Any]:
    """What a session's start record says about its sizing (the journal's lineage)."""
    return {
        "position_notional": market.max_position_notional,
        "quantity_decimals": market.quantity_decimals,
    }
