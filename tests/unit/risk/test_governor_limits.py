"""Every limit of the governor, each with a case it allows and a case it cuts or refuses."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from stairways.risk.governor import Governor
from stairways.risk.operator import halt, resume
from stairways.risk.ports import KIND_ALERT, KIND_STATE, KIND_VERDICT
from stairways.risk.types import (
    Check,
    Decision,
    FillReport,
    Intent,
    OpenOrder,
    TradingState,
    Verdict,
)
from tests.unit.risk.helpers import (
    CLOSE,
    DAY,
    NY,
    OPERATOR,
    account,
    intent,
    limits_with,
    new_governor,
)


def _checks(v: Verdict) -> set[Check]:
    return {r.check for r in v.reasons}


def _approved(v: Verdict, qty: float) -> None:
    assert v.decision is Decision.APPROVE, [r.detail for r in v.reasons]
    assert v.approved == qty and v.reasons == ()


def _reduced(v: Verdict, qty: float, binding: Check) -> None:
    assert v.decision is Decision.REDUCE, [r.detail for r in v.reasons]
    assert (v.approved, v.binding) == (qty, binding)


def _rejected(v: Verdict, *checks: Check) -> None:
    assert v.decision is Decision.REJECT and v.approved == 0.0
    assert set(checks) <= _checks(v), [r.detail for r in v.reasons]


# --- max order notional ----------------------------------------------------------------------


def _whole_micro() -> Governor:
    """micro_10's dollar limits sized in whole shares (the stage before fractions)."""
    return new_governor(limits_with("micro_10", sizing__quantity_decimals=0))


def test_max_order_notional_allows_an_order_within_it() -> None:
    gov = _whole_micro()
    _approved(gov.check(intent(target=2), account(prices={"NVDA": 4.0})), 2)


def test_max_order_notional_cuts_a_larger_order_to_whole_shares_within_it() -> None:
    gov = _whole_micro()
    v = gov.check(intent(target=5), account(prices={"NVDA": 4.0}))
    _reduced(v, 2, Check.MAX_ORDER_NOTIONAL)
    assert v.approved * v.price <= 10.0


def test_a_whole_share_stage_cannot_buy_one_share_priced_above_its_order_cap() -> None:
    gov = _whole_micro()
    # whole shares: $10 buys no share at $12, and $100 of position none at $120
    _rejected(gov.check(intent(target=1), account(prices={"NVDA": 12.0})), Check.MAX_ORDER_NOTIONAL)
    v = gov.check(intent(target=1), account(prices={"NVDA": 120.0}))
    _rejected(v, Check.MAX_POSITION_NOTIONAL)


def test_micro_10_buys_ten_dollars_of_a_408_dollar_stock_in_fractional_steps() -> None:
    gov = new_governor("micro_10")
    v = gov.check(intent(target=0.0245), account(prices={"NVDA": 408.0}))
    _approved(v, 0.0245)
    assert v.approved * v.price <= 10.0


def test_micro_10_cuts_a_larger_fractional_order_to_the_last_step_within_ten_dollars() -> None:
    gov = new_governor("micro_10")
    v = gov.check(intent(target=1), account(prices={"NVDA": 408.0}))
    # $10 / $408 = 0.02451 shares: the cut keeps 0.0245, a whole number of 0.0001 steps
    _reduced(v, 0.0245, Check.MAX_ORDER_NOTIONAL)
    assert 10.0 - 408.0 * 0.0001 < v.approved * v.price <= 10.0


def test_micro_10_refuses_a_quantity_off_its_step() -> None:
    gov = new_governor("micro_10")
    v = gov.check(intent(target=0.00005), account(prices={"NVDA": 408.0}))
    _rejected(v, Check.MALFORMED_INTENT)
    assert "0.0001-share steps" in " ".join(r.detail for r in v.reasons)


# --- max position notional per symbol --------------------------------------------------------


