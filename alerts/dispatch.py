"""Turns due alert groups into outbox messages: one message per group, worst alert first.

It runs inside the tick's transaction (and in the sender job, for groups whose wait ended
between ticks), so a group's state and the message it caused are committed together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerts.notifiers.base import Alert, EventKind, Notifier, worst_first
from alerts.outbox import PENDING, DrainResult, drain, enqueue
from alerts.payloads import alert_from_json
from monitor.store.tables import AlertGroup, AlertGroupMember, Incident, OutboxMessage


def _reason(changes: list[tuple[Incident, str | None]], sequence: int) -> str:
    if sequence == 0:
        return "new alerts"
    kinds = []
    for incident, before in changes:
        if before is None:
            kinds.append("new alerts")
        elif incident.flapping:
            kinds.append("flapping")
        elif before.startswith("flapping"):
            kinds.append("settled")
        elif incident.status == "resolved":
            kinds.append("resolved")
        elif before.startswith("resolved"):
            kinds.append("re-fired")
        elif incident.status == "acknowledged":
            kinds.append("acknowledged")
        else:
            kinds.append("escalated")
    return ", ".join(dict.fromkeys(kinds)) or "reminder"


def _state(incident: Incident) -> str:
    """What a member looked like when last notified: a new severity is an escalation; while
    flapping, its status does not count (its changes are not notified)."""
    status = "flapping" if incident.flapping else incident.status
    return f"{status}/{incident.severity}"


def group_alerts(session: Session, group: AlertGroup) -> list[tuple[AlertGroupMember, Incident]]:
    rows = session.execute(
        select(AlertGroupMember, Incident)
        .join(Incident, Incident.id == AlertGroupMember.incident_id)
        .where(AlertGroupMember.group_id == group.id)
        .order_by(Incident.id)
    )
    return [(member, incident) for member, incident in rows]


def _alert(incident: Incident) -> Alert:
    alert = alert_from_json(incident.alert)
    return replace(
        alert, status=incident.status, severity=incident.severity, incident_key=incident.dedup_key
    )


def reminder_interval(group: AlertGroup, firing: list[Incident]) -> timedelta | None:
    """Pages are reminded every `repeat_interval`; a group with only tickets (or info) at
    most every `ticket_repeat_interval` (a day by default), or never when that is unset."""
    page = timedelta(seconds=group.repeat_interval_s)
    if any(i.severity == "page" for i in firing):
        return page
    if group.ticket_repeat_interval_s is None:
        return None
    return max(page, timedelta(seconds=group.ticket_repeat_interval_s))


def schedule_reminders(session: Session, now: datetime) -> None:
    """Groups still firing and unacknowledged are reminded (pages every `repeat_interval`,
    tickets at most daily), counted from their last message; flapping incidents are not; nor
    while one of the group's messages failed and waits for a retry (a reminder of something
    nobody has seen yet would only lengthen the queue of a receiver that is down)."""
    undelivered = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.group_id == AlertGroup.id,
            OutboxMessage.status == PENDING,
            OutboxMessage.attempts > 0,
        )
        .exists()
    )
    groups = session.scalars(
        select(AlertGroup).where(
            AlertGroup.status == "firing",
            AlertGroup.next_flush_at.is_(None),
            AlertGroup.last_notified_at.is_not(None),
            ~undelivered,
        )
    )
    for group in groups:
        assert group.last_notified_at is not None
        firing = [
            i
            for _, i in group_alerts(session, group)
            if i.status == "firing" and i.suppressed_by is None and not i.flapping
        ]
        interval = reminder_interval(group, firing)
        if firing and interval is not None and now >= group.last_notified_at + interval:
            group.next_flush_at = now


def flush(session: Session, now: datetime, force: bool = False) -> int:
    """Write one outbox message for every due group; returns how many were written.

    `force` sends every group with a message scheduled, waiting or not: a one-shot
    `vigil check` cannot stay around for `group_wait` to pass.
    """
    session.flush()  # sessions do not autoflush: make this tick's members visible
    schedule_reminders(session, now)
    session.flush()  # and the reminders just scheduled, or they wait for the next flush
    horizon = datetime.max.replace(tzinfo=now.tzinfo) if force else now
    due = session.scalars(
        select(AlertGroup)
        .where(AlertGroup.status != "resolved", AlertGroup.next_flush_at <= horizon)
        .order_by(AlertGroup.id)
        .with_for_update()
    ).all()
    written = 0
    for group in due:
        members = group_alerts(session, group)
        visible = [
            (m, i) for m, i in members if i.suppressed_by is None or m.notified_status is not None
        ]
        group.next_flush_at = None
        all_resolved = all(i.status == "resolved" for _, i in visible)
        if not visible or (group.sequence == 0 and all_resolved):
            if members and all(i.status == "resolved" for _, i in members):
                group.status = "resolved"
            continue
        changes = [(i, m.notified_status) for m, i in visible if m.notified_status != _state(i)]
        event: EventKind = (
            "open" if group.sequence == 0 else "resolve" if all_resolved else "update"
        )
        alerts = worst_first([_alert(i) for _, i in visible])
        enqueue(session, group, event, alerts, _reason(changes, group.sequence), now)
        for member, incident in visible:
            member.notified_status = _state(incident)
        group.sequence += 1
        group.last_notified_at = now
        group.updated_at = now
        if all_resolved:
            group.status = "resolved"
        written += 1
    return written


def deliver(
    sessions: sessionmaker[Session],
    notifiers: Mapping[str, Notifier],
    now: datetime,
    max_age: timedelta,
    force: bool = False,
) -> DrainResult:
    """The sender job: write messages for groups whose wait ended, then send what is due."""
    with sessions.begin() as session:
        flush(session, now, force=force)
    return drain(sessions, notifiers, now, max_age)
