"""The bug queue: work that outlives the page, as rows in Vigil's own store.

Every ticket-severity incident becomes a bug (a ticket is "someone should look at this this
week", not "wake someone up"), and every page that resolved becomes a follow-up bug (what
caused it, will it recur). Routed like any receiver, it files only those and ignores the rest,
so routing everything to it is fine. Filing is idempotent on a dedup key per incident and
purpose, so a re-sent notification, or a second receiver filing the same bug, finds the
existing row. People triage with `vigil bugs list|show|assign|close`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from alerts.notifiers.base import Alert, Delivery, DeliveryError, Notification, measurement
from monitor.config.models import BugQueueReceiver
from monitor.core.clock import Clock
from monitor.store.tables import Bug, Incident

OPEN, TRIAGED, CLOSED = "open", "triaged", "closed"
STATUSES = (OPEN, TRIAGED, CLOSED)
MAX_TITLE = 300
MAX_REF = 200
SessionSource = Callable[[], sessionmaker[Session]]


@dataclass(frozen=True)
class BugSpec:
    """A bug to file: what it is about and why (a ticket or a page's follow-up)."""

    dedup_key: str
    purpose: str
    alert: Alert
    group_key: str

    @property
    def title(self) -> str:
        title = self.alert.title
        if self.purpose == "follow-up":
            title = f"Follow-up of a resolved page: {title}"
        return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def wanted(notification: Notification, follow_up_pages: bool = True) -> list[BugSpec]:
    """The bugs a notification calls for: open tickets, and pages that have resolved."""
    specs: list[BugSpec] = []
    for alert in notification.alerts:
        if alert.severity == "ticket" and alert.status != "resolved":
            purpose = "ticket"
        elif follow_up_pages and alert.severity == "page" and alert.status == "resolved":
            purpose = "follow-up"
        else:
            continue
        specs.append(BugSpec(bug_key(alert, purpose), purpose, alert, notification.group_key))
    return specs


def bug_key(alert: Alert, purpose: str) -> str:
    """One bug per incident and purpose: the incident's key plus when it started (an incident
    key is reused by the next incident of the same SLO once this one resolved)."""
    incident = (
        alert.incident_key
        or hashlib.sha256(
            f"{alert.model}\x1f{alert.slo}\x1f{alert.feature or ''}".encode()
        ).hexdigest()[:32]
    )
    return f"{purpose}:{incident}:{alert.started_at.isoformat()}"


def evidence(spec: BugSpec) -> dict[str, Any]:
    """The numbers the bug was filed on, so it can be judged without the incident at hand."""
    alert = spec.alert
    return {
        "purpose": spec.purpose,
        "kind": alert.kind,
        "metric": alert.metric,
        **measurement(alert),
        "details": dict(alert.details),
        "root_cause": list(alert.root_cause),
        "labels": dict(alert.labels),
        "started_at": alert.started_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "report_url": alert.report_url,
        "evidence_url": alert.evidence_url,
        "incident_key": alert.incident_key,
        "group_key": spec.group_key,
    }


def file_bug(session: Session, spec: BugSpec, now: datetime) -> Bug:
    """The bug for `spec`, created if it does not exist yet."""
    bug = session.scalars(select(Bug).where(Bug.dedup_key == spec.dedup_key)).first()
    if bug is not None:
        return bug
    alert = spec.alert
    incident_id = None
    if alert.incident_key:
        incident_id = session.scalars(
            select(Incident.id)
            .where(Incident.dedup_key == alert.incident_key)
            .order_by(Incident.id.desc())
            .limit(1)
        ).first()
    bug = Bug(
        incident_id=incident_id,
        dedup_key=spec.dedup_key,
        title=spec.title,
        model=alert.model,
        slo_id=alert.slo,
        severity=alert.severity,
        evidence=evidence(spec),
        runbook_url=alert.runbook_url,
        status=OPEN,
        assignee=None,
        external_url=None,
        created_at=now,
        updated_at=now,
    )
    session.add(bug)
    session.flush()
    return bug


def note_resolutions(session: Session, notification: Notification, now: datetime) -> None:
    """A ticket whose incident resolved keeps its bug (people close bugs) but records it."""
    for alert in notification.alerts:
        if alert.severity != "ticket" or alert.status != "resolved" or alert.resolved_at is None:
            continue
        bug = session.scalars(select(Bug).where(Bug.dedup_key == bug_key(alert, "ticket"))).first()
        if bug is not None and not bug.evidence.get("resolved_at"):
            bug.evidence = {**bug.evidence, "resolved_at": alert.resolved_at.isoformat()}
            bug.updated_at = now


class BugQueueNotifier:
    """Files the bugs a notification calls for into the store."""

    def __init__(self, sessions: SessionSource, clock: Clock, follow_up_pages: bool = True):
        self._sessions = sessions
        self.clock = clock
        self.follow_up_pages = follow_up_pages

    def __repr__(self) -> str:
        return "BugQueueNotifier()"

    def send(self, notification: Notification) -> Delivery:
        ids = [bug_id for bug_id, _ in self.file(notification)]
        if not ids:
            return Delivery(ref=None)
        ref = "bugs:" + ",".join(map(str, ids))
        # The outbox keeps refs in 200 characters; a storm of bugs is summarised.
        return Delivery(ref=ref if len(ref) <= MAX_REF else f"bugs:{ids[0]}..{ids[-1]}")

    def file(self, notification: Notification) -> list[tuple[int, BugSpec]]:
        """File (or find) every wanted bug; returns their ids. Store errors are retryable."""
        specs = wanted(notification, self.follow_up_pages)
        now = self.clock.now()
        try:
            with self._sessions().begin() as session:
                note_resolutions(session, notification, now)
                return [(file_bug(session, spec, now).id, spec) for spec in specs]
        except IntegrityError:
            # Another writer filed the same bug between our look and our insert: next time
            # the look finds it.
            reason = "bug filed concurrently, retrying"
        except SQLAlchemyError as exc:
            reason = f"store unavailable: {type(exc).__name__}"
        # Raised outside the handler: database errors can quote connection details.
        raise DeliveryError(f"bug queue: {reason}", retryable=True)


def from_config(cfg: BugQueueReceiver, sessions: SessionSource, clock: Clock) -> BugQueueNotifier:
    return BugQueueNotifier(sessions, clock, follow_up_pages=cfg.follow_up_pages)
