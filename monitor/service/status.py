"""The status page's numbers, read from the store alone: every model's last tick, each SLO's
current value against its objective with its recent history, open incidents (with their
root-cause lines when the alert carries them), active silences, and the outbox's health per
receiver. `monitor.service.status_page` turns them into HTML.

Everything is read in one short session with bounded queries (the sparkline history is the
last `HISTORY_POINTS` evaluations within the SLO's window or `MIN_SPAN`, whichever is longer),
so a page costs the same with a month or a year of history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.config.models import SLOConfig
from monitor.core.durations import format_duration, humanize
from monitor.engine.runtime import Runtime
from monitor.store.slis import slo_id
from monitor.store.tables import (
    Incident,
    ModelHealth,
    OutboxMessage,
    Silence,
    SLOEvaluation,
    SLOState,
)

HISTORY_POINTS = 120
MIN_SPAN = timedelta(hours=6)
SEVERITY = {"breach": 0, "uncertain": 1, "ok": 2, "insufficient_data": 3}
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@dataclass
class SLORow:
    name: str
    objective: str
    status: str
    value: str
    feature: str
    evaluated_at: datetime | None
    n: int
    points: list[tuple[datetime, float | None, str]] = field(default_factory=list)
    threshold: float = 0.0
    """Sparkline: (time, value, status), oldest first; the objective's threshold as a line."""


@dataclass
class ModelRow:
    name: str
    team: str | None
    last_tick_at: datetime | None
    last_success_at: datetime | None
    failures: int
    last_error: str | None
    healthy: bool
    slos: list[SLORow]


@dataclass
class IncidentRow:
    id: int
    model: str
    what: str
    severity: str
    status: str
    opened_at: datetime
    value: str
    muted: str | None
    root_cause: list[str]
    runbook_url: str | None


@dataclass
class ReceiverRow:
    name: str
    pending: int
    failed: int
    expired: int
    last_sent_at: datetime | None
    last_error: str | None
    oldest_pending_at: datetime | None


@dataclass
class Status:
    now: datetime
    models: list[ModelRow]
    incidents: list[IncidentRow]
    silences: list[Silence]
    receivers: list[ReceiverRow]
    store_error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.store_error is None and all(m.healthy for m in self.models)


def is_duration(slo: SLOConfig) -> bool:
    return not _NUMBER.match(slo.objective.text.split()[-1])


def fmt_value(value: float | None, duration: bool) -> str:
    if value is None:
        return "—"
    if duration:
        return humanize(value)
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _slo_row(session: Session, model: str, slo: SLOConfig, now: datetime) -> SLORow:
    sid = slo_id(slo)
    states = list(
        session.scalars(select(SLOState).where(SLOState.model == model, SLOState.slo_id == sid))
    )
    duration = is_duration(slo)
    name = slo.name or f"{slo.metric} {slo.objective.text} ({format_duration(slo.window)})"
    if not states:
        return SLORow(name, slo.objective.text, "no data yet", "—", "", None, 0,
                      threshold=slo.objective.threshold)  # fmt: skip
    worst = min(states, key=lambda s: (SEVERITY.get(s.status, 4), s.feature))
    since = now - max(slo.window, MIN_SPAN)
    history = session.execute(
        select(SLOEvaluation.at, SLOEvaluation.value, SLOEvaluation.status)
        .where(
            SLOEvaluation.model == model,
            SLOEvaluation.slo_id == sid,
            SLOEvaluation.feature == worst.feature,
            SLOEvaluation.at > since,
            SLOEvaluation.at <= now,
        )
        .order_by(SLOEvaluation.at.desc())
        .limit(HISTORY_POINTS)
    ).all()
    return SLORow(
        name=name,
        objective=slo.objective.text,
        status=worst.status,
        value=fmt_value(worst.value, duration),
        feature=worst.feature,
        evaluated_at=worst.evaluated_at,
        n=worst.n,
        points=[(at, value, status) for at, value, status in reversed(history)],
        threshold=slo.objective.threshold,
    )


