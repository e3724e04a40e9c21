"""run-due: what is due, what runs, what is remembered; the schedule file; the CLI."""

from __future__ import annotations

import fcntl
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from typer.testing import CliRunner

from stairways.cli.main import app as main_app
from stairways.configbase import validate_model
from stairways.errors import ConfigError, DataValidationError, TemporaryError
from stairways.schedule.runner import (
    TIMEOUT_EXIT_CODE,
    ScheduleState,
    plan,
    run_due,
    subprocess_runner,
)
from stairways.schedule.settings import ScheduleConfig, load_schedule
from stairways.schedule.timing import FixedClock

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


class FakeRunner:
    """Records the commands it is asked to run and answers with a set exit code."""

    def __init__(self, code: int = 0) -> None:
        self.code = code
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, args: Sequence[str], log_path: Path, timeout_s: float) -> int:
        self.calls.append(tuple(args))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("fake run\n")
        return self.code


def schedule(tmp_path: Path, **job: Any) -> ScheduleConfig:
    spec = {
        "cron": "0 7 1 1,4,7,10 *",
        "start": "2026-01-01T00:00:00",
        "command": ["audit", "rewards", "--latest", "5", "--out", "reports/{date}"],
    }
    spec.update(job)
    data = {
        "state_file": str(tmp_path / "state" / "schedule.json"),
        "logs_dir": str(tmp_path / "logs"),
        "jobs": {"audit": spec},
    }
    return validate_model(ScheduleConfig, data, "schedule.yaml")


def test_job_due_then_runs_once_and_not_again_until_next_occurrence(tmp_path: Path) -> None:
    cfg = schedule(tmp_path)
    clock = FixedClock(ny(2026, 1, 1, 8, 0))
    runner = FakeRunner()

    first = run_due(cfg, clock, runner=runner)
    again = run_due(cfg, clock, runner=runner)
    clock.advance(timedelta(days=60))  # 2026-03-02: before the April occurrence
    early = run_due(cfg, clock, runner=runner)
    clock.at = ny(2026, 4, 1, 7, 0)
    second = run_due(cfg, clock, runner=runner)

    assert [r.due for r in first] == [ny(2026, 1, 1, 7, 0)]
    assert again == [] and early == []
    assert [r.due for r in second] == [ny(2026, 4, 1, 7, 0)]
    assert runner.calls[0] == ("audit", "rewards", "--latest", "5", "--out", "reports/2026-01-01")
    state = ScheduleState.load(cfg.state_file)
    assert state.jobs["audit"].last_due == ny(2026, 4, 1, 7, 0).isoformat()
    assert state.jobs["audit"].last_exit_code == 0


def test_several_missed_occurrences_then_one_run_for_the_latest(tmp_path: Path) -> None:
    cfg = schedule(tmp_path)
    runner = FakeRunner()
    runs = run_due(cfg, FixedClock(ny(2026, 11, 24, 12, 0)), runner=runner)

    assert len(runs) == 1 and len(runner.calls) == 1
    assert runs[0].due == ny(2026, 10, 1, 7, 0)
    assert runner.calls[0][-1] == "reports/2026-10-01"


def test_job_without_start_then_first_due_after_it_was_first_seen(tmp_path: Path) -> None:
    cfg = schedule(tmp_path, start=None, cron="0 18 * * *")
    runner = FakeRunner()
    clock = FixedClock(ny(2026, 11, 24, 12, 0))

    assert run_due(cfg, clock, runner=runner) == []  # first seen at noon: nothing missed yet
    clock.at = ny(2026, 11, 24, 18, 0)
    assert [r.due for r in run_due(cfg, clock, runner=runner)] == [ny(2026, 11, 24, 18, 0)]


def test_failing_job_then_recorded_not_ok_and_not_retried_at_once(tmp_path: Path) -> None:
    cfg = schedule(tmp_path)
    clock = FixedClock(ny(2026, 1, 2))
    runs = run_due(cfg, clock, runner=FakeRunner(code=1))
    assert [r.ok for r in runs] == [False]
    assert ScheduleState.load(cfg.state_file).jobs["audit"].last_exit_code == 1
    assert run_due(cfg, clock, runner=FakeRunner()) == []


