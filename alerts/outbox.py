"""The outbox: notifications are rows written with the state change that caused them.

A message is marked sent only after its receiver accepted it, and each is committed on its
own, so a crash or an outage delays a message instead of losing it; every notifier finds (or
lets its receiver drop) a message an interrupted attempt already delivered, so a message
re-sent after a crash does not double. Each receiver's queue leaves in the order it was
written, in a thread of its own: a receiver that is down or hanging never delays another.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
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


def backoff(
    attempts: int,
    retry_after: float | None,
    rng: random.Random,
    base: timedelta = BASE_BACKOFF,
) -> timedelta:
    """Exponential with jitter, but never sooner than the receiver asked (Retry-After)."""
    ceiling = min(MAX_BACKOFF, base * 2 ** max(0, attempts - 1))
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

    def __iadd__(self, other: DrainResult) -> DrainResult:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.expired += other.expired
        return self


def pending_receivers(sessions: sessionmaker[Session]) -> list[str]:
    """Receivers with messages waiting, in the order their oldest message was written."""
    with sessions() as session:
        rows = session.execute(
            select(OutboxMessage.receiver, func.min(OutboxMessage.id))
            .where(OutboxMessage.status == PENDING)
            .group_by(OutboxMessage.receiver)
        ).all()
    return [receiver for receiver, _ in sorted(rows, key=lambda row: row[1])]


def drain(
    sessions: sessionmaker[Session],
    notifiers: Mapping[str, Notifier],
    now: datetime,
    max_age: timedelta,
    rng: random.Random | None = None,
) -> DrainResult:
    """Deliver every due message once, each receiver in a thread of its own; returns what
    happened, for logs and metrics.

    A receiver that hangs until its timeout delays only its own messages: the others are
    sent meanwhile, and this call returns when the slowest receiver is done.
    """
    rng = rng or random.Random()
    receivers = pending_receivers(sessions)
    result = DrainResult()
    if len(receivers) <= 1:
        for receiver in receivers:
            result += drain_receiver(sessions, receiver, notifiers.get(receiver), now, max_age, rng)
        return result
    results: dict[str, DrainResult] = {}
    errors: list[BaseException] = []

    def work(receiver: str, seed: int) -> None:
        try:
            results[receiver] = drain_receiver(
                sessions, receiver, notifiers.get(receiver), now, max_age, random.Random(seed)
            )
        except BaseException as exc:  # re-raised in the caller, which owns error handling
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(r, rng.random()), name=f"outbox:{r}", daemon=True)
        for r in receivers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for one in results.values():
        result += one
    if errors:
        raise errors[0]
    return result


def drain_receiver(
    sessions: sessionmaker[Session],
    receiver: str,
    notifier: Notifier | None,
    now: datetime,
    max_age: timedelta,
    rng: random.Random,
    base_backoff: timedelta = BASE_BACKOFF,
) -> DrainResult:
    """Send one receiver's due messages, oldest first, each committed on its own.

    The receiver's queue is first in, first out: a message never overtakes an older one that
    is waiting for a retry, so an alert group's messages arrive in order and, after an
    outage, heads arrive in the order their incidents opened. A retryable failure holds the
    receiver's whole queue until the failed message's next attempt (a receiver that is down
    is down for every message; hammering it with the rest helps nobody).
    """
    result = DrainResult()
    with sessions() as session:
        ids = session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.status == PENDING, OutboxMessage.receiver == receiver)
            .order_by(OutboxMessage.id)
        ).all()
    for message_id in ids:
        with sessions.begin() as session:
            message = session.get(OutboxMessage, message_id, with_for_update=True)
            if message is None or message.status != PENDING:
                continue
            if now - message.created_at > max_age:
                message.status, message.last_error = EXPIRED, f"undelivered after {max_age}"
                result.expired += 1
                continue
            if notifier is None:
                message.status, message.last_error = FAILED, "receiver is not configured"
                result.failed += 1
                continue
            if message.next_attempt_at > now:
                break
            notification = notification_of(message, _thread_ref(session, message))
            message.attempts += 1
            try:
                delivery = notifier.send(notification)
            except DeliveryError as exc:
                message.last_error = str(exc)
                if not exc.retryable:
                    message.status = FAILED
                    result.failed += 1
                    continue
                message.next_attempt_at = now + backoff(
                    message.attempts, exc.retry_after, rng, base_backoff
                )
                _hold_receiver(session, receiver, message.next_attempt_at)
                result.retried += 1
                break
            message.status, message.sent_at, message.ref = SENT, now, delivery.ref
            message.last_error = None
            result.sent += 1
    return result


def _hold_receiver(session: Session, receiver: str, until: datetime) -> None:
    """A failure (and a rate limit's Retry-After) is the receiver's, not one message's: hold
    all its mail, so the queue resumes in order when the receiver is back."""
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