def test_max_position_allows_a_full_position() -> None:
    gov = new_governor("paper")
    _approved(gov.check(intent(target=50), account()), 50)  # 50 x $100 = $5,000


def test_max_position_cuts_what_would_pass_it_counting_the_shares_held() -> None:
    gov = new_governor("paper")
    _reduced(gov.check(intent(target=60), account()), 50, Check.MAX_POSITION_NOTIONAL)
    v = gov.check(intent(qty=20), account(positions={"NVDA": 40}))
    _reduced(v, 10, Check.MAX_POSITION_NOTIONAL)
    assert v.position_after * v.price <= 5_000.0


# --- max gross exposure ----------------------------------------------------------------------


def test_gross_exposure_allows_both_legs_at_full_size() -> None:
    gov = new_governor("paper")
    _approved(gov.check(intent(target=50), account(positions={"MSFT": 12})), 50)


def test_gross_exposure_cuts_counting_positions_and_working_orders_elsewhere() -> None:
    gov = new_governor(limits_with("paper", exposure__max_gross_exposure=6_000.0))
    _reduced(
        gov.check(intent(target=50), account(positions={"MSFT": 12})),
        12,
        Check.MAX_GROSS_EXPOSURE,
    )  # $4,800 in MSFT leaves $1,200 = 12 NVDA
    working = (OpenOrder(order_id="o1", symbol="MSFT", quantity=12.0),)
    _reduced(
        gov.check(intent(target=50), account(open_orders=working)), 12, Check.MAX_GROSS_EXPOSURE
    )


# --- intraday loss limit and its alert -------------------------------------------------------


def _loss_limits() -> Governor:
    # $300 loss limit (alert $240) keeps the test clear of the drawdown layers (5% = $500)
    return new_governor(limits_with("paper", loss__intraday_loss_limit=300.0))


def test_loss_alert_is_raised_once_at_80_percent_of_the_limit() -> None:
    gov = _loss_limits()
    assert gov.assess(account(realised=-239.0)).alerts == ()
    first = gov.assess(account(realised=-240.0))
    assert [a.kind for a in first.alerts] == ["loss_alert"]
    assert gov.assess(account(realised=-250.0)).alerts == ()
    assert gov.state is TradingState.RUNNING
    assert [e.payload["kind"] for e in gov.journal.of_kind(KIND_ALERT)] == ["loss_alert"]  # type: ignore[attr-defined]


def test_reaching_the_loss_limit_flattens_and_halts() -> None:
    gov = _loss_limits()
    acct = account(positions={"NVDA": 30}, realised=-200.0, unrealised=-95.0, fees=5.0)
    d = gov.assess(acct)
    assert gov.state is TradingState.PAUSED
    assert gov.machine.record.who == "governor:loss_limit"
    assert [(c.symbol, c.quantity) for c in d.close_outs] == [("NVDA", -30.0)]
    _rejected(gov.check(intent(target=0), acct), Check.TRADING_STATE)


def test_an_order_whose_costs_would_pass_the_loss_limit_may_only_reduce() -> None:
    gov = _loss_limits()
    near = account(positions={"NVDA": 10}, realised=-299.9)
    _rejected(gov.check(intent(target=20), near), Check.INTRADAY_LOSS_LIMIT)
    _approved(gov.check(intent(target=0), near), -10)
    _approved(gov.check(intent(target=20), account(positions={"NVDA": 10}, realised=-290.0)), 10)


# --- max daily turnover ----------------------------------------------------------------------


def test_turnover_allows_an_order_that_fits() -> None:
    gov = new_governor("paper")
    _approved(gov.check(intent(target=20), account(turnover=198_000.0)), 20)


