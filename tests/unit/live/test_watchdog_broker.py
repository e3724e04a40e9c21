"""Which broker file and account the watchdog flattens an IBKR loop with."""

from __future__ import annotations

from pathlib import Path

import pytest

from stairways.errors import InputError
from stairways.live.watchdog import ibkr_connection


def test_without_a_flag_the_watchdog_takes_the_loops_broker_file_and_live_flag(
    tmp_path: Path,
) -> None:
    doc = {"broker": "ibkr", "broker_config": str(tmp_path / "ib.yaml"), "live": True}
    assert ibkr_connection(doc, None, False) == (tmp_path / "ib.yaml", True)


def test_a_loop_on_the_broker_defaults_gives_no_file_and_paper(tmp_path: Path) -> None:
    assert ibkr_connection({"broker": "ibkr", "broker_config": None}, None, False) == (None, False)


def test_the_same_file_given_again_is_accepted_and_live_only_adds(tmp_path: Path) -> None:
    given = tmp_path / "ib.yaml"
    doc = {"broker": "ibkr", "broker_config": str(given.resolve()), "live": False}
    assert ibkr_connection(doc, given, True) == (given, True)


def test_another_broker_file_than_the_loops_is_refused_naming_both(tmp_path: Path) -> None:
    doc = {"broker": "ibkr", "broker_config": str(tmp_path / "ib.yaml")}
    with pytest.raises(InputError) as err:
        ibkr_connection(doc, tmp_path / "other.yaml", False)
    assert "other.yaml" in str(err.value) and "ib.yaml" in str(err.value)
