"""Attaches incidents to alert groups and schedules when each group's next message is due.

Timers work as in Alertmanager: a new group waits `group_wait` so that breaches found together
leave together; a group that changed waits until `group_interval` after its last message; a
group still firing with nothing new is reminded after `repeat_interval`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.router import Destination, destinations
from alerts.suppression import incident_labels
from monitor.config.models import VigilConfig
from monitor.store.tables import AlertGroup, AlertGroupMember, Incident


def group_key(destination: Destination, labels: dict[str, str]) -> str:
    values = "\x1f".join(f"{k}={labels.get(k, '')}" for k in destination.group_by)
    raw = f"{destination.receiver}\x1f{destination.route_path}\x1f{values}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def mark_due(group: AlertGroup, now: datetime) -> None:
    """Schedule the group's next message: after group_interval since the last one, if any."""
    if group.last_notified_at is None:
        due = group.next_flush_at or now
    else:
        due = max(now, group.last_notified_at + timedelta(seconds=group.group_interval_s))
    group.next_flush_at = min(group.next_flush_at, due) if group.next_flush_at else due
    group.updated_at = now


def attach(session: Session, config: VigilConfig, incident: Incident, now: datetime) -> None:
    """Put the incident into the group of every receiver its labels route to."""
    labels = incident_labels(incident)
    for destination in destinations(labels, config.routing):
        key = group_key(destination, labels)
        group = session.scalars(
            select(AlertGroup).where(
                AlertGroup.receiver == destination.receiver,
                AlertGroup.group_key == key,
                AlertGroup.status != "resolved",
            )
        ).first()
        if group is None:
            group = AlertGroup(
                receiver=destination.receiver,
                group_key=key,
                labels={k: labels.get(k, "") for k in destination.group_by},
                status="firing",
                created_at=now,
                updated_at=now,
                next_flush_at=now + destination.group_wait,
                sequence=0,
                group_interval_s=int(destination.group_interval.total_seconds()),
                repeat_interval_s=int(destination.repeat_interval.total_seconds()),
                ticket_repeat_interval_s=_seconds(config.routing.ticket_repeat_interval),
            )
            session.add(group)
            session.flush()
        if session.get(AlertGroupMember, (group.id, incident.id)) is None:
            session.add(AlertGroupMember(group_id=group.id, incident_id=incident.id))
        mark_due(group, now)


def _seconds(delta: timedelta | None) -> int | None:
    return None if delta is None else int(delta.total_seconds())


def reattach(session: Session, config: VigilConfig, incident: Incident, now: datetime) -> None:
    """A re-fired incident goes back into the groups it was notified in, reopened if they
    closed meanwhile, so its messages continue the same Slack thread and PagerDuty key. A
    group whose key another active group has taken since is left closed; `attach` then puts
    the incident into that active group."""
    groups = session.scalars(
        select(AlertGroup)
        .join(AlertGroupMember, AlertGroupMember.group_id == AlertGroup.id)
        .where(AlertGroupMember.incident_id == incident.id)
    ).all()
    for group in groups:
        if group.status == "resolved":
            taken = session.scalars(
                select(AlertGroup.id).where(
                    AlertGroup.receiver == group.receiver,
                    AlertGroup.group_key == group.group_key,
                    AlertGroup.status != "resolved",
                )
            ).first()
            if taken is not None:
                continue
            group.status = "firing"
            session.flush()
        mark_due(group, now)
    attach(session, config, incident, now)


def touch(session: Session, incident: Incident, now: datetime) -> None:
    """The incident changed (resolved, acknowledged, escalated): its groups owe a message."""
    groups = session.scalars(
        select(AlertGroup)
        .join(AlertGroupMember, AlertGroupMember.group_id == AlertGroup.id)
        .where(AlertGroupMember.incident_id == incident.id, AlertGroup.status != "resolved")
    )
    for group in groups:
        mark_due(group, now)