def test_turnover_counts_fills_and_working_orders_and_cuts_the_rest() -> None:
    gov = new_governor("paper")
    _reduced(
        gov.check(intent(target=20), account(turnover=199_000.0)), 10, Check.MAX_DAILY_TURNOVER
    )
    working = (OpenOrder(order_id="o1", symbol="MSFT", quantity=-10.0),)  # $4,000
    v = gov.check(intent(target=20), account(turnover=195_000.0, open_orders=working))
    _reduced(v, 10, Check.MAX_DAILY_TURNOVER)
    _rejected(gov.check(intent(target=20), account(turnover=200_000.0)), Check.MAX_DAILY_TURNOVER)


# --- orders per minute and the message budget ------------------------------------------------


def test_orders_per_minute_refuses_the_seventh_order_in_a_minute() -> None:
    gov = new_governor("paper")
    for k in range(6):
        _approved(gov.check(intent(target=k + 1), account(DAY + timedelta(seconds=k))), k + 1)
    _rejected(
        gov.check(intent(target=1), account(DAY + timedelta(seconds=10))), Check.ORDERS_PER_MINUTE
    )
    _approved(gov.check(intent(target=1), account(DAY + timedelta(seconds=60.5))), 1)


def test_message_budget_counts_cancels_and_resets_each_second() -> None:
    gov = new_governor("paper")  # 20 messages per second
    gov.record_messages(19, DAY)
    _approved(gov.check(intent(target=1), account()), 1)
    _rejected(gov.check(intent(target=2), account()), Check.MESSAGES_PER_SECOND)
    _approved(gov.check(intent(target=2), account(DAY + timedelta(seconds=1.01))), 2)


# --- price collar ----------------------------------------------------------------------------


def test_price_collar_allows_prices_near_the_last_trade() -> None:
    gov = new_governor("paper")
    _approved(gov.check(intent(target=10, decision_price=101.9, limit_price=98.5), account()), 10)


@pytest.mark.parametrize(("limit", "decision"), [(97.9, None), (None, 102.5), (None, 0.0)])
def test_price_collar_refuses_an_erroneous_price(
    limit: float | None, decision: float | None
) -> None:
    gov = new_governor("paper")
    v = gov.check(intent(target=10, limit_price=limit, decision_price=decision), account())
    _rejected(v, Check.PRICE_COLLAR)


# --- stale market data -----------------------------------------------------------------------


def test_fresh_bars_allow_new_exposure() -> None:
    gov = new_governor("paper")
    _approved(gov.check(intent(target=10), account(bar_age=119.0)), 10)


def test_stale_bars_block_new_exposure_but_not_reducing() -> None:
    gov = new_governor("paper")
    stale = account(positions={"NVDA": 20}, bar_age=121.0)
    _rejected(gov.check(intent(target=30), stale), Check.STALE_DATA)
    _approved(gov.check(intent(target=5), stale), -15)


# --- trading hours (XNYS, half days) ---------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        datetime(2024, 3, 5, 11, 0, tzinfo=NY),
        datetime(2024, 3, 5, 9, 30, tzinfo=NY),
        datetime(2023, 11, 24, 12, 0, tzinfo=NY),  # half day, an hour before its 13:00 close
    ],
)
def test_trading_hours_allow_orders_in_the_session(at: datetime) -> None:
    gov = new_governor("paper", at=at)
    _approved(gov.check(intent(target=10), account(at)), 10)


@pytest.mark.parametrize(
    "at",
    [
        datetime(2024, 3, 5, 9, 29, tzinfo=NY),
        datetime(2024, 3, 5, 16, 0, tzinfo=NY),
        datetime(2024, 3, 9, 11, 0, tzinfo=NY),  # Saturday
        datetime(2024, 7, 4, 11, 0, tzinfo=NY),  # holiday
        datetime(2023, 11, 24, 13, 5, tzinfo=NY),  # after the half day's close
    ],
)
def test_trading_hours_refuse_orders_outside_the_session(at: datetime) -> None:
    gov = new_governor("paper", at=at)
    _rejected(gov.check(intent(target=10), account(at)), Check.TRADING_HOURS)


# --- the windows before the close ------------------------------------------------------------