def test_exit_code_listed_as_ok_then_job_counts_as_succeeded(tmp_path: Path) -> None:
    cfg = schedule(tmp_path, ok_exit_codes=[0, 3])
    runs = run_due(cfg, FixedClock(ny(2026, 1, 2)), runner=FakeRunner(code=3))
    assert runs[0].ok and runs[0].exit_code == 3


def test_disabled_job_then_listed_but_never_run(tmp_path: Path) -> None:
    cfg = schedule(tmp_path, enabled=False)
    clock = FixedClock(ny(2026, 1, 2))
    assert run_due(cfg, clock, runner=FakeRunner()) == []
    (status,) = plan(cfg, ScheduleState.load(cfg.state_file), clock)
    assert not status.due and status.next_due == ny(2026, 1, 1, 7, 0)


def test_other_run_due_holding_the_lock_then_temporary_error(tmp_path: Path) -> None:
    cfg = schedule(tmp_path)
    lock = cfg.state_file.with_name(cfg.state_file.name + ".lock")
    lock.parent.mkdir(parents=True)
    with lock.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        with pytest.raises(TemporaryError, match="another"):
            run_due(cfg, FixedClock(ny(2026, 1, 2)), runner=FakeRunner())


def test_malformed_state_file_then_data_validation_error_names_it(tmp_path: Path) -> None:
    cfg = schedule(tmp_path)
    cfg.state_file.parent.mkdir(parents=True)
    cfg.state_file.write_text("{not json")
    with pytest.raises(DataValidationError, match=str(cfg.state_file)):
        run_due(cfg, FixedClock(ny(2026, 1, 2)), runner=FakeRunner())


@pytest.mark.parametrize(
    ("job", "match"),
    [
        ({"every": "90d"}, "exactly one of cron or every"),
        ({"cron": "0 7 1 *"}, "5 fields"),
        ({"command": ["schedule", "run-due"]}, "cannot run"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_job_then_config_error_names_file_and_key(
    tmp_path: Path, job: dict[str, Any], match: str
) -> None:
    path = tmp_path / "schedule.yaml"
    spec = {"cron": "0 7 * * *", "command": ["runs", "list"], **job}
    path.write_text(yaml.safe_dump({"jobs": {"audit": spec}}))
    with pytest.raises(ConfigError, match=match) as err:
        load_schedule(path)
    assert str(path) in str(err.value) and "jobs.audit" in str(err.value)


def test_unknown_timezone_then_config_error(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump({"timezone": "Mars/Olympus", "jobs": {}}))
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        load_schedule(path)


def test_shipped_schedule_then_loads_with_a_quarterly_reward_audit() -> None:
    cfg = load_schedule(Path(__file__).resolve().parents[3] / "config" / "schedule.yaml")
    job = cfg.jobs["reward_audit_quarterly"]
    assert job.command[:2] == ("audit", "rewards") and 3 in job.ok_exit_codes


def test_real_command_then_exit_code_and_log_recorded(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "help.log"
    assert subprocess_runner(["schedule", "--help"], log, 120.0) == 0
    text = log.read_text()
    assert text.startswith("$ ") and "run-due" in text


def test_command_past_its_timeout_then_exit_code_124(tmp_path: Path) -> None:
    # Starting Python alone takes longer than a millisecond.
    assert subprocess_runner(["--help"], tmp_path / "t.log", 0.001) == TIMEOUT_EXIT_CODE
    assert "timeout" in (tmp_path / "t.log").read_text()


def test_cli_list_then_next_due_time_shown(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "state_file": str(tmp_path / "state.json"),
                "jobs": {"audit": {"cron": "0 7 1 1,4,7,10 *", "command": ["runs", "list"]}},
            }
        )
    )
    result = CliRunner().invoke(main_app, ["schedule", "list", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "audit" in result.output and " 07:00 " in result.output
    assert not (tmp_path / "state.json").exists()  # listing changes nothing


def test_cli_install_cron_then_line_runs_run_due_with_absolute_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump({"jobs": {}}))
    out = tmp_path / "stairways.cron"
    result = CliRunner().invoke(
        main_app, ["schedule", "install-cron", "--config", str(path), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    line = out.read_text()
    assert line.startswith(f"*/15 * * * * cd {tmp_path} && ")
    assert f"schedule run-due --config {path.resolve()}" in line
    assert (tmp_path / "logs" / "schedule").is_dir()
