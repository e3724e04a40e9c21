"""The nightly stress and weekly report automation: the systemd units (checked with
``systemd-analyze verify`` and ``systemd-analyze calendar``), the schedule's jobs, which skip
non-session days, and the link from the nightly results to the weekly report."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stairways.schedule.runner import next_occurrence
from stairways.schedule.settings import load_schedule
from stairways.weekly.settings import load_weekly_config

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SCHEDULE = ROOT / "config" / "schedule.yaml"
NY = ZoneInfo("America/New_York")
ANALYZE = shutil.which("systemd-analyze")

needs_systemd = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def _installed_copies(tmp_path: Path) -> list[Path]:
    """The units as installed here: this venv's stairways, a working directory that exists."""
    exe = str(Path(sys.executable).with_name("stairways"))
    out = []
    for unit in sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.timer")):
        text = unit.read_text(encoding="utf-8")
        text = text.replace("/opt/stairways/.venv/bin/stairways", exe)
        text = text.replace("WorkingDirectory=/opt/stairways", f"WorkingDirectory={tmp_path}")
        path = tmp_path / unit.name
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out


def _on_calendar(timer: str) -> str:
    text = (UNITS / timer).read_text(encoding="utf-8")
    (spec,) = re.findall(r"^OnCalendar=(.+)$", text, flags=re.MULTILINE)
    return spec.strip()


def _elapses(spec: str, base: str, n: int) -> list[datetime]:
    assert ANALYZE is not None
    out = subprocess.run(
        [ANALYZE, "calendar", f"--base-time={base}", f"--iterations={n}", spec],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\S+ \S+) UTC", out)
    assert len(found) == n, out
    return [datetime.fromisoformat(f + "+00:00").astimezone(NY) for f in found]


def test_every_job_has_its_units_and_the_stress_job_is_session_days_only() -> None:
    names = {p.name for p in UNITS.iterdir()}
    for base in ("stairways-schedule", "stairways-nightly-stress", "stairways-weekly-report"):
        assert {f"{base}.service", f"{base}.timer"} <= names
    cfg = load_schedule(SCHEDULE)
    for unit, job in (("nightly-stress", "nightly_stress"), ("weekly-report", "weekly_report")):
        text = (UNITS / f"stairways-{unit}.service").read_text(encoding="utf-8")
        assert f"schedule run-due --job {job} " in text
        assert cfg.jobs[job].enabled
    stress = cfg.jobs["nightly_stress"]
    assert stress.sessions_only is True
    assert stress.command[:2] == ("stress", "run")
    assert "--run" not in stress.command  # the suite picks its model from its config


def test_the_nightly_stress_runs_at_the_live_loops_real_time_priority() -> None:
    # Its latency gates are the live stack's as it trades (chrt -f 10), not a niced job's.
    text = (UNITS / "stairways-nightly-stress.service").read_text(encoding="utf-8")
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["CPUSchedulingPolicy"] == "fifo"
    assert settings["CPUSchedulingPriority"] == "10"
    assert "Nice" not in settings
    assert "rtprio" in text  # the unit says what a user unit needs for it


def test_nightly_results_reach_the_weekly_report() -> None:
    stress = load_schedule(SCHEDULE).jobs["nightly_stress"].command
    out = Path(stress[stress.index("--out") + 1])
    assert out == load_weekly_config(None).stress_dir


@needs_systemd
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    assert ANALYZE is not None
    units = _installed_copies(tmp_path)
    done = subprocess.run(
        [ANALYZE, "verify", *map(str, units)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ours = [
        line for line in done.stderr.splitlines() if str(tmp_path) in line or "stairways" in line
    ]
    assert not ours, ours


@needs_systemd
def test_verify_would_catch_a_broken_calendar(tmp_path: Path) -> None:
    assert ANALYZE is not None
    units = _installed_copies(tmp_path)
    timer = next(u for u in units if u.name == "stairways-nightly-stress.timer")
    timer.write_text(re.sub(r"OnCalendar=.*", "OnCalendar=Mon..Fri 25:99", timer.read_text()))
    done = subprocess.run([ANALYZE, "verify", str(timer)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode != 0


@needs_systemd
def test_nightly_timer_fires_after_the_job_on_weekdays_and_the_schedule_skips_holidays() -> None:
    cfg = load_schedule(SCHEDULE)
    job = cfg.jobs["nightly_stress"]
    # From Monday 2024-07-01: the timer fires every weekday at 20:35 New York, Independence
    # Day (Thursday) included; the schedule's job is due at 20:30 on sessions only.
    fires = _elapses(_on_calendar("stairways-nightly-stress.timer"), "2024-07-01 12:00 UTC", 5)
    assert [f.date().isoformat() for f in fires] == [
        "2024-07-01", "2024-07-02", "2024-07-03", "2024-07-04", "2024-07-05",
    ]  # fmt: skip
    assert all((f.hour, f.minute) == (20, 35) for f in fires)
    after = datetime(2024, 7, 3, 21, 0, tzinfo=NY)
    due = next_occurrence(job, cfg, after)
    assert due == datetime(2024, 7, 5, 20, 30, tzinfo=NY)  # the holiday is skipped
    same_day = next_occurrence(job, cfg, datetime(2024, 7, 5, 12, 0, tzinfo=NY))
    assert same_day <= fires[-1]  # the timer fires after the job is due


@needs_systemd
def test_weekly_timer_fires_fridays_after_the_report_is_due() -> None:
    cfg = load_schedule(SCHEDULE)
    fires = _elapses(_on_calendar("stairways-weekly-report.timer"), "2024-11-25 12:00 UTC", 3)
    assert all(f.weekday() == 4 and (f.hour, f.minute) == (18, 5) for f in fires)
    due = next_occurrence(cfg.jobs["weekly_report"], cfg, datetime(2024, 11, 25, tzinfo=NY))
    assert due <= fires[0] and due.date() == fires[0].date()
