"""Stage limit files: the shipped defaults, and validation that names the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stairways.errors import ConfigError
from stairways.market.settings import MarketConfig
from stairways.risk.limits import (
    BROKER_MESSAGES_PER_SECOND,
    RISK_CONFIG_DIR,
    Sizing,
    limits_table,
    load_stage,
    stage_market,
    stage_names,
)


def test_shipped_stages_are_paper_micro_10_and_scale_50() -> None:
    assert stage_names() == ["micro_10", "paper", "scale_50"]


def test_micro_10_pins_the_micro_lot_limits() -> None:
    lim = load_stage("micro_10")
    assert lim.exposure.max_order_notional == 10.0
    assert lim.exposure.max_position_notional == 100.0
    assert lim.exposure.max_gross_exposure == 200.0
    assert lim.exposure.max_daily_turnover == 2_000.0
    assert lim.exposure.allow_short is False
    assert lim.allocated_capital == 200.0
    assert lim.loss.intraday_loss_limit == 20.0


def test_scale_50_is_micro_10_dollar_limits_times_five_with_the_same_rules() -> None:
    micro, scale = load_stage("micro_10"), load_stage("scale_50")
    for key in (
        "max_order_notional",
        "max_position_notional",
        "max_gross_exposure",
        "max_daily_turnover",
    ):
        assert getattr(scale.exposure, key) == 5 * getattr(micro.exposure, key), key
    assert scale.exposure.max_order_notional == 50.0
    assert scale.exposure.max_position_notional == 500.0
    assert scale.allocated_capital == 5 * micro.allocated_capital
    assert scale.loss.intraday_loss_limit == 5 * micro.loss.intraday_loss_limit
    for section in ("order_flow", "session", "drawdown", "protections", "latency"):
        assert getattr(scale, section) == getattr(micro, section), section


def test_paper_mirrors_the_training_sizing() -> None:
    lim, market = load_stage("paper"), MarketConfig()
    assert lim.exposure.max_position_notional == market.max_position_notional == 5_000.0
    assert lim.allocated_capital == market.starting_capital == 10_000.0
    # one order may reverse a full position, as a grid9 action does in training
    assert lim.exposure.max_order_notional == 2 * market.max_position_notional
    assert lim.exposure.max_gross_exposure == 2 * market.max_position_notional
    assert lim.exposure.allow_short is True
    assert lim.costs == market.costs


@pytest.mark.parametrize("stage", ["paper", "micro_10", "scale_50"])
def test_every_stage_pins_the_common_rules(stage: str) -> None:
    lim = load_stage(stage)
    assert lim.symbols == ("NVDA", "MSFT")
    assert lim.loss.alert == pytest.approx(0.8 * lim.loss.intraday_loss_limit)
    assert lim.loss.intraday_loss_alert is None  # the 80% default is in force
    assert lim.order_flow.max_messages_per_second < BROKER_MESSAGES_PER_SECOND == 50
    assert lim.order_flow.max_orders_per_minute == 6
    assert lim.order_flow.price_collar == 0.02
    assert lim.order_flow.stale_data_seconds == 120
    s = lim.session
    assert (s.no_new_exposure_before_close, s.flatten_before_close) == (600, 300)
    assert (s.flatten_retry, s.hard_cutoff_before_close) == (60, 30)
    d = lim.drawdown
    assert (d.halve_sizes_at, d.reduce_only_at, d.flatten_and_halt_at) == (0.05, 0.08, 0.10)
    p = lim.protections
    assert (p.loss_streak, p.loss_streak_lock, p.cooldown_after_stop) == (3, 30, 60)
    assert (lim.latency.max_decision_ms, lim.latency.consecutive) == (10, 3)


def _write_variant(tmp_path: Path, stage: str = "micro_10", **edits: object) -> Path:
    """A copy of a shipped stage with ``section__key`` edits (None removes the key)."""
    data = yaml.safe_load((RISK_CONFIG_DIR / f"{stage}.yaml").read_text())
    for dotted, value in edits.items():
        node = data
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    path = tmp_path / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("edits", "key", "words"),
    [
        ({"exposure__max_order_notional": -10.0}, "exposure.max_order_notional", "greater than 0"),
        ({"loss__intraday_loss_limit": -1.0}, "loss.intraday_loss_limit", "greater than 0"),
        ({"loss__intraday_loss_alert": 25.0}, "intraday_loss_alert", "above"),
        ({"exposure__max_daily_turnover": None}, "exposure.max_daily_turnover", "required"),
        ({"drawdown__reduce_only_at": None}, "drawdown.reduce_only_at", "required"),
        ({"exposure__max_leverage": 2.0}, "exposure.max_leverage", "not permitted"),
        ({"colour": "red"}, "colour", "not permitted"),
        ({"order_flow__max_messages_per_second": 50}, "max_messages_per_second", "less than 50"),
        ({"drawdown__halve_sizes_at": 0.09}, "halve_sizes_at", "expected"),
        ({"session__hard_cutoff_before_close": 400}, "hard_cutoff_before_close", "expected"),
        ({"exposure__max_position_notional": 500.0}, "max_position_notional", "max_gross"),
        ({"sizing__position_notional": 20.0}, "sizing.position_notional", "would be cut"),
        ({"sizing__position_notional": -1.0}, "sizing.position_notional", "greater than 0"),
        ({"sizing__quantity_decimals": 5}, "sizing.quantity_decimals", "less than or equal"),
        ({"sizing__lot": 1}, "sizing.lot", "not permitted"),
    ],
)
def test_a_bad_limits_file_fails_naming_the_file_and_key(
    tmp_path: Path, edits: dict[str, object], key: str, words: str
) -> None:
    path = _write_variant(tmp_path, **edits)
    with pytest.raises(ConfigError) as err:
        load_stage("micro_10", tmp_path)
    message = str(err.value)
    assert str(path) in message
    assert key in message
    assert words in message


def test_an_alert_level_at_or_below_the_limit_loads(tmp_path: Path) -> None:
    _write_variant(tmp_path, loss__intraday_loss_alert=12.0)
    assert load_stage("micro_10", tmp_path).loss.alert == 12.0


def test_a_file_whose_stage_key_differs_from_its_name_is_refused(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, stage="micro_10")
    path.rename(tmp_path / "other.yaml")
    with pytest.raises(ConfigError, match=r"(?s)other\.yaml.*stage: 'micro_10' does not match"):
        load_stage("other", tmp_path)


def test_an_unknown_stage_names_the_stages_there_are() -> None:
    with pytest.raises(ConfigError, match=r"stage 'micro_5'.*micro_10, paper, scale_50"):
        load_stage("micro_5")


def test_limits_table_shows_dollars_percentages_and_the_resolved_alert() -> None:
    rows = dict(limits_table(load_stage("micro_10")))
    assert rows["exposure.max_order_notional"] == "$10.00"
    assert rows["exposure.max_position_notional"] == "$100.00"
    assert rows["loss.intraday_loss_alert"] == "$16.00"
    assert rows["drawdown.flatten_and_halt_at"] == "10%"
    assert rows["exposure.allow_short"] == "no"
    assert rows["session.hard_cutoff_before_close"] == "30 s"


def test_the_shipped_sizing_pins_whole_shares_for_paper_and_fractional_micro_lots() -> None:
    assert Sizing().model_dump() == {"position_notional": None, "quantity_decimals": 0}
    sizes = {
        stage: (
            load_stage(stage).sizing.position_notional,
            load_stage(stage).sizing.quantity_decimals,
        )
        for stage in ("paper", "micro_10", "scale_50")
    }
    assert sizes == {"paper": (None, 0), "micro_10": (10.0, 4), "scale_50": (50.0, 4)}
    # a full micro-lot is one order within the order cap
    micro = load_stage("micro_10")
    assert micro.sizing.position_notional == micro.exposure.max_order_notional


def test_stage_market_keeps_the_models_account_for_paper_and_sizes_micro_lots() -> None:
    market = MarketConfig()
    assert stage_market(market, load_stage("paper")) is market
    micro = stage_market(market, load_stage("micro_10"))
    assert (micro.starting_capital, micro.max_position_notional, micro.quantity_decimals) == (
        200.0,
        10.0,
        4,
    )
    assert (micro.costs, micro.action_set, micro.latency_bars) == (
        market.costs,
        market.action_set,
        market.latency_bars,
    )


def test_limits_table_shows_the_sizing_in_words() -> None:
    rows = dict(limits_table(load_stage("micro_10")))
    assert rows["sizing.position_notional"] == "$10.00"
    assert rows["sizing.quantity_decimals"] == "steps of 0.0001 shares"
    paper = dict(limits_table(load_stage("paper")))
    assert paper["sizing.position_notional"] == "the model's (market.max_position_notional)"
    assert paper["sizing.quantity_decimals"] == "whole shares"
