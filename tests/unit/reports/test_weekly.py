"""The weekly one-pager: figures from the journal, one PDF page, delivery to loopback servers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pypdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stairways.configbase import read_yaml, validate_model
from stairways.errors import ConfigError, InputError
from stairways.journal import EXCHANGE_TZ, Journal, JournalLocation, JournalReader, MacKey
from stairways.reports.weekly import (
    IsoWeek,
    StressLine,
    StressSummary,
    parse_week,
    render_weekly,
    summary_text,
    week_blocks,
    week_of,
)
from stairways.resources import shipped_config
from stairways.weekly.collect import collect_week
from stairways.weekly.deliver import deliver_report
from stairways.weekly.settings import WeeklyDelivery, WeeklyReportConfig, load_weekly_config
from tests.unit.monitoring.test_alerts import Hook, Mailbox, hook, mailbox  # noqa: F401
from tests.unit.reports.weekly_helpers import CAPITAL, Trip, write_session

KEY = MacKey(b"weekly-report-tests-mac-key-0123456789")
W48 = IsoWeek(2026, 48)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[Journal, JournalLocation]]:
    loc = JournalLocation.sqlite(tmp_path / "j.sqlite")
    with Journal.open(loc, KEY) as j:
        yield j, loc


def _week(loc: JournalLocation, week: IsoWeek = W48):  # type: ignore[no-untyped-def]
    with JournalReader.open(loc) as r:
        return collect_week(r, week)


def test_parse_week_accepts_iso_weeks_and_names_the_form_otherwise() -> None:
    assert parse_week("2026-W48") == W48
    assert W48.monday == date(2026, 11, 23) and W48.sunday == date(2026, 11, 29)
    assert week_of(date(2026, 11, 27)) == W48
    assert week_of(date(2027, 1, 1)).label == "2026-W53"
    with pytest.raises(InputError, match="2026-W48"):
        parse_week("2026-48")
    with pytest.raises(InputError, match="no ISO week 54"):
        parse_week("2026-W54")


def test_week_figures_come_from_the_fills_of_that_week_only(
    journal: tuple[Journal, JournalLocation],
) -> None:
    j, loc = journal
    write_session(j, date(2026, 11, 20), [("NVDA", 10, 100, 200, 1.0)])  # week 47: left out
    write_session(j, date(2026, 11, 23), [("NVDA", 10, 100, 101, 0.5), ("MSFT", 5, 400, 398, 0.5)])
    write_session(j, date(2026, 11, 24), [("NVDA", 10, 100, 99, 0.5)], drawdown=0.03)
    write_session(j, date(2026, 11, 30), [("NVDA", 10, 100, 200, 1.0)])  # week 49: left out
    r = _week(loc)
    assert [d["day"] for d in r.by_day] == ["2026-11-23", "2026-11-24"]
    assert [round(d["net"], 6) for d in r.by_day] == [-2.0, -11.0]
    assert [round(d["fees"], 6) for d in r.by_day] == [2.0, 1.0]
    assert [round(d["gross"], 6) for d in r.by_day] == [0.0, -10.0]
    sym = {s["symbol"]: s for s in r.by_symbol}
    assert sym["NVDA"]["net"] == pytest.approx(10 - 1 - 10 - 1)
    assert sym["MSFT"]["net"] == pytest.approx(-10 - 1)
    assert (r.trades, r.hits, r.fills) == (3, 1, 6)
    assert r.rehearsal and r.traded
    # Week drawdown: cumulative net -2 then -13 from a peak of 0.
    assert r.week_drawdown == pytest.approx(13.0 / CAPITAL)
    assert r.worst_sessions[0]["drawdown"] == pytest.approx(0.03)
    assert r.live_actions == {1: 2, 2: 2, 0: 2}


def test_a_live_week_is_not_labelled_rehearsal(journal: tuple[Journal, JournalLocation]) -> None:
    j, loc = journal
    write_session(j, date(2026, 11, 25), [("NVDA", 10, 100, 101, 0.5)], rehearsal=False)
    r = _week(loc)
    assert not r.rehearsal
    assert "REHEARSAL" not in summary_text(r)
    html = "".join(getattr(b, "html", "") for b in week_blocks(r))
    assert "REHEARSED DATA" not in html


def test_a_week_without_trading_says_so(journal: tuple[Journal, JournalLocation]) -> None:
    j, loc = journal
    write_session(j, date(2026, 11, 20), [("NVDA", 10, 100, 101, 0.5)])
    r = _week(loc)
    assert not r.traded
    assert summary_text(r).startswith("No trading in 2026-W48")


trips_strategy = st.lists(
    st.tuples(
        st.sampled_from(["NVDA", "MSFT"]),
        st.integers(1, 500).map(float),
        st.integers(5000, 50000).map(lambda c: c / 100),
        st.integers(5000, 50000).map(lambda c: c / 100),
        st.integers(0, 300).map(lambda c: c / 100),
    ),
    min_size=0,
    max_size=6,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(days=st.lists(trips_strategy, min_size=1, max_size=5))
def test_week_totals_equal_the_round_trips_property(tmp_path: Path, days: list[list[Trip]]) -> None:
    loc = JournalLocation.sqlite(tmp_path / f"p{datetime.now().timestamp()}.sqlite")
    with Journal.open(loc, KEY) as j:
        for i, trips in enumerate(days):
            write_session(j, W48.monday + timedelta(days=i), trips)
    r = _week(loc)
    expected = [t[1] * (t[3] - t[2]) - 2 * t[4] for trips in days for t in trips]
    assert r.net == pytest.approx(sum(expected), abs=1e-6)
    assert sum(s["net"] for s in r.by_symbol) == pytest.approx(sum(expected), abs=1e-6)
    assert sum(d["fees"] for d in r.by_day) == pytest.approx(
        sum(2 * t[4] for trips in days for t in trips), abs=1e-9
    )
    assert r.trades == len(expected)
    assert r.hits == sum(1 for e in expected if e > 0)


def test_governor_events_and_breaches_reach_the_report(
    journal: tuple[Journal, JournalLocation],
) -> None:
    j, loc = journal
    write_session(j, date(2026, 11, 23), [("NVDA", 10, 100, 101, 0.5)])
    at = datetime(2026, 11, 23, 11, 0, tzinfo=EXCHANGE_TZ)
    j.append("alert", {"kind": "stop", "rule": "intraday_loss", "message": "loss $2,100"}, at)
    j.append(
        "governor_state",
        {"previous": "RUNNING", "state": "EMERGENCY_STOP", "who": "governor", "why": "loss limit"},
        at,
    )
    r = _week(loc)
    assert r.breaches and "intraday_loss" in r.breaches[0]
    assert r.governor_events[0]["event"] == "RUNNING -> EMERGENCY_STOP"
    assert summary_text(r).count("limit breach") == 1


def _busy_week(j: Journal) -> None:
    for i in range(5):
        trips = [("NVDA", 10.0 + k, 100.0, 100.5 + k % 3 - 1, 0.35) for k in range(12)]
        trips += [("MSFT", 5.0, 400.0, 401.0 - k % 2 * 3, 0.35) for k in range(12)]
        write_session(j, W48.monday + timedelta(days=i), trips, drawdown=0.004 * (i + 1))
    at = datetime(2026, 11, 24, 10, 0, tzinfo=EXCHANGE_TZ)
    for k in range(12):
        j.append(
            "governor_state",
            {"previous": "RUNNING", "state": "PAUSED", "who": "operator", "why": f"check {k} " * 6},
            at + timedelta(minutes=k),
        )
        j.append("alert", {"kind": "stop", "rule": "drawdown", "message": "halt " * 10}, at)


def test_a_busy_week_renders_as_one_pdf_page(
    journal: tuple[Journal, JournalLocation], tmp_path: Path
) -> None:
    j, loc = journal
    _busy_week(j)
    r = _week(loc)
    r.stress = StressSummary(
        started="2026-11-27T20:30:00-05:00",
        short=False,
        passed=False,
        scenarios=tuple(
            StressLine(f"scenario_{k}", k % 2 == 0, "max_drawdown 0.02 < 0.15: pass; " * 3)
            for k in range(8)
        ),
    )
    html_path, pdf_path = render_weekly(r, tmp_path / "out")
    assert len(pypdf.PdfReader(pdf_path).pages) == 1
    page = html_path.read_text(encoding="utf-8")
    assert "REHEARSED DATA" in page and "P&amp;L per symbol" in page
    assert "the last nightly stress run FAILED a gate" in page


def test_delivery_to_folder_webhook_and_email(
    journal: tuple[Journal, JournalLocation],
    tmp_path: Path,
    hook: Hook,  # noqa: F811
    mailbox: tuple[Mailbox, int],  # noqa: F811
) -> None:
    j, loc = journal
    write_session(j, date(2026, 11, 23), [("NVDA", 10, 100, 101, 0.5)])
    r = _week(loc)
    html_path, pdf_path = render_weekly(r, tmp_path / "out")
    box, port = mailbox
    cfg = WeeklyDelivery(
        folder=tmp_path / "shared",
        webhook_url=hook.url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="stairways@localhost",
        smtp_to=("board@localhost",),
    )
    done = deliver_report(cfg, "Weekly 2026-W48", summary_text(r), html_path, pdf_path)
    assert [(d.channel, d.error) for d in done] == [("folder", ""), ("webhook", ""), ("email", "")]
    assert (tmp_path / "shared" / pdf_path.name).read_bytes() == pdf_path.read_bytes()
    assert "Net P&L $9.00" in hook.bodies[0]["text"]
    msg = message_from_bytes(box.messages[0].as_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert names == [pdf_path.name, html_path.name]
    pdf_part = next(msg.iter_attachments())
    assert pdf_part.get_payload(decode=True) == pdf_path.read_bytes()


def test_a_failed_channel_is_reported_and_the_others_still_deliver(
    journal: tuple[Journal, JournalLocation], tmp_path: Path
) -> None:
    _, loc = journal
    html_path, pdf_path = render_weekly(_week(loc), tmp_path / "out")
    cfg = WeeklyDelivery(folder=tmp_path / "shared", webhook_url="http://127.0.0.1:9/hook")
    done = deliver_report(cfg, "s", "t", html_path, pdf_path)
    assert done[0].error == "" and (tmp_path / "shared" / html_path.name).is_file()
    assert done[1].channel == "webhook" and "127.0.0.1:9" in done[1].error


def test_shipped_config_defaults_are_pinned() -> None:
    cfg = load_weekly_config()
    assert cfg == WeeklyReportConfig(
        description=cfg.description, delivery=WeeklyDelivery(timeout_seconds=10.0)
    )
    assert cfg.out_dir == Path("reports/weekly") and cfg.stress_dir == Path("reports/stress")
    assert cfg.eval_split == "test" and cfg.ladder_config is None
    assert read_yaml(shipped_config("weekly_report"))["delivery"]["smtp_to"] == []


def test_incomplete_email_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="smtp_from"):
        validate_model(WeeklyReportConfig, {"delivery": {"smtp_host": "localhost"}}, "x.yaml")


def test_shipped_schedule_runs_the_weekly_report_on_fridays_after_the_close() -> None:
    from stairways.schedule.settings import load_schedule

    job = load_schedule(shipped_config("schedule")).jobs["weekly_report"]
    assert job.cron == "0 18 * * 5" and job.command == ("report", "weekly")
    # Not sessions_only: a Good Friday must still report the Monday-to-Thursday sessions;
    # the command itself skips weeks without sessions.
    assert job.sessions_only is False


def test_cli_writes_the_report_and_refuses_a_bad_week(
    journal: tuple[Journal, JournalLocation],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.cli_helpers import stairways

    j, loc = journal
    write_session(j, date(2026, 11, 23), [("NVDA", 10, 100, 101, 0.5)])
    monkeypatch.chdir(tmp_path)
    path = str(loc)
    assert stairways(monkeypatch, "report", "weekly", "--week", "2026-W99", "-j", path) == 2
    assert "2026-W99" in capsys.readouterr().err
    code = stairways(
        monkeypatch, "report", "weekly", "--week", "2026-W48", "-j", path, "--out", "o"
    )
    assert code == 0
    assert "Net P&L $9.00 in 2026-W48" in capsys.readouterr().out
    assert len(pypdf.PdfReader(tmp_path / "o" / "weekly-2026-W48.pdf").pages) == 1