def test_new_exposure_is_allowed_until_ten_minutes_before_the_close() -> None:
    gov = new_governor("paper")
    at = CLOSE - timedelta(minutes=10, seconds=1)
    _approved(gov.check(intent(target=10), account(at)), 10)


def test_no_new_exposure_from_ten_minutes_before_the_close_but_reducing_is_allowed() -> None:
    gov = new_governor("paper")
    at = CLOSE - timedelta(minutes=10)
    _rejected(gov.check(intent(target=10), account(at)), Check.NO_NEW_EXPOSURE_WINDOW)
    _approved(gov.check(intent(target=0), account(at, positions={"NVDA": 10})), -10)
    assert gov.assess(account(at, positions={"NVDA": 10})).close_outs == ()


def test_flatten_from_five_minutes_before_with_retries_every_60_seconds() -> None:
    gov = new_governor("paper")
    start = CLOSE - timedelta(minutes=5)
    held = {"NVDA": 10.0, "MSFT": -3.0}
    first = gov.assess(account(start, positions=held))
    assert {(c.symbol, c.quantity) for c in first.close_outs} == {("NVDA", -10.0), ("MSFT", 3.0)}
    assert not first.cancel_all
    working = (OpenOrder(order_id="c1", symbol="NVDA", quantity=-10.0),)
    assert gov.assess(account(start + timedelta(seconds=59), positions=held)).close_outs == ()
    retry = gov.assess(
        account(start + timedelta(seconds=60), positions={"NVDA": 4.0}, open_orders=working)
    )
    assert [(c.symbol, c.quantity, c.cancel_working) for c in retry.close_outs] == [
        ("NVDA", -4.0, True)
    ]
    _rejected(gov.check(intent(target=1, symbol="MSFT"), account(start)), Check.FLATTEN_WINDOW)


def test_hard_cutoff_cancels_everything_closes_out_at_once_and_refuses_every_intent() -> None:
    gov = new_governor("paper")
    held = {"NVDA": 10.0}
    working = (OpenOrder(order_id="o9", symbol="MSFT", quantity=5.0),)
    gov.assess(account(CLOSE - timedelta(seconds=40), positions=held))  # flatten window: sent
    at = CLOSE - timedelta(seconds=30)
    d = gov.assess(account(at, positions=held, open_orders=working))
    assert d.cancel_all
    assert [(c.symbol, c.quantity) for c in d.close_outs] == [("NVDA", -10.0)]  # no 60 s wait
    _rejected(gov.check(intent(target=0), account(at, positions=held)), Check.HARD_CUTOFF)


def test_the_half_day_windows_are_relative_to_its_13_00_close() -> None:
    gov = new_governor("paper", at=datetime(2023, 11, 24, 11, 0, tzinfo=NY))
    at = datetime(2023, 11, 24, 12, 50, tzinfo=NY)
    _rejected(gov.check(intent(target=10), account(at)), Check.NO_NEW_EXPOSURE_WINDOW)
    d = gov.assess(account(datetime(2023, 11, 24, 12, 55, tzinfo=NY), positions={"NVDA": 5}))
    assert [(c.symbol, c.quantity) for c in d.close_outs] == [("NVDA", -5.0)]


# --- shorting per stage ----------------------------------------------------------------------


def test_a_stage_that_allows_shorting_approves_a_short() -> None:
    gov = new_governor("paper")
    _approved(gov.check(intent(target=-50), account()), -50)


def test_a_stage_without_shorting_refuses_a_short_and_stops_a_sale_at_flat() -> None:
    gov = _whole_micro()
    cheap = {"NVDA": 4.0, "MSFT": 400.0}
    _rejected(gov.check(intent(target=-2), account(prices=cheap)), Check.SHORTING)
    v = gov.check(intent(target=-2), account(prices=cheap, positions={"NVDA": 2}))
    _reduced(v, -2, Check.SHORTING)
    assert v.position_after == 0.0


# --- duplicate orders ------------------------------------------------------------------------


