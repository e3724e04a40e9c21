"""The schedule file: jobs, when each is due, and what it runs.

A job runs a ``stairways`` subcommand. In its arguments ``{date}`` becomes the due date in the
schedule's timezone (YYYY-MM-DD), so each run can write to its own directory::

    timezone: America/New_York
    jobs:
      reward_audit_quarterly:
        cron: "0 7 1 1,4,7,10 *"          # 07:00 New York on the first day of each quarter
        command: [audit, rewards, --latest, "5", --runs-dir, runs,
                  --out, "reports/reward_audit/{date}"]
        ok_exit_codes: [0, 3]             # 3: critical flags were found and reported
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from stairways.configbase import Frozen, load_yaml_with_extends, validate_model
from stairways.errors import ConfigError
from stairways.schedule.timing import parse_cron, parse_interval

__all__ = ["JobConfig", "ScheduleConfig", "load_schedule"]


class JobConfig(Frozen):
    """One scheduled job: exactly one of ``cron`` or ``every``, and the command it runs.

    :param start: first instant the job may be due (naive times are in the schedule's
        timezone); without it a job is first due at its first occurrence after the scheduler
        first saw it
    :param sessions_only: only fire on exchange session days (later occurrences are used)
    """

    description: str = ""
    cron: str | None = None
    every: str | None = None
    start: datetime | None = None
    sessions_only: bool = False
    command: tuple[str, ...] = Field(min_length=1, description="stairways subcommand and args")
    timeout_minutes: float = Field(default=60.0, gt=0.0, le=24 * 60.0)
    ok_exit_codes: tuple[int, ...] = Field(default=(0,), min_length=1)
    enabled: bool = True

    @model_validator(mode="after")
    def _one_timing(self) -> Self:
        if (self.cron is None) == (self.every is None):
            raise ValueError("a job needs exactly one of cron or every")
        # Parse now so a bad expression fails when the file loads, not when the job is due.
        try:
            if self.cron is not None:
                parse_cron(self.cron)
            if self.every is not None:
                parse_interval(self.every)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        if self.command[0] == "schedule":
            raise ValueError("a scheduled job cannot run `stairways schedule` itself")
        return self


class ScheduleConfig(Frozen):
    """The whole schedule: timezone, exchange calendar, state and log locations, jobs."""

    timezone: str = "America/New_York"
    calendar: str = "XNYS"
    state_file: Path = Path("state/schedule_state.json")
    logs_dir: Path = Path("logs/schedule")
    jobs: dict[str, JobConfig] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {v!r} (use an IANA name such as America/New_York)"
            ) from None
        return v

    @field_validator("jobs")
    @classmethod
    def _job_names(cls, v: dict[str, JobConfig]) -> dict[str, JobConfig]:
        for name in v:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"job name {name!r} may only hold letters, digits, _ and -")
        return v


def load_schedule(path: Path) -> ScheduleConfig:
    """Read and validate a schedule file (ConfigError naming the file and key when invalid)."""
    return validate_model(ScheduleConfig, load_yaml_with_extends(path), str(path))
