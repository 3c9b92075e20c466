"""The incident lifecycle: firing -> acknowledged -> resolved, every change an event.

One incident per (model, SLO, feature) while it is open, found by a dedup key that hashes
those names, so a restart or a second tick finds the same incident instead of opening one.
Opening and resolving happen in the tick's transaction, together with the incident's groups
(and so its notifications): nothing is changed without its message being owed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.grouping import attach, touch
from alerts.notifiers.base import Alert
from alerts.payloads import alert_from_json, alert_to_json, with_resolution
from alerts.runbooks import runbook_url
from alerts.suppression import suppression_reason
from detectors.registry import metric_info
from monitor.config.models import ModelConfig, VigilConfig
from monitor.store.slis import Verdict
from monitor.store.tables import Incident, IncidentEvent

FIRING, ACKNOWLEDGED, RESOLVED = "firing", "acknowledged", "resolved"
EVIDENCE_PREFIX = "/incidents/"
"""Where the daemon serves an incident's evidence page: `/incidents/<id>`."""


@dataclass(frozen=True)
class IncidentChange:
    event: str
    incident_id: int
    dedup_key: str
    model: str
    slo_id: str
    feature: str
    at: datetime


class IncidentError(Exception):
    """A requested change is not possible (unknown id, already resolved); safe to show."""


def dedup_key(model: str, slo_id: str, feature: str) -> str:
    return hashlib.sha256(f"{model}\x1f{slo_id}\x1f{feature}".encode()).hexdigest()[:32]


def open_incident_for(session: Session, key: str) -> Incident | None:
    return session.scalars(
        select(Incident).where(Incident.dedup_key == key, Incident.status != RESOLVED)
    ).first()


def evidence_url(config: VigilConfig, incident_id: int) -> str | None:
    """The evidence page's address under `server.public_url`; None without one (a link to
    an address nobody can open is worse than none)."""
    base = config.server.public_url
    return f"{base}{EVIDENCE_PREFIX}{incident_id}" if base else None


def alert_for(config: VigilConfig, model_name: str, model: ModelConfig, verdict: Verdict) -> Alert:
    info = metric_info(verdict.slo.metric)
    kind = info.kind
    if kind == "feature_drift" and verdict.feature.startswith("@"):
        kind = "prediction_drift"
    value = verdict.value
    labels = {"team": model.team} if model.team else {}
    labels.update(verdict.slo.labels)
    return Alert(
        model=model_name,
        slo=verdict.slo_id,
        metric=verdict.slo.metric,
        kind=kind,
        severity=verdict.slo.severity,
        objective=verdict.slo.objective.text,
        threshold=verdict.slo.objective.threshold,
        higher_is_better=verdict.slo.objective.higher_is_better,
        window=value.window,
        value=value.value,
        n=value.n,
        runbook_url=verdict.slo.runbook or runbook_url(kind, config.runbook_base_url),
        started_at=verdict.since,
        feature=value.feature,
        ci=value.ci,
        unit=info.unit,
        labels=labels,
        root_cause=list(value.root_cause),
        root_cause_table=[dict(row) for row in value.root_cause_table],
    )


def record_event(
    session: Session,
    incident: Incident,
    kind: str,
    now: datetime,
    reason: str,
    actor: str = "vigil",
    value: float | None = None,
) -> None:
    session.add(
        IncidentEvent(
            incident_id=incident.id, at=now, kind=kind, actor=actor, reason=reason, value=value
        )
    )


def open_incident(
    session: Session, config: VigilConfig, key: str, alert: Alert, now: datetime, reason: str
) -> Incident:
    """Record a new incident, decide whether it is muted, and route it if not."""
    incident = Incident(
        dedup_key=key,
        model=alert.model,
        slo_id=alert.slo,
        feature=alert.feature or "",
        metric=alert.metric,
        kind=alert.kind,
        severity=alert.severity,
        status=FIRING,
        opened_at=now,
        alert=alert_to_json(alert),
        flapping=False,
        changed_at=now,
    )
    session.add(incident)
    session.flush()
    link = evidence_url(config, incident.id)
    if link is not None:  # the id exists only now: the alert learns its page before routing
        incident.alert = alert_to_json(replace(alert, evidence_url=link))
    record_event(session, incident, "open", now, reason, value=alert.value)
    muted = suppression_reason(session, config, incident, now)
    incident.suppressed_by = muted
    if muted is None:
        attach(session, config, incident, now)
    else:
        record_event(session, incident, "suppressed", now, muted)
    return incident


def refresh_suppression(
    session: Session, config: VigilConfig, incident: Incident, now: datetime
) -> None:
    """Re-decide muting; an incident that stops being muted is routed (and so notified)."""
    reason = suppression_reason(session, config, incident, now)
    was = incident.suppressed_by
    if reason == was:
        return
    incident.suppressed_by = reason
    if reason is not None:
        record_event(session, incident, "suppressed", now, reason)
        return
    record_event(session, incident, "unsuppressed", now, f"{was} ended")
    attach(session, config, incident, now)


def resolve(
    session: Session,
    incident: Incident,
    now: datetime,
    reason: str,
    actor: str = "vigil",
    value: float | None = None,
    n: int | None = None,
) -> None:
    """Close the incident; its groups owe a message unless it is flapping (then the message
    waits until it settles, see `alerts.lifecycle`)."""
    if incident.status == RESOLVED:
        raise IncidentError(f"incident {incident.id} is already resolved")
    alert = alert_from_json(incident.alert)
    incident.status, incident.resolved_at, incident.changed_at = RESOLVED, now, now
    incident.alert = alert_to_json(
        with_resolution(alert, value if value is not None else alert.value, n or alert.n, now)
    )
    record_event(session, incident, "resolve", now, reason, actor=actor, value=value)
    if not incident.flapping:
        touch(session, incident, now)


def acknowledge(
    session: Session, incident: Incident, now: datetime, actor: str, reason: str
) -> None:
    """Someone owns it: reminders stop, channels show who (Slack thread, PagerDuty ack)."""
    if incident.status != FIRING:
        raise IncidentError(f"incident {incident.id} is {incident.status}, not firing")
    incident.status = ACKNOWLEDGED
    incident.acknowledged_at, incident.acknowledged_by = now, actor
    record_event(session, incident, "acknowledge", now, reason, actor=actor)
    touch(session, incident, now)


def escalate(
    session: Session,
    config: VigilConfig,
    incident: Incident,
    severity: str,
    now: datetime,
    reason: str,
) -> None:
    """A higher severity for an open incident: re-routed, so new receivers (PagerDuty) join."""
    incident.severity = severity
    alert = alert_from_json(incident.alert)
    incident.alert = alert_to_json(replace(alert, severity=severity))
    record_event(session, incident, "escalate", now, reason)
    touch(session, incident, now)
    if incident.suppressed_by is None:
        attach(session, config, incident, now)


def change_of(event: str, incident: Incident, now: datetime) -> IncidentChange:
    return IncidentChange(
        event=event,
        incident_id=incident.id,
        dedup_key=incident.dedup_key,
        model=incident.model,
        slo_id=incident.slo_id,
        feature=incident.feature,
        at=now,
    )
