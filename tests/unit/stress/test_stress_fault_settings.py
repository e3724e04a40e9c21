"""Settings of the fault scenarios (partial fills, rejects, stale feed, restart, half day), the
half-day finder, and the model the suite stresses when no run is named."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from stairways.configbase import validate_model
from stairways.errors import ConfigError
from stairways.risk.limits import load_stage
from stairways.stress.half_day import first_half_day
from stairways.stress.settings import StressConfig, load_stress_config
from stairways.stress.suite import ALL_SCENARIOS
from tests.cli_helpers import stairways


def _gates(name: str) -> dict[tuple[str, str], float]:
    return {(g.metric, g.op): g.threshold for g in getattr(load_stress_config(), name).gates}


def test_every_scenario_has_a_config_section_with_gates() -> None:
    cfg = load_stress_config()
    assert list(ALL_SCENARIOS)[:3] == ["flash_crash", "broker_disconnect", "order_burst"]
    for name in ("partial_fills", "rejects", "stale_feed", "restart", "half_day"):
        assert name in ALL_SCENARIOS
        assert getattr(cfg, name).gates, name


def test_shipped_fault_gates_are_pinned() -> None:
    assert _gates("partial_fills") == {
        ("position_difference", "=="): 0.0,
        ("cash_difference", "<="): 1e-6,
        ("governor_position_difference", "=="): 0.0,
        ("overfilled_orders", "=="): 0.0,
        ("pnl_difference", "<="): 1.0,
        ("partially_filled_orders", ">="): 1.0,
        ("open_position_at_end", "=="): 0.0,
    }
    assert _gates("rejects") == {
        ("unjournaled_rejects", "=="): 0.0,
        ("resubmissions", "=="): 0.0,
        ("reject_pause", "=="): 1.0,
        ("pause_at_limit", "=="): 1.0,
        ("decision_orders_after_pause", "=="): 0.0,
        ("open_position_at_end", "=="): 0.0,
    }
    assert _gates("stale_feed") == {
        ("undetected_windows", "=="): 0.0,
        ("detect_lag_seconds", "<="): 5.0,
        ("unpaused_windows", "=="): 0.0,
        ("decisions_on_stale_data", "=="): 0.0,
        ("orders_on_stale_data", "=="): 0.0,
        ("open_position_at_end", "=="): 0.0,
    }
    assert _gates("restart") == {
        ("kills", ">="): 1.0,
        ("lost_orders", "=="): 0.0,
        ("duplicate_orders", "=="): 0.0,
        ("fills_match_reference", "=="): 1.0,
        ("journal_broker_difference", "=="): 0.0,
        ("pnl_difference", "<="): 0.01,
        ("open_position_at_end", "=="): 0.0,
    }
    assert _gates("half_day") == {
        ("early_close", "=="): 1.0,
        ("held_into_window", "=="): 1.0,
        ("flat_margin_seconds", ">="): 0.0,
        ("fills_adding_exposure_in_window", "=="): 0.0,
        ("open_position_at_end", "=="): 0.0,
    }


def test_shipped_fault_parameters_exercise_their_rules() -> None:
    cfg = load_stress_config()
    # more rejects than the paper stage tolerates in a row, so its pause rule must act
    assert cfg.rejects.count > load_stage("paper").order_flow.max_consecutive_rejects
    assert cfg.partial_fills.fractions == (0.3, 0.3, 0.4)
    assert [(w.mode, w.bars) for w in cfg.stale_feed.windows] == [("missing", 5), ("repeat", 4)]
    # a detection lag gate of one poll: the loop is polled every poll_seconds while silent
    assert cfg.stale_feed.poll_seconds == _gates("stale_feed")[("detect_lag_seconds", "<=")]
    assert (cfg.restart.kills, cfg.restart.kill_between) == (1, (0.2, 0.8))
    assert cfg.half_day.day is None and cfg.half_day.hold_minutes_before_close == 30
    # the paper stage's close-relative windows leave the hold something to flatten
    rules = load_stage("paper").session
    assert rules.no_new_exposure_before_close < 60 * cfg.half_day.hold_minutes_before_close
    assert cfg.model == "paper" and cfg.run_dir is None


@pytest.mark.parametrize(
    ("section", "value", "key"),
    [
        ("partial_fills", {"fractions": [0.5, 0.4]}, "partial_fills"),
        ("partial_fills", {"fractions": [1.0]}, "partial_fills.fractions"),
        ("stale_feed", {"windows": [{"at_bar": 40, "bars": 5}, {"at_bar": 44, "bars": 2}]},
         "stale_feed"),
        ("stale_feed", {"windows": [{"at_bar": 40, "bars": 5, "mode": "late"}]},
         "stale_feed.windows.0.mode"),
        ("restart", {"kill_between": [0.8, 0.2]}, "restart"),
        ("rejects", {"count": 0}, "rejects.count"),
        ("half_day", {"hold_minutes_before_close": 0}, "half_day.hold_minutes_before_close"),
    ],
)  # fmt: skip
def test_bad_fault_settings_are_refused_naming_the_key(
    section: str, value: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_model(StressConfig, {section: value}, "suite.yaml")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2023, 7, 3), date(2023, 12, 29), date(2023, 7, 3)),  # the validation split
        (date(2023, 7, 5), date(2023, 12, 29), date(2023, 11, 24)),
        (date(2024, 1, 2), date(2024, 12, 31), date(2024, 7, 3)),
        (date(2024, 1, 2), date(2024, 1, 31), None),
    ],
)
def test_first_half_day_uses_the_exchange_calendar(
    start: date, end: date, expected: date | None
) -> None:
    assert first_half_day(start, end, "XNYS") == expected


def test_without_a_run_the_suite_names_the_missing_registered_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = stairways(
        monkeypatch, "stress", "run", "--registry-journal", tmp_path / "none.sqlite",
        "--out", tmp_path / "o",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "registered model 'paper'" in err and "no model registry" in err
    assert not (tmp_path / "o").exists()
