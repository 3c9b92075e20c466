"""Prometheus exposition: stored values are read at scrape time by a custom collector.

The store is the source of truth, so a scrape shows exactly what the SLO engine last judged,
even for models ticked by another process. Label sets are bounded: model, SLO, metric,
window, feature and status names only; no ids, no free text.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from monitor.slo import BREACH, INSUFFICIENT, OK, UNCERTAIN
from monitor.store.tables import Incident, ModelHealth, OutboxMessage, SLOState

STATUSES = (OK, BREACH, UNCERTAIN, INSUFFICIENT)


class StoreCollector(Collector):
    """Reads SLO states, incidents, outbox depth and model health from the store per scrape."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        sli = GaugeMetricFamily(
            "vigil_sli_value", "Latest value of each SLI", labels=["model", "slo", "feature"]
        )
        samples = GaugeMetricFamily(
            "vigil_sli_samples",
            "Sample size behind each SLI value",
            labels=["model", "slo", "feature"],
        )
        status = GaugeMetricFamily(
            "vigil_slo_status",
            "1 for the current status of each SLO (per feature)",
            labels=["model", "slo", "feature", "status"],
        )
        incidents = GaugeMetricFamily(
            "vigil_open_incidents", "Open incidents", labels=["model", "severity"]
        )
        outbox = GaugeMetricFamily(
            "vigil_outbox_messages", "Outbox messages by state", labels=["receiver", "status"]
        )
        last_ok = GaugeMetricFamily(
            "vigil_last_successful_tick_timestamp_seconds",
            "Unix time of each model's last successful tick",
            labels=["model"],
        )
        failing = GaugeMetricFamily(
            "vigil_consecutive_tick_failures", "Failed ticks in a row", labels=["model"]
        )
        with self.sessions() as session:
            for state in session.scalars(select(SLOState)):
                labels = [state.model, state.slo_id, state.feature]
                if state.value is not None:
                    sli.add_metric(labels, state.value)
                samples.add_metric(labels, state.n)
                for name in STATUSES:
                    status.add_metric([*labels, name], 1.0 if state.status == name else 0.0)
            for model, severity, count in session.execute(
                select(Incident.model, Incident.severity, func.count())
                .where(Incident.status != "resolved")
                .group_by(Incident.model, Incident.severity)
            ):
                incidents.add_metric([model, severity], count)
            for receiver, state_name, count in session.execute(
                select(OutboxMessage.receiver, OutboxMessage.status, func.count()).group_by(
                    OutboxMessage.receiver, OutboxMessage.status
                )
            ):
                outbox.add_metric([receiver, state_name], count)
            for health in session.scalars(select(ModelHealth)):
                if health.last_success_at is not None:
                    last_ok.add_metric(
                        [health.model], health.last_success_at.astimezone(UTC).timestamp()
                    )
                failing.add_metric([health.model], health.consecutive_failures)
        yield from (sli, samples, status, incidents, outbox, last_ok, failing)


class DaemonMetrics:
    """Process-local instruments: tick durations and failures, observed as they happen."""

    def __init__(self, registry: CollectorRegistry):
        self.tick_duration = Histogram(
            "vigil_tick_duration_seconds",
            "Duration of one model's tick",
            ["model"],
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.tick_failures = Counter(
            "vigil_tick_failures", "Ticks that raised an error", ["model"], registry=registry
        )
        self.notifications = Counter(
            "vigil_notifications", "Notification delivery outcomes", ["outcome"], registry=registry
        )


def build_registry(sessions: sessionmaker[Session]) -> tuple[CollectorRegistry, DaemonMetrics]:
    registry = CollectorRegistry()
    registry.register(StoreCollector(sessions))
    return registry, DaemonMetrics(registry)
