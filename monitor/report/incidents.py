"""The week's incidents with their timings (MTTA, MTTR) and the state of their bugs.

Everything is as of the week's end, so a past week renders the same whenever it is rendered:
an incident resolved after Sunday is shown as still open, and MTTR averages only the incidents
resolved within the week. A bug's status is today's (the store keeps no bug history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from monitor.config.models import SLOConfig, VigilConfig
from monitor.report.names import fmt_value, objective_words, slo_sentence
from monitor.report.weeks import Week
from monitor.store.slis import slo_id
from monitor.store.tables import Bug, Incident, SLOEvaluation


@dataclass(frozen=True)
class BugRow:
    id: int
    title: str
    status: str
    assignee: str | None
    url: str | None


@dataclass
class IncidentRow:
    id: int
    model: str
    name: str
    metric: str
    feature: str
    severity: str
    kind: str
    opened_at: datetime
    acknowledged_at: datetime | None
    """Only when acknowledged by the week's end."""
    resolved_at: datetime | None
    """Only when resolved by the week's end."""
    carried_over: bool
    muted: str | None
    worst: str
    objective: str
    runbook_url: str
    report_url: str | None
    bugs: list[BugRow] = field(default_factory=list)
    week_end: datetime | None = None

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        return self.acknowledged_at - self.opened_at if self.acknowledged_at else None

    @property
    def time_to_resolve(self) -> timedelta | None:
        return self.resolved_at - self.opened_at if self.resolved_at else None

    @property
    def duration(self) -> timedelta:
        """How long it lasted, or had lasted by the week's end."""
        end = self.resolved_at or self.week_end or self.opened_at
        return end - self.opened_at


def mean_time(values: list[timedelta | None]) -> timedelta | None:
    known = [v for v in values if v is not None]
    return sum(known, timedelta()) / len(known) if known else None


def _slos(config: VigilConfig, model: str) -> dict[str, SLOConfig]:
    spec = config.models.get(model)
    return {slo_id(s): s for s in spec.slos} if spec else {}


def _worst_value(session: Session, inc: Incident, slo: SLOConfig | None, end: datetime) -> str:
    """The worst value the SLI reached while the incident was open (within the week)."""
    higher_is_better = slo.objective.higher_is_better if slo else False
    agg = func.min if higher_is_better else func.max
    value = session.scalar(
        select(agg(SLOEvaluation.value)).where(
            SLOEvaluation.model == inc.model,
            SLOEvaluation.slo_id == inc.slo_id,
            SLOEvaluation.feature == inc.feature,
            SLOEvaluation.at >= inc.opened_at,
            SLOEvaluation.at <= min(inc.resolved_at or end, end),
        )
    )
    return fmt_value(inc.metric, value)


def incidents_of_week(session: Session, config: VigilConfig, week: Week) -> list[IncidentRow]:
    """Incidents open at any moment of the week: opened before its end, not resolved before
    its start. Ones opened in an earlier week are marked as carried over."""
    incidents = session.scalars(
        select(Incident)
        .where(
            Incident.model.in_(list(config.models)),
            Incident.opened_at <= week.end,
            or_(Incident.resolved_at.is_(None), Incident.resolved_at > week.start),
        )
        .order_by(Incident.opened_at, Incident.id)
    ).all()
    bugs: dict[int, list[BugRow]] = {}
    if incidents:
        for bug in session.scalars(
            select(Bug).where(Bug.incident_id.in_([i.id for i in incidents])).order_by(Bug.id)
        ):
            assert bug.incident_id is not None
            bugs.setdefault(bug.incident_id, []).append(
                BugRow(bug.id, bug.title, bug.status, bug.assignee, bug.external_url)
            )
    rows = []
    for inc in incidents:
        slo = _slos(config, inc.model).get(inc.slo_id)
        alert = inc.alert or {}
        resolved = inc.resolved_at if inc.resolved_at and inc.resolved_at <= week.end else None
        acked = inc.acknowledged_at
        rows.append(
            IncidentRow(
                id=inc.id,
                model=inc.model,
                name=slo_sentence(slo) if slo else str(alert.get("slo") or inc.slo_id),
                metric=inc.metric,
                feature=inc.feature,
                severity=inc.severity,
                kind=inc.kind,
                opened_at=inc.opened_at,
                acknowledged_at=acked if acked and acked <= week.end else None,
                resolved_at=resolved,
                carried_over=inc.opened_at <= week.start,
                muted=inc.suppressed_by,
                worst=_worst_value(session, inc, slo, week.end),
                objective=objective_words(slo) if slo else str(alert.get("objective") or ""),
                runbook_url=str(alert.get("runbook_url") or ""),
                report_url=alert.get("report_url") or None,
                bugs=bugs.get(inc.id, []),
                week_end=week.end,
            )
        )
    return rows