def test_an_intent_id_is_accepted_once() -> None:
    gov = new_governor("paper")
    _approved(gov.check(intent(target=10, intent_id="same"), account()), 10)
    _rejected(gov.check(intent(target=10, intent_id="same"), account()), Check.DUPLICATE_INTENT)


def test_a_refused_intent_id_may_be_checked_again() -> None:
    gov = new_governor("paper")
    _rejected(
        gov.check(intent(target=10, intent_id="retry"), account(bar_age=500)), Check.STALE_DATA
    )
    _approved(gov.check(intent(target=10, intent_id="retry"), account()), 10)


def test_one_live_order_per_symbol() -> None:
    gov = new_governor("paper")
    working = (OpenOrder(order_id="o1", symbol="NVDA", quantity=5.0),)
    _rejected(
        gov.check(intent(target=10), account(open_orders=working)), Check.LIVE_ORDER_ON_SYMBOL
    )
    _approved(gov.check(intent(symbol="MSFT", target=5), account(open_orders=working)), 5)


# --- drawdown layers from the day's peak equity ----------------------------------------------


def _dd_governor() -> Governor:
    # a $3,000 loss limit keeps the loss limit out of the way of the 10% drawdown
    return new_governor(limits_with("paper", loss__intraday_loss_limit=3_000.0))


def test_below_5_percent_drawdown_sizes_are_full() -> None:
    gov = _dd_governor()
    _approved(gov.check(intent(target=50), account(realised=-499.0)), 50)


def test_at_5_percent_drawdown_sizes_halve_and_stay_halved_for_the_session() -> None:
    gov = _dd_governor()
    v = gov.check(intent(target=50), account(realised=-500.0))
    _reduced(v, 25, Check.MAX_POSITION_NOTIONAL)
    assert "halved" in v.reasons[0].detail
    _reduced(gov.check(intent(target=50), account(realised=0.0)), 25, Check.MAX_POSITION_NOTIONAL)
    next_day = datetime(2024, 3, 6, 11, 0, tzinfo=NY)
    _approved(gov.check(intent(target=50), account(next_day)), 50)


def test_drawdown_is_measured_from_the_days_peak_equity() -> None:
    gov = _dd_governor()
    gov.assess(account(unrealised=1_000.0))  # peak $11,000
    v = gov.check(intent(target=50), account(unrealised=450.0))  # $10,450: 5% off the peak
    _reduced(v, 25, Check.MAX_POSITION_NOTIONAL)


def test_at_8_percent_drawdown_only_reducing_orders_pass() -> None:
    gov = _dd_governor()
    acct = account(positions={"NVDA": 20}, realised=-800.0)
    _rejected(gov.check(intent(target=30), acct), Check.DRAWDOWN_REDUCE_ONLY)
    # a flip sells down to flat; the new short is cut
    _reduced(gov.check(intent(target=-20), acct), -20, Check.DRAWDOWN_REDUCE_ONLY)
    _approved(gov.check(intent(target=5), acct), -15)
    assert gov.state is TradingState.RUNNING


def test_at_10_percent_drawdown_the_governor_flattens_and_halts() -> None:
    gov = _dd_governor()
    gov.assess(account(unrealised=1_000.0))  # peak $11,000
    acct = account(positions={"NVDA": 20}, unrealised=-100.0)  # $9,900 = 10% off the peak
    d = gov.assess(acct)
    assert gov.state is TradingState.PAUSED
    assert gov.machine.record.who == "governor:drawdown"
    assert [(c.symbol, c.quantity) for c in d.close_outs] == [("NVDA", -20.0)]
    assert {a.kind for a in d.alerts} >= {"drawdown_layer", "stop"}


# --- loss streak and cooldown after a stop ---------------------------------------------------


def _round_trip(gov: Governor, at: datetime, exit_price: float) -> None:
    gov.record_fill(FillReport(symbol="NVDA", quantity=10, price=100.0, commission=0.35, at=at))
    gov.record_fill(
        FillReport(symbol="NVDA", quantity=-10, price=exit_price, commission=0.35, at=at)
    )


