"""Settings of the weekly report (``config/weekly_report.yaml``): where it is written, what it
reads besides the journal, and where it is delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from stairways.configbase import Frozen, read_yaml, validate_model

__all__ = ["DEFAULT_WEEKLY_CONFIG", "WeeklyDelivery", "WeeklyReportConfig", "load_weekly_config"]

DEFAULT_WEEKLY_CONFIG = "weekly_report.yaml"


class WeeklyDelivery(Frozen):
    """Where the finished report goes, besides ``out_dir`` (every channel is optional).

    :param folder: copy the HTML and PDF into this folder (a shared drive, for example)
    :param webhook_url: POST the verdict to this Slack-compatible webhook
    :param smtp_host: SMTP server for the email (email needs host, sender and recipients)
    :param smtp_port: SMTP server port
    :param smtp_from: sender address
    :param smtp_to: recipients (the PDF and the HTML page are attached)
    :param timeout_seconds: network timeout of one delivery
    """

    folder: Path | None = None
    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str | None = None
    smtp_to: tuple[str, ...] = ()
    timeout_seconds: float = Field(default=10.0, gt=0.0)

    @model_validator(mode="after")
    def _email_complete(self) -> Self:
        given = [self.smtp_host, self.smtp_from, self.smtp_to]
        if any(given) and not all(given):
            raise ValueError("email delivery needs smtp_host, smtp_from and at least one smtp_to")
        return self


class WeeklyReportConfig(Frozen):
    """The weekly report's settings.

    :param out_dir: where ``weekly-<week>.html`` and ``.pdf`` are written (``--out`` overrides)
    :param stress_dir: where ``stairways stress run`` writes its results (``latest.json``)
    :param eval_split: the evaluation split the week is compared with (action mix, gates)
    :param ladder_config: the ladder's thresholds (None: the shipped ``config/ladder.yaml``)
    :param delivery: folder, webhook and email delivery
    """

    description: str = ""
    out_dir: Path = Path("reports/weekly")
    stress_dir: Path = Path("reports/stress")
    eval_split: str = Field(default="test", min_length=1)
    ladder_config: Path | None = None
    delivery: WeeklyDelivery = WeeklyDelivery()


def load_weekly_config(path: Path | None = None) -> WeeklyReportConfig:
    """The weekly report config at ``path``, or the shipped ``config/weekly_report.yaml``."""
    from stairways.resources import shipped_config

    source = path if path is not None else shipped_config(DEFAULT_WEEKLY_CONFIG)
    return validate_model(WeeklyReportConfig, read_yaml(source), str(source))
