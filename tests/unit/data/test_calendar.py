import pandas as pd
import pytest

from stairways.data import calendar as cal
from stairways.errors import InputError


def test_half_day_after_thanksgiving_has_210_bars_closing_at_1300() -> None:
    s = cal.sessions("2023-11-24", "2023-11-24")
    assert list(s.minutes) == [210]
    assert s.closes[0].tz_convert(cal.EXCHANGE_TZ).strftime("%H:%M") == "13:00"


def test_independence_day_has_no_session() -> None:
    assert not cal.is_session("2023-07-04")
    assert len(cal.session_minutes("2023-07-04", "2023-07-04")) == 0


def test_normal_day_has_390_bars_from_0930_to_1559_exchange_time() -> None:
    minutes = cal.session_minutes("2023-11-22", "2023-11-22").tz_convert(cal.EXCHANGE_TZ)
    assert len(minutes) == 390
    assert minutes[0].strftime("%H:%M") == "09:30"
    assert minutes[-1].strftime("%H:%M") == "15:59"


@pytest.mark.parametrize(("day", "utc_open"), [("2023-03-10", "14:30"), ("2023-03-13", "13:30")])
def test_open_stays_0930_exchange_time_across_dst_change(day: str, utc_open: str) -> None:
    minutes = cal.session_minutes(day, day)
    assert minutes[0].strftime("%H:%M") == utc_open
    assert minutes[0].tz_convert(cal.EXCHANGE_TZ).strftime("%H:%M") == "09:30"


def test_reference_range_has_753_sessions() -> None:
    assert len(cal.sessions("2022-01-03", "2024-12-31")) == 753


def test_rth_mask_excludes_premarket_and_after_close_including_half_days() -> None:
    ts = pd.DatetimeIndex(
        ["2023-11-24 14:29", "2023-11-24 14:30", "2023-11-24 17:59", "2023-11-24 18:00"], tz="UTC"
    )
    assert cal.rth_mask(ts).tolist() == [False, True, True, False]


def test_reversed_range_is_an_input_error() -> None:
    with pytest.raises(InputError, match="after end"):
        cal.sessions("2024-01-05", "2024-01-02")