def test_two_losing_trades_and_a_winner_do_not_lock() -> None:
    gov = new_governor("paper")
    _round_trip(gov, DAY, 99.0)
    _round_trip(gov, DAY, 99.0)
    _round_trip(gov, DAY, 101.0)
    _round_trip(gov, DAY, 99.0)
    _approved(gov.check(intent(target=10), account()), 10)


def test_three_losing_round_trips_lock_new_exposure_for_30_minutes() -> None:
    gov = new_governor("paper")
    for _ in range(3):
        _round_trip(gov, DAY, 99.99)  # a loss after commissions even on a tiny move
    acct = account(positions={"NVDA": 10})
    _rejected(gov.check(intent(target=20), acct), Check.LOSS_STREAK)
    _approved(gov.check(intent(target=0), acct), -10)
    later = DAY + timedelta(minutes=30, seconds=1)
    _approved(gov.check(intent(target=20), account(later, positions={"NVDA": 10})), 10)


def test_a_round_trip_that_flips_through_flat_counts_as_closed() -> None:
    gov = new_governor("paper")

    def fill(qty: float, price: float) -> None:
        gov.record_fill(
            FillReport(symbol="MSFT", quantity=qty, price=price, commission=0.35, at=DAY)
        )

    fill(5, 400.0)
    fill(-10, 399.0)  # closes the long at a loss and opens a short
    assert gov.mem.loss_streak == 1
    fill(5, 398.0)  # closes the short at a gain
    assert gov.mem.loss_streak == 0 and gov.mem.lock_until == 0.0


def test_cooldown_after_a_stop_blocks_new_exposure_after_resuming() -> None:
    gov = new_governor("paper")
    halt(gov.journal, "alice", "manual stop", DAY)
    gov.assess(account())
    resume(gov.journal, "alice", "checked", DAY + timedelta(minutes=1))
    resume(gov.journal, "alice", "trade again", DAY + timedelta(minutes=1))
    at = DAY + timedelta(minutes=2)
    gov.sync()
    assert gov.state is TradingState.RUNNING
    _rejected(gov.check(intent(target=10), account(at)), Check.STOP_COOLDOWN)
    _approved(gov.check(intent(target=0), account(at, positions={"NVDA": 5})), -5)
    _approved(gov.check(intent(target=10), account(DAY + timedelta(minutes=61))), 10)


# --- decision latency ------------------------------------------------------------------------


def test_three_slow_decisions_in_a_row_pause_trading() -> None:
    gov = new_governor("paper")
    assert not gov.record_decision(0.011, "d1", DAY)
    assert not gov.record_decision(0.012, "d2", DAY)
    assert gov.record_decision(0.013, "d3", DAY)
    assert gov.state is TradingState.PAUSED
    assert gov.machine.record.who == "governor:latency"
    assert "11.0, 12.0, 13.0 ms" in gov.machine.record.why


def test_a_fast_decision_breaks_the_latency_streak() -> None:
    gov = new_governor("paper")
    for latency in (0.011, 0.011, 0.010, 0.011, 0.011):  # exactly 10 ms is not over
        assert not gov.record_decision(latency, "d", DAY)
    assert gov.state is TradingState.RUNNING


# --- states ----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [TradingState.PAUSED, TradingState.MAINTENANCE])
def test_only_running_trades(state: TradingState) -> None:
    gov = new_governor("paper", running=False)
    if state is TradingState.MAINTENANCE:
        gov.transition(state, OPERATOR, "upgrade", DAY)
    _rejected(gov.check(intent(target=10), account()), Check.TRADING_STATE)


