"""Delivering the weekly report: a copy in a folder, the verdict to a webhook, an email with
the PDF and the HTML page attached.

The webhook goes through the monitoring alerts' :class:`~stairways.monitoring.alerts.
WebhookSink` (one HTTP client for notifications); the email is built here because it carries
attachments, which the alerts' plain-text sink does not. Every configured channel is tried;
the failures are returned, not raised, so one broken channel does not keep the others from
delivering.
"""

from __future__ import annotations

import logging
import shutil
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from stairways.monitoring.alerts import DeliveryError, WebhookSink
from stairways.weekly.settings import WeeklyDelivery

__all__ = ["Delivered", "deliver_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    """One channel's outcome: ``error`` empty when it was delivered."""

    channel: str
    target: str
    error: str = ""


def _email(cfg: WeeklyDelivery, subject: str, body: str, files: list[Path]) -> None:
    assert cfg.smtp_host is not None and cfg.smtp_from is not None
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = cfg.smtp_from
    msg["To"] = ", ".join(cfg.smtp_to)
    msg.set_content(body)
    for path in files:
        sub = "pdf" if path.suffix == ".pdf" else "html"
        main = "application" if sub == "pdf" else "text"
        msg.add_attachment(path.read_bytes(), maintype=main, subtype=sub, filename=path.name)
    try:
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_seconds) as smtp:
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as err:
        raise DeliveryError(f"SMTP {cfg.smtp_host}:{cfg.smtp_port}: {err}") from None


def deliver_report(
    cfg: WeeklyDelivery, subject: str, body: str, html_path: Path, pdf_path: Path
) -> list[Delivered]:
    """Deliver through every configured channel; one :class:`Delivered` per channel."""
    out: list[Delivered] = []
    if cfg.folder is not None:
        try:
            cfg.folder.mkdir(parents=True, exist_ok=True)
            for path in (html_path, pdf_path):
                shutil.copyfile(path, cfg.folder / path.name)
            out.append(Delivered("folder", str(cfg.folder)))
        except OSError as err:
            out.append(Delivered("folder", str(cfg.folder), f"{err.strerror}: {err.filename}"))
    if cfg.webhook_url:
        try:
            WebhookSink(cfg.webhook_url, cfg.timeout_seconds).send(
                subject, body, {"name": "weekly_report", "severity": "info", "status": "sent"}
            )
            out.append(Delivered("webhook", cfg.webhook_url))
        except DeliveryError as err:
            out.append(Delivered("webhook", cfg.webhook_url, str(err)))
    if cfg.smtp_host:
        target = ", ".join(cfg.smtp_to)
        try:
            _email(cfg, subject, body, [pdf_path, html_path])
            out.append(Delivered("email", target))
        except DeliveryError as err:
            out.append(Delivered("email", target, str(err)))
    for d in out:
        if d.error:
            log.error("weekly report not delivered by %s to %s: %s", d.channel, d.target, d.error)
    return out
