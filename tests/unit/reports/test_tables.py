import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stairways.reports import tables as t


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1234.5, "$1,234.50"),
        (-12.3, "-$12.30"),
        (0.0, "$0.00"),
        (-0.001, "$0.00"),  # rounds to zero: no minus sign
        (3074.303478, "$3,074.30"),
        (None, "n/a"),
        (math.nan, "n/a"),
        (pd.NA, "n/a"),
    ],
)
def test_dollars(value: object, expected: str) -> None:
    assert t.dollars(value) == expected


def test_percent_shares_rates_and_integers() -> None:
    assert t.percent()(0.450611) == "45.1%"
    assert t.percent(0)(1.0) == "100%"
    assert t.shares(1200.0) == "1,200 sh"
    assert t.shares(-35) == "-35 sh"
    assert t.rate("/h")(3.04) == "3.0 /h"
    assert t.integer(12000.0) == "12,000"
    assert t.signed(3)(0.5) == "+0.500"
    assert t.number(1)(math.inf) == "+inf"
    assert t.text(True) == "yes"


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_dollars_read_back_to_the_rounded_value(value: float) -> None:
    shown = t.dollars(value)
    back = float(shown.replace("$", "").replace(",", ""))
    assert back == pytest.approx(round(value, 2), abs=0.006)
    assert shown.startswith("-") == (round(value, 2) < 0)


COLUMNS = (
    t.Column("name", "checkpoint"),
    t.Column("pnl", "net P&L", t.dollars),
    t.Column("win", "win rate", t.percent()),
)
ROWS = [
    {"name": "#1 (12000 steps)", "pnl": 3074.303478, "win": 0.45},
    {"name": "#2", "pnl": -5.0, "win": None},
]


def test_text_table_aligns_numbers_right_and_text_left() -> None:
    text = t.render_text(t.table(COLUMNS, ROWS))
    lines = text.splitlines()
    assert lines[0].split() == ["checkpoint", "net", "P&L", "win", "rate"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].startswith("#1 (12000 steps)")
    assert lines[2].endswith("45.0%")
    assert lines[3].startswith("#2 ")
    assert lines[3].endswith("n/a")
    # right-aligned: the dollar amounts end in the same column
    end = lines[2].index("$3,074.30") + len("$3,074.30")
    assert lines[3][:end].endswith("-$5.00")


def test_markdown_table_escapes_pipes_and_marks_numeric_columns() -> None:
    rows = [{"name": "a|b", "pnl": 1.0, "win": 0.5}]
    md = t.render_markdown(t.table(COLUMNS, rows)).splitlines()
    assert md[0] == "| checkpoint | net P&L | win rate |"
    assert md[1] == "| --- | ---: | ---: |"
    assert md[2] == "| a\\|b | $1.00 | 50.0% |"


def test_table_from_a_frame_keeps_named_index_levels() -> None:
    frame = pd.DataFrame({"pnl": [1.0, 2.0]}, index=pd.Index(["x", "y"], name="name"))
    tab = t.table([t.Column("name"), t.Column("pnl", fmt=t.dollars)], frame)
    assert tab.cells == (("x", "$1.00"), ("y", "$2.00"))
    assert tab.values[1] == ("y", 2.0)


def test_a_row_without_a_column_names_the_row_and_the_key() -> None:
    with pytest.raises(KeyError, match=r"row 1 has no value for column\(s\) \['win'\]"):
        t.table(COLUMNS, [ROWS[0], {"name": "x", "pnl": 1.0}])


def test_numpy_values_format_like_python_values() -> None:
    assert t.dollars(np.float64(2.5)) == "$2.50"
    assert t.integer(np.int64(7)) == "7"