def _incidents(session: Session) -> list[IncidentRow]:
    rows = session.scalars(
        select(Incident).where(Incident.status != "resolved").order_by(Incident.opened_at.desc())
    )
    out = []
    for incident in rows:
        alert: dict[str, Any] = incident.alert or {}
        causes = alert.get("root_cause") or []
        lines = [str(c) for c in causes] if isinstance(causes, list) else [str(causes)]
        what = f"{incident.metric} {alert.get('objective') or ''}".strip()
        value = alert.get("value")
        out.append(
            IncidentRow(
                id=incident.id,
                model=incident.model,
                what=what + (f" — {incident.feature}" if incident.feature else ""),
                severity=incident.severity,
                status=incident.status,
                opened_at=incident.opened_at,
                value=f"{value:.4g}" if isinstance(value, int | float) else "—",
                muted=incident.suppressed_by,
                root_cause=lines[:5],
                runbook_url=alert.get("runbook_url"),
            )
        )
    return out


def _per_receiver(session: Session, moment: Any, status: str) -> dict[str, datetime]:
    """One moment (the newest send, the oldest wait) of each receiver's messages in a state."""
    query = (
        select(OutboxMessage.receiver, moment)
        .where(OutboxMessage.status == status)
        .group_by(OutboxMessage.receiver)
    )
    return {receiver: at for receiver, at in session.execute(query)}


def _receivers(session: Session, names: list[str]) -> list[ReceiverRow]:
    counts: dict[tuple[str, str], int] = {}
    for receiver, status, count in session.execute(
        select(OutboxMessage.receiver, OutboxMessage.status, func.count())
        .where(OutboxMessage.status != "sent")
        .group_by(OutboxMessage.receiver, OutboxMessage.status)
    ):
        counts[(receiver, status)] = count
    last_sent = _per_receiver(session, func.max(OutboxMessage.sent_at), "sent")
    oldest = _per_receiver(session, func.min(OutboxMessage.created_at), "pending")
    seen = sorted(set(names) | {r for r, _ in counts} | set(last_sent))
    rows = []
    for name in seen:
        error = session.scalar(
            select(OutboxMessage.last_error)
            .where(OutboxMessage.receiver == name, OutboxMessage.last_error.is_not(None))
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
        rows.append(
            ReceiverRow(
                name=name,
                pending=counts.get((name, "pending"), 0),
                failed=counts.get((name, "failed"), 0),
                expired=counts.get((name, "expired"), 0),
                last_sent_at=last_sent.get(name),
                last_error=error
                if counts.get((name, "pending")) or counts.get((name, "failed"))
                else None,
                oldest_pending_at=oldest.get(name),
            )
        )
    return rows


def collect(rt: Runtime, now: datetime, unready_after: int) -> Status:
    """The page's data; a store that does not answer is a status, not an error page."""
    config = rt.config
    try:
        with rt.sessions() as session:
            health = {h.model: h for h in session.scalars(select(ModelHealth))}
            models = []
            for name, model in config.models.items():
                row = health.get(name)
                failures = row.consecutive_failures if row is not None else 0
                models.append(
                    ModelRow(
                        name=name,
                        team=model.team,
                        last_tick_at=row.last_tick_at if row else None,
                        last_success_at=row.last_success_at if row else None,
                        failures=failures,
                        last_error=row.last_error if row and failures else None,
                        healthy=failures < unready_after,
                        slos=[_slo_row(session, name, slo, now) for slo in model.slos],
                    )
                )
            silences = list(
                session.scalars(
                    select(Silence)
                    .where(Silence.starts_at <= now, Silence.ends_at > now)
                    .order_by(Silence.ends_at)
                )
            )
            session.expunge_all()
            return Status(
                now,
                models,
                _incidents(session),
                silences,
                _receivers(session, list(config.receivers)),
            )
    except Exception as exc:  # the page says so; /readyz carries the detail
        error = rt.redact(
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
        return Status(now, [], [], [], [], store_error=error[:300])
