"""Turns SLO verdicts into incident changes; each change and its notifications share one commit.

One incident per (model, SLO, feature) while it is open, found by a dedup key that is a hash
of those names, so a restart or a second tick finds the same incident instead of opening one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.notifiers.base import Alert
from alerts.outbox import enqueue
from alerts.payloads import alert_from_json, alert_to_json, with_resolution
from alerts.router import receivers_for
from alerts.runbooks import runbook_url
from detectors.registry import metric_info
from monitor.config.models import ModelConfig, VigilConfig
from monitor.slo import BREACH, OK, Verdict
from monitor.store.tables import Incident, IncidentEvent


@dataclass(frozen=True)
class IncidentChange:
    event: str
    incident_id: int
    dedup_key: str
    model: str
    slo_id: str
    feature: str
    at: datetime


def dedup_key(model: str, slo_id: str, feature: str) -> str:
    return hashlib.sha256(f"{model}\x1f{slo_id}\x1f{feature}".encode()).hexdigest()[:32]


def open_incident_for(session: Session, key: str) -> Incident | None:
    return session.scalars(
        select(Incident).where(Incident.dedup_key == key, Incident.status != "resolved")
    ).first()


def _alert_for(
    config: VigilConfig, model_name: str, model: ModelConfig, verdict: Verdict, now: datetime
) -> Alert:
    info = metric_info(verdict.slo.metric)
    kind = info.kind
    if kind == "feature_drift" and verdict.feature.startswith("@"):
        kind = "prediction_drift"
    value = verdict.value
    labels = {"team": model.team} if model.team else {}
    return Alert(
        model=model_name,
        slo=verdict.slo_id,
        metric=verdict.slo.metric,
        kind=kind,
        severity=verdict.slo.severity,
        objective=verdict.slo.objective.text,
        window=value.window,
        value=value.value,
        n=value.n,
        runbook_url=verdict.slo.runbook or runbook_url(kind, config.runbook_base_url),
        started_at=verdict.since,
        feature=value.feature,
        ci=value.ci,
        unit=info.unit,
        labels=labels,
    )


def route_labels(alert: Alert) -> dict[str, str]:
    labels = {
        "model": alert.model,
        "severity": alert.severity,
        "kind": alert.kind,
        "metric": alert.metric,
        "slo": alert.slo,
        **alert.labels,
    }
    if alert.feature:
        labels["feature"] = alert.feature
    return labels


def apply_verdict(
    session: Session, config: VigilConfig, model_name: str, verdict: Verdict, now: datetime
) -> IncidentChange | None:
    """Open on a breach held for `for:`, resolve after `resolve_after` good evaluations."""
    key = dedup_key(model_name, verdict.slo_id, verdict.feature)
    incident = open_incident_for(session, key)
    if incident is None and verdict.status == BREACH and now - verdict.since >= verdict.slo.for_:
        alert = _alert_for(config, model_name, config.models[model_name], verdict, now)
        incident = Incident(
            dedup_key=key,
            model=model_name,
            slo_id=verdict.slo_id,
            feature=verdict.feature,
            metric=verdict.slo.metric,
            kind=alert.kind,
            severity=alert.severity,
            status="firing",
            opened_at=now,
            alert=alert_to_json(alert),
        )
        session.add(incident)
        session.flush()
        _event(
            session, incident, "open", now, verdict, f"{alert.metric} breached {alert.objective}"
        )
        enqueue(
            session,
            incident,
            "open",
            receivers_for(route_labels(alert), config.routing),
            alert,
            now,
        )
        return _change("open", incident, now)
    if (
        incident is not None
        and verdict.status == OK
        and verdict.streak >= verdict.slo.resolve_after
    ):
        alert = with_resolution(
            alert_from_json(incident.alert), verdict.value.value, verdict.value.n, now
        )
        incident.status, incident.resolved_at, incident.alert = (
            "resolved",
            now,
            alert_to_json(alert),
        )
        _event(session, incident, "resolve", now, verdict, f"good for {verdict.streak} evaluations")
        enqueue(
            session,
            incident,
            "resolve",
            receivers_for(route_labels(alert), config.routing),
            alert,
            now,
        )
        return _change("resolve", incident, now)
    return None


def _event(
    session: Session, incident: Incident, kind: str, now: datetime, verdict: Verdict, reason: str
) -> None:
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            at=now,
            kind=kind,
            actor="vigil",
            reason=reason,
            value=verdict.value.value,
        )
    )


def _change(event: str, incident: Incident, now: datetime) -> IncidentChange:
    return IncidentChange(
        event=event,
        incident_id=incident.id,
        dedup_key=incident.dedup_key,
        model=incident.model,
        slo_id=incident.slo_id,
        feature=incident.feature,
        at=now,
    )
