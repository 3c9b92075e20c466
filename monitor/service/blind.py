"""Monitoring-blind incidents: a model whose ticks keep failing is not being watched.

A source that is down must not stop the daemon, nor stay silent: after `blind_after` of
failed ticks the model gets a `monitoring_blind` incident, routed like any other. Its kind is
a source of the default inhibit rule, so while it is open the model's quality and drift
incidents (whose numbers would be stale) are muted instead of paging on top of it. The first
successful tick resolves it and un-mutes what is still open.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from alerts.dispatch import flush
from alerts.incidents import dedup_key, open_incident, open_incident_for, resolve
from alerts.notifiers.base import Alert
from alerts.runbooks import runbook_url
from monitor.core.durations import format_duration
from monitor.engine.runtime import Runtime
from monitor.engine.tick import refresh_open_incidents
from monitor.store.tables import ModelHealth

KIND = "monitoring_blind"
SLO_ID = "vigil.blind"
METRIC = "vigil.tick_failures"
RETRY_BASE = timedelta(seconds=5)


def retry_delay(failures: int, schedule: timedelta) -> timedelta:
    """Retry a failed tick soon, then back off exponentially up to the normal schedule.

    A transient error costs seconds of blindness, while a source that stays down is asked no
    more often than a healthy one.
    """
    backoff: timedelta = RETRY_BASE * 2 ** max(0, min(failures - 1, 20))
    return min(schedule, backoff)


def blind_key(model: str) -> str:
    return dedup_key(model, SLO_ID, "")


def on_failure(
    rt: Runtime, model: str, now: datetime, failing_since: datetime, error: str
) -> str | None:
    """Open the model's blind incident once it has failed for `blind_after`; returns "open"
    when it did. `failing_since` is the first failure of the current streak."""
    config = rt.config.models[model]
    if now - failing_since < config.blind_after:
        return None
    with rt.sessions.begin() as session:
        key = blind_key(model)
        if open_incident_for(session, key) is not None:
            return None
        health = session.get(ModelHealth, model)
        failures = health.consecutive_failures if health is not None else 0
        labels = {"team": config.team} if config.team else {}
        alert = Alert(
            model=model,
            slo=SLO_ID,
            metric=METRIC,
            kind=KIND,
            severity="page",
            objective=f"ticks succeed within {format_duration(config.blind_after)}",
            window=format_duration(config.blind_after),
            value=None,
            n=failures,
            runbook_url=runbook_url(KIND, rt.config.runbook_base_url),
            started_at=failing_since,
            labels=labels,
            details={"consecutive failed ticks": float(failures)},
        )
        reason = (
            f"{failures} ticks failed in a row since {failing_since:%Y-%m-%d %H:%M:%S}; "
            f"last error: {rt.redact(error)[:500]}"
        )
        open_incident(session, rt.config, key, alert, now, reason)
        _reroute(session, rt, now)
    return "open"


def on_success(rt: Runtime, model: str, now: datetime) -> str | None:
    """Resolve the model's blind incident, if one is open; returns "resolve" when it did."""
    with rt.sessions.begin() as session:
        incident = open_incident_for(session, blind_key(model))
        if incident is None:
            return None
        resolve(session, incident, now, "ticks succeed again")
        _reroute(session, rt, now)
    return "resolve"


def _reroute(session: Session, rt: Runtime, now: datetime) -> None:
    """Inhibitions follow the blind incident: mute or un-mute the model's other incidents,
    and write the messages that are due, in the same transaction."""
    session.flush()
    refresh_open_incidents(session, rt.config, now)
    flush(session, now)
