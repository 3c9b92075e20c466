"""Silences and inhibitions: incidents that are recorded but not notified, and why.

A silence mutes incidents whose labels match during a time range (maintenance, a known
issue). An inhibition mutes an incident while another one explains it: stale predictions
make that model's drift and quality numbers meaningless, so only the root cause pages.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from alerts.matching import matches
from monitor.config.models import VigilConfig
from monitor.store.tables import Incident, Silence


def incident_labels(incident: Incident) -> dict[str, str]:
    """The labels routes, silences and inhibitions match on."""
    alert = incident.alert
    labels = {
        "model": incident.model,
        "severity": incident.severity,
        "kind": incident.kind,
        "metric": incident.metric,
        "slo": incident.slo_id,
        **{str(k): str(v) for k, v in (alert.get("labels") or {}).items()},
    }
    if incident.feature:
        labels["feature"] = incident.feature
    return labels


def sync_config_silences(session: Session, config: VigilConfig, now: datetime) -> None:
    """Silences declared in the config replace the previous config's; CLI ones are kept."""
    session.execute(delete(Silence).where(Silence.source == "config"))
    for silence in config.silences:
        session.add(
            Silence(
                matchers={"eq": silence.matchers, "re": silence.matchers_re},
                starts_at=silence.starts_at,
                ends_at=silence.ends_at,
                created_by=silence.created_by,
                comment=silence.comment,
                created_at=now,
                source="config",
            )
        )


def silence_matches(silence: Silence, labels: dict[str, str], now: datetime) -> bool:
    if not (silence.starts_at <= now < silence.ends_at):
        return False
    return matches(labels, silence.matchers.get("eq", {}), silence.matchers.get("re", {}))


def active_silence(session: Session, labels: dict[str, str], now: datetime) -> Silence | None:
    candidates = session.scalars(
        select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now).order_by(Silence.id)
    )
    return next((s for s in candidates if silence_matches(s, labels, now)), None)


def inhibitor(
    session: Session, config: VigilConfig, incident: Incident, labels: dict[str, str]
) -> Incident | None:
    """An open, unmuted incident that inhibits this one under some rule, if any."""
    rules = [r for r in config.inhibit_rules if matches(labels, r.target_match, r.target_match_re)]
    if not rules:
        return None
    others = session.scalars(
        select(Incident).where(Incident.status != "resolved", Incident.id != incident.id)
    ).all()
    for rule in rules:
        for other in others:
            if other.suppressed_by is not None:
                continue
            source = incident_labels(other)
            if not matches(source, rule.source_match, rule.source_match_re):
                continue
            if all(source.get(k) == labels.get(k) for k in rule.equal):
                return other
    return None


def suppression_reason(
    session: Session, config: VigilConfig, incident: Incident, now: datetime
) -> str | None:
    """`silence:<id>` or `inhibited:<incident id>`, or None when the incident may notify."""
    labels = incident_labels(incident)
    silence = active_silence(session, labels, now)
    if silence is not None:
        return f"silence:{silence.id}"
    source = inhibitor(session, config, incident, labels)
    if source is not None:
        return f"inhibited:{source.id}"
    return None
