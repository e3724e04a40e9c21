"""Order states, the IBKR status mapping, client order ids, requests and broker defaults."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stairways.brokers.errors import BrokerConfigError
from stairways.brokers.ibkr.adapter import limit_to_tick
from stairways.brokers.orders import (
    IBKR_STATUS_MAP,
    TERMINAL_STATES,
    OrderRequest,
    OrderState,
    OrderType,
    client_order_id,
    ibkr_order_state,
    order_request_from_verdict,
    whole_shares,
)
from stairways.brokers.settings import (
    LIVE_PORTS,
    PAPER_PORTS,
    BrokerConfig,
    check_live_permission,
    load_broker_config,
)
from stairways.errors import ConfigError, InputError


def test_ibkr_status_mapping_is_the_documented_table() -> None:
    assert IBKR_STATUS_MAP == {
        "ApiPending": OrderState.PENDING_SUBMIT,
        "PendingSubmit": OrderState.PENDING_SUBMIT,
        "PreSubmitted": OrderState.ACCEPTED,
        "Submitted": OrderState.ACCEPTED,
        "PendingCancel": OrderState.PENDING_CANCEL,
        "ApiCancelled": OrderState.CANCELLED,
        "Cancelled": OrderState.CANCELLED,
        "Filled": OrderState.FILLED,
        "Inactive": OrderState.INACTIVE,
    }
    assert {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED} == TERMINAL_STATES


def test_ibkr_submitted_with_fills_then_partially_filled_or_filled() -> None:
    assert ibkr_order_state("Submitted", 3, 7) == OrderState.PARTIALLY_FILLED
    assert ibkr_order_state("PreSubmitted", 3, 7) == OrderState.PARTIALLY_FILLED
    assert ibkr_order_state("Submitted", 10, 0) == OrderState.FILLED
    assert ibkr_order_state("Submitted", 0, 10) == OrderState.ACCEPTED
    assert ibkr_order_state("Cancelled", 4, 6) == OrderState.CANCELLED
    assert ibkr_order_state("ValidationError", 0, 5) == OrderState.ACCEPTED


def test_ibkr_unknown_status_when_mapped_then_error_not_guess() -> None:
    with pytest.raises(InputError, match="unknown IBKR order status 'Parked'"):
        ibkr_order_state("Parked")


@settings(deadline=None)
@given(st.text(min_size=1, max_size=80), st.sampled_from(["NVDA", "MSFT"]))
def test_client_order_id_is_deterministic_short_and_safe(decision: str, symbol: str) -> None:
    cid = client_order_id(decision, symbol)
    assert cid == client_order_id(decision, symbol)
    assert cid.startswith("sw-") and cid.endswith(f"-{symbol}") and len(cid) <= 40
    OrderRequest(cid, symbol, 1)  # accepted as a request id


def test_client_order_id_differs_per_decision_and_symbol() -> None:
    ids = {client_order_id(d, s) for d in ("a", "b", "x" * 60, "x" * 61) for s in ("NVDA", "MSFT")}
    assert len(ids) == 8
    assert client_order_id("2024-03-04T10:31:00-0007", "NVDA") == "sw-2024-03-04T10:31:00-0007-NVDA"


@settings(deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_whole_shares_rounds_toward_zero_never_up(q: float) -> None:
    w = whole_shares(q)
    assert abs(w) <= abs(q) < abs(w) + 1
    assert w == 0 or (w > 0) == (q > 0)


def test_order_request_when_limit_without_price_or_market_with_price_then_refused() -> None:
    with pytest.raises(InputError, match="limit order needs a positive limit price"):
        OrderRequest("sw-a-NVDA", "NVDA", 1, OrderType.LIMIT)
    with pytest.raises(InputError, match="market order takes no limit price"):
        OrderRequest("sw-a-NVDA", "NVDA", 1, OrderType.MARKET, 10.0)
    with pytest.raises(InputError, match="may only hold"):
        OrderRequest("sw a", "NVDA", 1)


def test_broker_defaults_are_the_safe_choice() -> None:
    cfg = BrokerConfig()
    assert (cfg.kind, cfg.mode) == ("sim", "paper")
    assert cfg.ibkr.host == "127.0.0.1"
    assert cfg.ibkr_port() == 4002
    assert PAPER_PORTS == {"tws": 7497, "gateway": 4002}
    assert LIVE_PORTS == {"tws": 7496, "gateway": 4001}
    assert cfg.ibkr.max_messages_per_second == 40 < 50
    assert cfg.ibkr.history_requests_per_10_minutes == 50 < 60
    ids = cfg.ibkr.client_ids
    assert (ids.trader, ids.check, ids.flatten, ids.history) == (11, 12, 13, 14)
    tws = BrokerConfig.model_validate({"ibkr": {"gateway": "tws"}})
    assert tws.ibkr_port() == 7497


@pytest.mark.parametrize(("mode", "port"), [("paper", 4001), ("paper", 7496), ("live", 4002)])
def test_port_of_the_other_mode_when_configured_then_refused_naming_both(
    mode: str, port: int
) -> None:
    with pytest.raises(ConfigError, match=f"{port} is a"):
        load_broker_config(None, {"mode": mode, "ibkr.port": port})


def test_budget_at_or_above_ib_limit_then_refused() -> None:
    with pytest.raises(ConfigError, match="max_messages_per_second"):
        load_broker_config(None, {"ibkr.max_messages_per_second": 50})


def test_live_needs_config_and_flag_together() -> None:
    live = load_broker_config(None, {"mode": "live"})
    assert live.ibkr_port() == 4001
    with pytest.raises(BrokerConfigError, match="--live"):
        check_live_permission(live, live_flag=False)
    with pytest.raises(BrokerConfigError, match="mode: paper"):
        check_live_permission(BrokerConfig(), live_flag=True)
    check_live_permission(live, live_flag=True)
    check_live_permission(BrokerConfig(), live_flag=False)


def test_unknown_broker_key_when_loaded_then_refused_with_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "b.yaml"
    path.write_text("kind: ibkr\nibkr:\n  hots: 1.2.3.4\n")
    with pytest.raises(ConfigError, match=r"ibkr\.hots"):
        load_broker_config(path)


def test_verdict_when_converted_then_request_carries_approved_quantity_and_derived_id() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Approved:
        decision_id: str
        symbol: str
        approved: float

    v = Approved("2024-03-04T10:31-0007", "MSFT", -12.0)
    market = order_request_from_verdict(v)
    assert (market.symbol, market.quantity, market.order_type) == ("MSFT", -12.0, OrderType.MARKET)
    assert market.client_order_id == client_order_id(v.decision_id, "MSFT")
    assert market.decision_id == v.decision_id
    limit = order_request_from_verdict(v, limit_price=401.5)
    assert (limit.order_type, limit.limit_price) == (OrderType.LIMIT, 401.5)


@settings(deadline=None)
@given(st.integers(100, 100_000_00), st.floats(0, 0.0099), st.booleans())
def test_limit_to_tick_lands_on_the_cent_grid_never_more_aggressive(
    cents: int, extra: float, buy: bool
) -> None:
    price = cents / 100 + extra
    out = limit_to_tick(price, buy)
    assert abs(out * 100 - round(out * 100)) < 1e-6
    # within float noise (a millionth of a cent snaps to the grid), never past the asked price
    assert (out <= price + 1e-7) if buy else (out >= price - 1e-7)
    assert abs(out - price) < 0.01 + 1e-9
    assert limit_to_tick(cents / 100, buy) == cents / 100
