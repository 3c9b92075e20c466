"""The contract every notifier keeps: one `send` that is idempotent on the notification's key.

A notifier never decides whether to retry; it raises `DeliveryError` saying whether a retry can
help, and the outbox owns backoff and bookkeeping (the Alertmanager split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

EventKind = Literal["open", "resolve"]


@dataclass(frozen=True)
class Alert:
    """Everything a human needs to act on one incident, independent of the channel."""

    model: str
    slo: str
    metric: str
    kind: str
    severity: str
    objective: str
    window: str
    value: float | None
    n: int
    runbook_url: str
    started_at: datetime
    feature: str | None = None
    ci: tuple[float, float] | None = None
    resolved_at: datetime | None = None
    unit: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        target = f" / {self.feature}" if self.feature else ""
        return f"{self.model}: {self.metric}{target} {self.objective} ({self.window})"


@dataclass(frozen=True)
class Notification:
    """One message for one receiver; `key` is unique per (incident, event, receiver)."""

    key: str
    receiver: str
    incident_key: str
    event: EventKind
    alert: Alert
    thread_ref: str | None = None


@dataclass(frozen=True)
class Delivery:
    """What the channel handed back: `ref` threads later messages (Slack's `ts`)."""

    ref: str | None = None


class DeliveryError(Exception):
    """Delivery failed; `retryable` tells the outbox whether trying again can help.

    The message must never carry a secret (token, routing key, URL with credentials).
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Notifier(Protocol):
    """Delivers one notification or raises `DeliveryError`."""

    def send(self, notification: Notification) -> Delivery: ...
