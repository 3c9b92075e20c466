"""The outbox: notifications are rows written with the state change that caused them.

A message is marked sent only after its receiver accepted it, and each is committed on its
own, so a crash or an outage delays a message instead of losing it; receivers are idempotent
on the group key, so a message re-sent after a crash does not double. Messages of one
(group, receiver) leave in order; a receiver that is down never blocks another receiver.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from alerts.notifiers.base import Alert, DeliveryError, EventKind, Notification, Notifier
from alerts.payloads import alert_from_json, alert_to_json
from monitor.store.tables import AlertGroup, OutboxMessage

PENDING, SENT, FAILED, EXPIRED = "pending", "sent", "failed", "expired"
BASE_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(minutes=30)


def enqueue(
    session: Session,
    group: AlertGroup,
    event: EventKind,
    alerts: Sequence[Alert],
    reason: str,
    now: datetime,
) -> OutboxMessage:
    sequence = group.sequence + 1
    message = OutboxMessage(
        key=f"{group.group_key}:{group.id}:{sequence}:{group.receiver}",
        receiver=group.receiver,
        group_id=group.id,
        event=event,
        payload={
            "group_key": group.group_key,
            "event": event,
            "reason": reason,
            "sequence": sequence,
            "alerts": [alert_to_json(a) for a in alerts],
        },
        status=PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(message)
    return message


def notification_of(message: OutboxMessage, thread_ref: str | None) -> Notification:
    payload: dict[str, Any] = message.payload
    event: EventKind = payload["event"]
    return Notification(
        key=message.key,
        receiver=message.receiver,
        group_key=payload["group_key"],
        event=event,
        alerts=tuple(alert_from_json(a) for a in payload["alerts"]),
        thread_ref=thread_ref,
        sequence=int(payload["sequence"]),
        reason=str(payload.get("reason", "")),
    )


def backoff(attempts: int, retry_after: float | None, rng: random.Random) -> timedelta:
    """Exponential with jitter, but never sooner than the receiver asked (Retry-After)."""
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
    paused: set[str] = set()
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
            lane = (message.group_id, message.receiver)
            if lane in blocked or message.receiver in paused:
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
            notification = notification_of(message, _thread_ref(session, message))
            message.attempts += 1
            try:
                delivery = notifier.send(notification)
            except DeliveryError as exc:
                message.last_error = str(exc)
                if exc.retryable:
                    message.next_attempt_at = now + backoff(message.attempts, exc.retry_after, rng)
                    blocked.add(lane)
                    result.retried += 1
                    if exc.retry_after is not None:
                        _hold_receiver(
                            session, message.receiver, now + timedelta(seconds=exc.retry_after)
                        )
                        paused.add(message.receiver)
                else:
                    message.status = FAILED
                    result.failed += 1
                continue
            message.status, message.sent_at, message.ref = SENT, now, delivery.ref
            message.last_error = None
            result.sent += 1
    return result


def _hold_receiver(session: Session, receiver: str, until: datetime) -> None:
    """A rate limit (Retry-After) is the receiver's, not one message's: hold all its mail."""
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.receiver == receiver,
            OutboxMessage.status == PENDING,
            OutboxMessage.next_attempt_at < until,
        )
        .values(next_attempt_at=until)
    )


def _thread_ref(session: Session, message: OutboxMessage) -> str | None:
    """The ref the receiver gave this group's first message (Slack's `ts`), if sent."""
    return session.scalars(
        select(OutboxMessage.ref).where(
            OutboxMessage.group_id == message.group_id,
            OutboxMessage.receiver == message.receiver,
            OutboxMessage.event == "open",
            OutboxMessage.status == SENT,
        )
    ).first()
