"""A stage's sizing at session start: the account the session trades, the refusal of a
fractional stage on a broker without fractions, and of a model whose capital-relative
observations would see an account it never saw."""

from __future__ import annotations

import pytest

from stairways.brokers.settings import BrokerConfig
from stairways.env.settings import EnvConfig
from stairways.errors import ConfigError
from stairways.live.sizing import check_broker_fractions, session_market, sizing_record
from stairways.market.settings import MarketConfig
from stairways.risk.limits import load_stage
from tests.unit.risk.helpers import limits_with


def test_paper_trades_the_models_own_account() -> None:
    market = MarketConfig()
    assert session_market(market, EnvConfig(), load_stage("paper"), "paper.yaml") is market


def test_micro_10_trades_ten_dollar_lots_in_fractions_on_its_allocated_capital() -> None:
    got = session_market(MarketConfig(), EnvConfig(), load_stage("micro_10"), "micro_10.yaml")
    assert (got.max_position_notional, got.quantity_decimals, got.starting_capital) == (
        10.0,
        4,
        200.0,
    )
    assert sizing_record(got) == {"position_notional": 10.0, "quantity_decimals": 4}


def test_a_model_that_sees_its_cash_fraction_is_refused_an_account_of_another_shape() -> None:
    env = EnvConfig(obs_cash_fraction=True)
    with pytest.raises(ConfigError, match=r"(?s)micro_10\.yaml.*env\.obs_cash_fraction.*\$20\.00"):
        session_market(MarketConfig(), env, load_stage("micro_10"), "micro_10.yaml")
    # the same shape as training (capital twice a full position) is accepted
    shaped = limits_with(
        "micro_10",
        allocated_capital=20.0,
        exposure__max_gross_exposure=20.0,
        exposure__max_position_notional=20.0,
    )
    assert session_market(MarketConfig(), env, shaped, "x.yaml").starting_capital == 20.0


def test_a_fractional_stage_at_ibkr_without_the_permission_is_refused_naming_both_keys() -> None:
    micro = load_stage("micro_10")
    with pytest.raises(ConfigError) as err:
        check_broker_fractions(micro, BrokerConfig(kind="ibkr"), "broker.yaml")
    message = str(err.value)
    assert "sizing.quantity_decimals: 4" in message and "ibkr.fractional_shares" in message
    assert "broker.yaml" in message
    allowed = BrokerConfig.model_validate({"kind": "ibkr", "ibkr": {"fractional_shares": True}})
    check_broker_fractions(micro, allowed, "broker.yaml")
    check_broker_fractions(micro, BrokerConfig(kind="sim"), "broker.yaml")
    check_broker_fractions(load_stage("paper"), BrokerConfig(kind="ibkr"), "broker.yaml")