def test_an_emergency_stop_cancels_flattens_refuses_and_survives_a_restart() -> None:
    gov = new_governor("paper")
    halt(gov.journal, "alice", "runaway", DAY)
    acct = account(
        positions={"NVDA": 10, "MSFT": -2},
        open_orders=(OpenOrder(order_id="o1", symbol="NVDA", quantity=5.0),),
    )
    d = gov.assess(acct)
    assert d.state is TradingState.EMERGENCY_STOP and d.cancel_all
    assert {(c.symbol, c.quantity) for c in d.close_outs} == {("NVDA", -10.0), ("MSFT", 2.0)}
    _rejected(gov.check(intent(target=0), acct), Check.TRADING_STATE)
    restarted = Governor(gov.limits, journal=gov.journal, store=gov.store)
    assert restarted.state is TradingState.EMERGENCY_STOP
    later = DAY + timedelta(minutes=5)
    d2 = restarted.assess(account(later, positions={"NVDA": 10}))
    assert [(c.symbol, c.quantity) for c in d2.close_outs] == [("NVDA", -10.0)]
    _rejected(restarted.check(intent(target=0), account(later)), Check.TRADING_STATE)


# --- malformed intents: verdicts, never exceptions -------------------------------------------


def test_malformed_intents_are_refused_with_reasons() -> None:
    gov = new_governor("paper")
    acct = account(positions={"NVDA": 10})
    both = Intent(
        intent_id="both",
        decision_id="d",
        model_id="m",
        symbol="NVDA",
        reason="test",
        target_shares=10,
        quantity=1,
    )
    _rejected(gov.check(both, acct), Check.MALFORMED_INTENT)
    _rejected(gov.check(intent(qty=1.5), acct), Check.MALFORMED_INTENT)
    _rejected(gov.check(intent(qty=float("nan")), acct), Check.MALFORMED_INTENT)
    _rejected(gov.check(intent(target=10), acct), Check.NO_CHANGE)
    _rejected(
        gov.check(intent(symbol="AAPL", target=1), acct), Check.UNKNOWN_SYMBOL, Check.NO_PRICE
    )
    _rejected(gov.check(intent(target=1), account(prices={"MSFT": 400.0})), Check.NO_PRICE)


def test_a_reject_lists_every_reason() -> None:
    gov = new_governor("paper", running=False)
    v = gov.check(intent(target=60, decision_price=150.0), account(bar_age=600.0))
    assert _checks(v) >= {
        Check.TRADING_STATE,
        Check.PRICE_COLLAR,
        Check.STALE_DATA,
    }


# --- journal and memory ----------------------------------------------------------------------


def test_submit_journals_the_verdict_and_a_restart_remembers_accepted_ids() -> None:
    gov = new_governor("paper")
    v = gov.submit(intent(target=10, intent_id="keep"), account())
    events = gov.journal.of_kind(KIND_VERDICT)  # type: ignore[attr-defined]
    assert events[-1].payload["intent_id"] == "keep" and events[-1].payload["approved"] == 10
    json.dumps(v.as_event())  # JSON-ready
    restarted = Governor(gov.limits, journal=gov.journal, store=gov.store)
    _rejected(
        restarted.check(intent(target=10, intent_id="keep"), account()), Check.DUPLICATE_INTENT
    )


def test_a_restart_keeps_the_days_drawdown_layer_and_peak() -> None:
    gov = _dd_governor()
    gov.assess(account(unrealised=1_000.0))
    gov.assess(account(unrealised=400.0))  # 5.5% off $11,000: halve
    restarted = Governor(gov.limits, journal=gov.journal, store=gov.store)
    assert restarted.mem.peak_equity == 11_000.0 and restarted.mem.layer == 1


def test_state_changes_from_the_rules_are_journaled_with_who_and_why() -> None:
    gov = new_governor("paper")
    for k in range(3):
        gov.record_decision(0.02, f"d{k}", DAY)
    last = gov.journal.of_kind(KIND_STATE)[-1].payload  # type: ignore[attr-defined]
    assert (last["state"], last["who"], last["role"]) == ("PAUSED", "governor:latency", "governor")
    assert "decisions in a row over 10 ms" in last["why"]
