"""The contract every notifier keeps: one `send` that is idempotent on the notification's key.

A notifier never decides whether to retry; it raises `DeliveryError` saying whether a retry can
help, and the outbox owns backoff and bookkeeping (the Alertmanager split).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from monitor.core.severity import severity_rank

EventKind = Literal["open", "update", "resolve"]
"""`open`: a group's first message; `update`: alerts added, escalated, acknowledged, resolved
or a reminder while still firing; `resolve`: every alert of the group is resolved."""


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
    status: str = "firing"
    """firing, acknowledged or resolved."""
    incident_key: str = ""
    details: dict[str, float] = field(default_factory=dict)
    """Supporting numbers, e.g. the most drifted features and their PSI, worst first."""
    report_url: str | None = None
    """Evidence attached to the incident (an evidently drift report), if any."""
    threshold: float | None = None
    """The objective's threshold as a number (durations in seconds), when the objective is a
    comparison: what `overshoot` measures against, so no channel re-parses `objective`."""
    higher_is_better: bool = True
    """The objective's direction: `>=`/`>` (True) or `<=`/`<` (False)."""
    root_cause: list[str] = field(default_factory=list)
    """Quality alerts: the top three slices explaining the change, one line each; drift
    alerts on `@score`: the inputs that moved the score most (README, "Root-cause hints")."""
    root_cause_table: list[dict[str, Any]] = field(default_factory=list)
    """Every slice with its shares, metric, mix and performance terms (the evidence)."""
    evidence_url: str | None = None
    """The incident's evidence page on the daemon (`<server.public_url>/incidents/<id>`);
    None when no public address is configured (then no channel links one)."""

    @property
    def title(self) -> str:
        target = f" / {self.feature}" if self.feature else ""
        return f"{self.model}: {self.metric}{target} {self.objective} ({self.window})"


@dataclass(frozen=True)
class Notification:
    """One message about one alert group for one receiver.

    `key` is unique per message (the idempotency key); `group_key` is stable for the life of
    the group: PagerDuty's dedup_key, the Slack thread's identity. `alerts` are worst first.
    """

    key: str
    receiver: str
    group_key: str
    event: EventKind
    alerts: tuple[Alert, ...]
    thread_ref: str | None = None
    sequence: int = 1
    reason: str = ""

    @property
    def alert(self) -> Alert:
        """The worst alert of the group: what a one-line channel shows."""
        return self.alerts[0]

    @property
    def incident_key(self) -> str:
        return self.group_key

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status != "resolved")


def measurement(alert: Alert) -> dict[str, object]:
    """What was measured, as plain JSON values: the fields the webhook body and a bug's
    evidence both carry, in the order the webhook schema documents."""
    return {
        "feature": alert.feature,
        "value": alert.value,
        "unit": alert.unit,
        "objective": alert.objective,
        "window": alert.window,
        "n": alert.n,
        "ci": list(alert.ci) if alert.ci is not None else None,
    }


def overshoot(alert: Alert) -> float:
    """How far past its objective an alert's value is, relative to the objective; 0 when the
    alert has no value or its objective is not a comparison (burn rates, meta-alerts)."""
    if alert.value is None or alert.threshold is None:
        return 0.0
    gap = alert.threshold - alert.value if alert.higher_is_better else alert.value - alert.threshold
    return gap / max(abs(alert.threshold), 1e-9)


def worst_first(alerts: list[Alert]) -> list[Alert]:
    """Firing before resolved, pages before tickets, then the furthest past its objective."""
    return sorted(
        alerts,
        key=lambda a: (
            a.status == "resolved",
            -severity_rank(a.severity),
            -overshoot(a),
            a.title,
        ),
    )


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
