"""Every number of the weekly report, computed from the store (and business metrics from the
model's source) before anything is drawn, so tests can check the numbers without HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from monitor.engine.runtime import Runtime
from monitor.ingest.sources import SqlSource
from monitor.report.business import BusinessLine, business_line
from monitor.report.health import (
    DriftSummary,
    HealthRow,
    Volume,
    drift_summaries,
    health_rows,
    volume,
)
from monitor.report.incidents import IncidentRow, incidents_of_week, mean_time
from monitor.report.slos import SLOLine, slo_lines
from monitor.report.weeks import Week
from monitor.store.state import reference_versions


@dataclass(frozen=True)
class ReferenceNote:
    """A reference version that applied during the week, and from when."""

    version: int
    origin: str
    """`config`, or `period` / `categories` when moved or widened by `vigil baseline`."""
    applies_from: datetime
    created_by: str
    reason: str

    @property
    def words(self) -> str:
        how = {"config": "fitted from the config's reference", "period": "moved to a period"}
        text = f"version {self.version} ({how.get(self.origin, 'categories accepted')}"
        if self.origin != "config":
            text += f" by {self.created_by}: {self.reason}"
        return text + ")"


def references_of_week(session: Session, model: str, week: Week) -> list[ReferenceNote]:
    """The version in force when the week began and every one applied during it."""
    notes = [
        ReferenceNote(v.version, v.origin, v.applies_from, v.created_by, v.reason)
        for v in reference_versions(session, model)
        if v.applies_from <= week.end
    ]
    before = [n for n in notes if n.applies_from <= week.start]
    return before[-1:] + [n for n in notes if n.applies_from > week.start]


@dataclass
class ModelWeek:
    name: str
    team: str | None
    slos: list[SLOLine]
    incidents: list[IncidentRow]
    drift: list[DriftSummary]
    health: list[HealthRow]
    volume: Volume
    business: list[BusinessLine] = field(default_factory=list)
    references: list[ReferenceNote] = field(default_factory=list)
    """Which reference the week's checks were judged against, and from when."""

    @property
    def missed(self) -> list[SLOLine]:
        return [s for s in self.slos if s.met is False]


@dataclass
class WeeklyReport:
    week: Week
    generated_at: datetime
    timezone: str
    models: list[ModelWeek]

    @property
    def slos(self) -> list[SLOLine]:
        return [s for m in self.models for s in m.slos]

    @property
    def incidents(self) -> list[IncidentRow]:
        return [i for m in self.models for i in m.incidents]

    @property
    def met(self) -> int:
        return sum(s.met is True for s in self.slos)

    @property
    def missed(self) -> int:
        return sum(s.met is False for s in self.slos)

    @property
    def no_data(self) -> int:
        return sum(s.met is None for s in self.slos)

    @property
    def mtta(self) -> timedelta | None:
        """Mean time to acknowledge, over the week's incidents acknowledged by its end."""
        return mean_time([i.time_to_acknowledge for i in self.incidents])

    @property
    def mttr(self) -> timedelta | None:
        """Mean time to resolve, over the week's incidents resolved by its end."""
        return mean_time([i.time_to_resolve for i in self.incidents])

    @property
    def verdict(self) -> str:
        """One sentence for the top of the page and the Slack summary."""
        total = len(self.slos)
        if not total:
            return "No SLOs are configured."
        parts = [f"{self.met} of {total} SLOs met their target"]
        if self.missed:
            parts.append(f"{self.missed} missed")
        if self.no_data:
            parts.append(f"{self.no_data} without enough data")
        count = len(self.incidents)
        incidents = "no incidents" if not count else f"{count} incident{'s' * (count != 1)}"
        return f"{', '.join(parts)}; {incidents}."

    def local(self, when: datetime) -> datetime:
        return when.astimezone(ZoneInfo(self.timezone))


def build_report(rt: Runtime, week: Week, now: datetime) -> WeeklyReport:
    """Read the week for every configured model; one session, nothing written."""
    models = []
    with rt.sessions() as session:
        incidents = incidents_of_week(session, rt.config, week)
        for name, spec in rt.config.models.items():
            mine = [i for i in incidents if i.model == name]
            vol = volume(session, name, week, spec.bucket)
            models.append(
                ModelWeek(
                    name=name,
                    team=spec.team,
                    slos=slo_lines(session, name, spec.slos, week),
                    incidents=mine,
                    drift=drift_summaries(session, name, spec, week, mine),
                    health=health_rows(session, name, spec, week, vol),
                    volume=vol,
                    references=references_of_week(session, name, week),
                )
            )
    for model in models:
        spec = rt.config.models[model.name]
        if not spec.business_metrics:
            continue
        source = rt.source_for(model.name)
        if not isinstance(source, SqlSource):
            continue  # business metrics are SQL read through an SQLAlchemy engine
        engine = source.engine
        for metric in spec.business_metrics:
            line = business_line(engine, spec, metric, week)
            if line.error:
                line.error = rt.redact(line.error)
            model.business.append(line)
    return WeeklyReport(
        week=week, generated_at=now, timezone=rt.config.report.timezone, models=models
    )
