"""One incident per problem: when a verdict opens, re-fires, resolves or leaves an incident.

- `for:` holds a breach before it opens anything.
- `resolve_after` is hysteresis by count (`2` good evaluations in a row) or by time (`6h`
  good without a break): a window that dips back to good once does not close the incident.
- `keep_firing_for` is the cool-down after a resolve: a breach within it re-fires the same
  incident (an event in its history, its old Slack thread, its PagerDuty key) rather than
  opening a new one. A rare event that keeps coming back is one incident, not one a day.
- Flap damping: an incident that resolved and re-fired `flap_changes` times within
  `flap_window` is marked flapping; its further changes are recorded but not notified (and
  it gets no reminders) until it has held one state for half the flap window. Then it
  settles and one message says where it stands.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.grouping import reattach, touch
from alerts.incidents import (
    FIRING,
    RESOLVED,
    IncidentChange,
    alert_for,
    change_of,
    dedup_key,
    evidence_url,
    open_incident,
    open_incident_for,
    record_event,
    resolve,
)
from alerts.notifiers.base import Alert
from alerts.payloads import alert_from_json, alert_to_json
from alerts.suppression import suppression_reason
from monitor.config.models import SLOConfig, VigilConfig, keep_firing_for
from monitor.core.durations import format_duration
from monitor.core.values import BREACH, OK
from monitor.store.slis import Verdict, slo_id
from monitor.store.tables import Incident, IncidentEvent

STATE_CHANGES = ("resolve", "refire")


def recovered(verdict: Verdict, now: datetime) -> bool:
    """Good long enough: `resolve_after` evaluations in a row, or that long without a break."""
    if verdict.status != OK:
        return False
    hold = verdict.slo.resolve_after
    if isinstance(hold, timedelta):
        return now - verdict.since >= hold
    return verdict.streak >= hold


def hold_text(slo: SLOConfig, verdict: Verdict, now: datetime) -> str:
    if isinstance(slo.resolve_after, timedelta):
        hours = (now - verdict.since) / timedelta(hours=1)
        return f"good for {hours:.3g}h (resolve_after {format_duration(slo.resolve_after)})"
    return f"good for {verdict.streak} evaluations"


def apply_verdict(
    session: Session, config: VigilConfig, model_name: str, verdict: Verdict, now: datetime
) -> IncidentChange | None:
    """Open (or re-fire) on a breach held for `for:`; resolve once recovery has held."""
    key = dedup_key(model_name, verdict.slo_id, verdict.feature)
    incident = open_incident_for(session, key)
    held = now - verdict.since >= verdict.slo.for_
    if incident is None and verdict.status == BREACH and held:
        alert = alert_for(config, model_name, config.models[model_name], verdict)
        reason = f"{alert.metric} breached {alert.objective} since {verdict.since:%Y-%m-%d %H:%M}"
        cooling = recently_resolved(session, key, now, keep_firing_for(verdict.slo))
        if cooling is not None:
            refire(session, config, cooling, alert, verdict.slo, now, reason)
            return change_of("refire", cooling, now)
        incident = open_incident(session, config, key, alert, now, reason)
        return change_of("open", incident, now)
    if incident is not None and recovered(verdict, now):
        resolve(
            session,
            incident,
            now,
            hold_text(verdict.slo, verdict, now),
            value=verdict.value.value,
            n=verdict.value.n,
        )
        return change_of("resolve", incident, now)
    if incident is not None and verdict.value.value is not None:
        # Reminders and updates show the latest number, not the one from the opening tick.
        latest = replace(
            alert_from_json(incident.alert),
            value=verdict.value.value,
            n=verdict.value.n,
            ci=verdict.value.ci,
        )
        incident.alert = alert_to_json(latest)
    return None


def recently_resolved(
    session: Session, key: str, now: datetime, cool_down: timedelta
) -> Incident | None:
    """The last incident of this key if Vigil resolved it within the cool-down. One closed
    by a person (`vigil incidents resolve`, `vigil baseline`) stays closed: they decided."""
    if cool_down <= timedelta(0):
        return None
    last = session.scalars(
        select(Incident)
        .where(Incident.dedup_key == key, Incident.status == RESOLVED)
        .order_by(Incident.resolved_at.desc(), Incident.id.desc())
        .limit(1)
    ).first()
    if last is None or last.resolved_at is None or now - last.resolved_at > cool_down:
        return None
    closer = session.scalars(
        select(IncidentEvent.actor)
        .where(IncidentEvent.incident_id == last.id, IncidentEvent.kind == "resolve")
        .order_by(IncidentEvent.id.desc())
        .limit(1)
    ).first()
    return last if closer == "vigil" else None


def refire(
    session: Session,
    config: VigilConfig,
    incident: Incident,
    alert: Alert,
    slo: SLOConfig,
    now: datetime,
    reason: str,
) -> None:
    """Re-open a resolved incident within its cool-down: same id, same key, same thread."""
    before = alert_from_json(incident.alert)
    incident.status, incident.resolved_at, incident.changed_at = FIRING, None, now
    incident.acknowledged_at = incident.acknowledged_by = None
    link = evidence_url(config, incident.id)
    incident.alert = alert_to_json(replace(alert, started_at=before.started_at, evidence_url=link))
    record_event(session, incident, "refire", now, reason, value=alert.value)
    session.flush()
    if not incident.flapping and flapping_now(session, incident, slo, now):
        incident.flapping = True
        record_event(
            session,
            incident,
            "flapping",
            now,
            f"{slo.flap_changes} resolves and re-fires within {format_duration(slo.flap_window)}: "
            "further changes are not notified until it settles",
        )
        _notify(session, config, incident, now)  # one message says it is flapping
        return
    if not incident.flapping:
        _notify(session, config, incident, now)


def _notify(session: Session, config: VigilConfig, incident: Incident, now: datetime) -> None:
    muted = suppression_reason(session, config, incident, now)
    incident.suppressed_by = muted
    if muted is None:
        reattach(session, config, incident, now)


def flapping_now(session: Session, incident: Incident, slo: SLOConfig, now: datetime) -> bool:
    if slo.flap_changes <= 0:
        return False
    changes = session.scalar(
        select(func.count())
        .select_from(IncidentEvent)
        .where(
            IncidentEvent.incident_id == incident.id,
            IncidentEvent.kind.in_(STATE_CHANGES),
            IncidentEvent.at > now - slo.flap_window,
        )
    )
    return int(changes or 0) >= slo.flap_changes


def settle_flapping(session: Session, config: VigilConfig, now: datetime) -> list[int]:
    """Flapping incidents that held one state for half their flap window settle: one message
    says where they stand (firing, or resolved). Returns the ids that settled."""
    settled = []
    for incident in session.scalars(select(Incident).where(Incident.flapping.is_(True))):
        slo = _slo_of(config, incident)
        calm = slo.flap_window / 2 if slo is not None else timedelta(days=3, hours=12)
        if incident.changed_at is not None and now - incident.changed_at < calm:
            continue
        incident.flapping = False
        quiet = format_duration(calm)
        record_event(session, incident, "settled", now, f"no change for {quiet}: {incident.status}")
        if incident.status == RESOLVED:
            touch(session, incident, now)
        else:
            _notify(session, config, incident, now)
        settled.append(incident.id)
    return settled


def _slo_of(config: VigilConfig, incident: Incident) -> SLOConfig | None:
    model = config.models.get(incident.model)
    if model is None:
        return None
    return next((s for s in model.slos if slo_id(s) == incident.slo_id), None)
