"""The outbox: notifications are rows written with the incident change, delivered later.

A message is marked sent only after its receiver accepted it, and each is committed on its
own, so a crash delays a message instead of losing it. Messages for one (incident, receiver)
leave in order; a receiver that is down never blocks another receiver.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.notifiers.base import Alert, DeliveryError, EventKind, Notification, Notifier
from alerts.payloads import alert_from_json, alert_to_json
from monitor.store.tables import Incident, OutboxMessage

PENDING, SENT, FAILED, EXPIRED = "pending", "sent", "failed", "expired"
BASE_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(minutes=30)


def enqueue(
    session: Session,
    incident: Incident,
    event: EventKind,
    receivers: list[str],
    alert: Alert,
    now: datetime,
) -> None:
    for receiver in receivers:
        session.add(
            OutboxMessage(
                key=f"{incident.dedup_key}:{incident.id}:{event}:{receiver}",
                receiver=receiver,
                incident_id=incident.id,
                event=event,
                payload=alert_to_json(alert),
                status=PENDING,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )


def backoff(attempts: int, retry_after: float | None, rng: random.Random) -> timedelta:
    """Exponential with full jitter, but never sooner than the receiver asked (Retry-After)."""
    ceiling = min(MAX_BACKOFF, BASE_BACKOFF * 2 ** max(0, attempts - 1))
    delay = timedelta(seconds=rng.uniform(0.5, 1.0) * ceiling.total_seconds())
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


@dataclass
class DrainResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0


def drain(
    sessions: sessionmaker[Session],
    notifiers: Mapping[str, Notifier],
    now: datetime,
    max_age: timedelta,
    rng: random.Random | None = None,
) -> DrainResult:
    """Deliver every due message once; returns what happened, for logs and metrics."""
    rng = rng or random.Random()
    result = DrainResult()
    blocked: set[tuple[int, str]] = set()
    with sessions() as session:
        ids = session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.status == PENDING)
            .order_by(OutboxMessage.id)
        ).all()
    for message_id in ids:
        with sessions.begin() as session:
            message = session.get(OutboxMessage, message_id, with_for_update=True)
            if message is None or message.status != PENDING:
                continue
            lane = (message.incident_id, message.receiver)
            if lane in blocked:
                continue
            if now - message.created_at > max_age:
                message.status, message.last_error = EXPIRED, f"undelivered after {max_age}"
                result.expired += 1
                continue
            if message.next_attempt_at > now:
                blocked.add(lane)
                continue
            notifier = notifiers.get(message.receiver)
            if notifier is None:
                message.status, message.last_error = FAILED, "receiver is not configured"
                result.failed += 1
                continue
            notification = Notification(
                key=message.key,
                receiver=message.receiver,
                incident_key=message.key.split(":", 1)[0],
                event="resolve" if message.event == "resolve" else "open",
                alert=alert_from_json(message.payload),
                thread_ref=_thread_ref(session, message),
            )
            message.attempts += 1
            try:
                delivery = notifier.send(notification)
            except DeliveryError as exc:
                message.last_error = str(exc)
                if exc.retryable:
                    message.next_attempt_at = now + backoff(message.attempts, exc.retry_after, rng)
                    blocked.add(lane)
                    result.retried += 1
                else:
                    message.status = FAILED
                    result.failed += 1
                continue
            message.status, message.sent_at, message.ref = SENT, now, delivery.ref
            message.last_error = None
            result.sent += 1
    return result


def _thread_ref(session: Session, message: OutboxMessage) -> str | None:
    """The ref the receiver gave this incident's first message (Slack's `ts`), if sent."""
    return session.scalars(
        select(OutboxMessage.ref).where(
            OutboxMessage.incident_id == message.incident_id,
            OutboxMessage.receiver == message.receiver,
            OutboxMessage.event == "open",
            OutboxMessage.status == SENT,
        )
    ).first()
