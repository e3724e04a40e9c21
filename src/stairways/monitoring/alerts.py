"""Alerts without Prometheus: the app checks :data:`~stairways.monitoring.rules.RULES` on the
journal's figures and sends what fires to a webhook (Slack-compatible JSON) and/or by email.

An alert is sent when it starts firing and again, while it keeps firing, at most once per
``repeat_seconds`` (deduplicated by name; rate-limited overall to ``max_per_minute`` messages).
Each sent or suppressed notification and each resolution is journaled as an ``alert`` record
of type ``monitor_alert``. A delivery that fails is journaled with the error and logged; it
never stops the monitor.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

from stairways.configbase import Frozen
from stairways.monitoring.rules import Firing

__all__ = [
    "AlertEvaluator",
    "AlertSettings",
    "DeliveryError",
    "SmtpSink",
    "WebhookSink",
]

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """A notification could not be delivered."""


class AlertSettings(Frozen):
    """Where alerts go and how often.

    :param webhook_url: Slack-compatible incoming webhook (POST JSON ``{"text": ...}``)
    :param smtp_host: SMTP server host (email needs host, sender and recipients)
    :param smtp_port: SMTP server port
    :param smtp_from: sender address
    :param smtp_to: recipients
    :param repeat_seconds: resend a still-firing alert after this long
    :param max_per_minute: at most this many notifications per minute in all
    :param timeout_seconds: network timeout of one delivery
    """

    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_to: tuple[str, ...] = ()
    repeat_seconds: float = 3600.0
    max_per_minute: int = 10
    timeout_seconds: float = 5.0


class Sink(Protocol):
    """Delivers one notification."""

    name: str

    def send(self, subject: str, text: str, alert: Mapping[str, Any]) -> None:
        """Deliver or raise :class:`DeliveryError`."""
        ...


@dataclass
class WebhookSink:
    """POSTs ``{"text": ..., "attachments": [...]}`` (Slack's incoming-webhook format)."""

    url: str
    timeout: float = 5.0
    name: str = "webhook"

    def send(self, subject: str, text: str, alert: Mapping[str, Any]) -> None:
        """POST the message; a non-2xx answer or a network error is a DeliveryError."""
        colour = {"critical": "danger", "warning": "warning"}.get(str(alert.get("severity")), "")
        body = {
            "text": f"{subject}\n{text}",
            "attachments": [
                {
                    "color": colour,
                    "title": subject,
                    "text": text,
                    "fields": [
                        {"title": k, "value": str(v), "short": True}
                        for k, v in alert.items()
                        if k in ("name", "severity", "status")
                    ],
                }
            ],
        }
        req = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status = resp.status
        except (urllib.error.URLError, OSError) as err:
            raise DeliveryError(f"webhook {self.url}: {err}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook {self.url} answered HTTP {status}")


@dataclass
class SmtpSink:
    """Sends a plain-text email through an SMTP server."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    timeout: float = 5.0
    name: str = "smtp"

    def send(self, subject: str, text: str, alert: Mapping[str, Any]) -> None:
        """Send the email; SMTP and network errors are a DeliveryError."""
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as err:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {err}") from None


def sinks_from(settings: AlertSettings) -> list[Sink]:
    """The sinks the settings configure (none when nothing is set)."""
    out: list[Sink] = []
    if settings.webhook_url:
        out.append(WebhookSink(settings.webhook_url, settings.timeout_seconds))
    if settings.smtp_host or settings.smtp_to or settings.smtp_from:
        if not (settings.smtp_host and settings.smtp_to and settings.smtp_from):
            raise ValueError(
                "email alerts need smtp_host, smtp_from and at least one smtp_to address"
            )
        out.append(
            SmtpSink(
                settings.smtp_host,
                settings.smtp_port,
                settings.smtp_from,
                tuple(settings.smtp_to),
                settings.timeout_seconds,
            )
        )
    return out


@dataclass
class _Active:
    since: datetime
    message: str
    severity: str
    last_sent: float | None = None


@dataclass
class AlertEvaluator:
    """Tracks firing alerts, notifies the sinks, journals each notification.

    :param sinks: where notifications go (may be empty: alerts are still journaled and shown)
    :param journal_append: ``append(kind, payload, ts)`` of the journal writer (or None)
    :param monotonic: wall seconds for the repeat and rate limits
    :param settings: repeat interval and rate limit
    """

    sinks: Sequence[Sink]
    journal_append: Callable[[str, Mapping[str, Any], datetime], Any] | None
    monotonic: Callable[[], float]
    settings: AlertSettings = field(default_factory=AlertSettings)
    active: dict[str, _Active] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    _window: deque[float] = field(default_factory=deque)

    def _journal(self, payload: dict[str, Any], at: datetime) -> None:
        if self.journal_append is not None:
            self.journal_append("alert", {"type": "monitor_alert", **payload}, at)

    def _allowed(self, now: float) -> bool:
        while self._window and now - self._window[0] >= 60.0:
            self._window.popleft()
        return len(self._window) < self.settings.max_per_minute

    def update(self, firing: Sequence[Firing], at: datetime) -> None:
        """Compare with what fired before: notify new (and due repeats), journal resolutions."""
        now = self.monotonic()
        names = {f.rule.name for f in firing}
        for name in [n for n in self.active if n not in names]:
            gone = self.active.pop(name)
            self._journal(
                {
                    "name": name,
                    "severity": gone.severity,
                    "status": "resolved",
                    "message": gone.message,
                    "since": gone.since.isoformat(),
                },
                at,
            )
        for f in firing:
            name = f.rule.name
            cur = self.active.get(name)
            if cur is None:
                cur = self.active[name] = _Active(at, f.message, f.rule.severity)
            cur.message = f.message
            due = cur.last_sent is None or now - cur.last_sent >= self.settings.repeat_seconds
            if not due:
                continue
            alert = {
                "name": name,
                "severity": f.rule.severity,
                "status": "firing",
                "message": f.message,
                "since": cur.since.isoformat(),
            }
            if not self._allowed(now):
                self._journal({**alert, "delivery": "rate_limited"}, at)
                log.warning(
                    "alert %s not sent: over %d per minute", name, self.settings.max_per_minute
                )
                cur.last_sent = now  # counted as handled; repeats follow the usual interval
                continue
            self._window.append(now)
            cur.last_sent = now
            delivered, failed = self._deliver(alert)
            self._journal({**alert, "delivered": delivered, "failed": failed}, at)
            self.sent.append(alert)

    def _deliver(self, alert: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
        subject = f"[{str(alert['severity']).upper()}] {alert['name']}"
        text = f"{alert['message']} (since {alert['since']})"
        delivered: list[str] = []
        failed: dict[str, str] = {}
        for sink in self.sinks:
            try:
                sink.send(subject, text, alert)
            except DeliveryError as err:
                log.error("alert %s: delivery failed: %s", alert["name"], err)
                failed[sink.name] = str(err)
            else:
                delivered.append(sink.name)
        return delivered, failed

    def firing(self) -> list[dict[str, Any]]:
        """The alerts firing now (JSON-ready)."""
        return [
            {"name": n, "severity": a.severity, "message": a.message, "since": a.since.isoformat()}
            for n, a in sorted(self.active.items())
        ]
