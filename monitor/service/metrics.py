"""Prometheus exposition: stored values are read at scrape time by a custom collector.

The store is the source of truth, so a scrape shows exactly what the SLO engine last judged,
even for models ticked by another process: every replica of an HA deployment exports the same
SLI, budget, incident and health series (rules aggregate them with `max by`). What only a
process can know (how long its own ticks took, which leases it holds, what its notifiers
answered) comes from ordinary instruments.

Label sets are bounded by the config: model, SLO, metric, window, input-feature and receiver
names and fixed status words. Values of a column never become labels: slices of an SLO
(`segment_by` segments, per-class metrics) are exported as counts per status instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from prometheus_client import (
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.notifiers.base import Delivery, DeliveryError, Notification, Notifier
from monitor import __version__
from monitor.config.models import VigilConfig
from monitor.core.clock import Clock
from monitor.core.durations import format_duration
from monitor.core.severity import SEVERITIES
from monitor.core.values import BREACH, INSUFFICIENT, OK, UNCERTAIN
from monitor.store.slis import slo_id
from monitor.store.tables import Incident, ModelHealth, OutboxMessage, SLOState, Watermark

log = structlog.get_logger("vigil.metrics")
STATUSES = (OK, BREACH, UNCERTAIN, INSUFFICIENT)
OUTBOX_STATUSES = ("pending", "sent", "failed", "expired")
SLO_LABELS = ["model", "slo", "metric", "window"]
SLI_LABELS = [*SLO_LABELS, "feature"]


@dataclass(frozen=True)
class SLOMeta:
    metric: str
    window: str
    objective: float


def _ts(when: datetime) -> float:
    return when.astimezone(UTC).timestamp()


class StoreCollector(Collector):
    """Reads SLO states, incidents, the outbox, watermarks and model health per scrape.

    A store that cannot be read is reported as `vigil_store_up 0`, never as a failed scrape:
    Prometheus must still see the process (and alert on the store).
    """

    def __init__(self, sessions: sessionmaker[Session], config: VigilConfig, clock: Clock):
        self.sessions = sessions
        self.clock = clock
        self.reconfigure(config)

    def reconfigure(self, config: VigilConfig) -> None:
        """Export the models and SLOs of a reloaded config from the next scrape on."""
        self.config = config
        self.slos = {
            (name, slo_id(slo)): SLOMeta(
                slo.metric, format_duration(slo.window), slo.objective.threshold
            )
            for name, model in config.models.items()
            for slo in model.slos
        }
        self.features = {
            name: set(model.predictions.features) for name, model in config.models.items()
        }

    def feature_label(self, model: str, feature: str) -> str | None:
        """The feature as a label, or None for a slice (a column's value, a class)."""
        if feature == "" or feature.startswith("@") or feature in self.features.get(model, ()):
            return feature
        return None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("vigil_store_up", "1 when this scrape could read the store")
        try:
            families = list(self._from_store())
        except Exception as exc:  # a scrape must answer even when the store does not
            log.warning("metrics: store unreachable", error=type(exc).__name__)
            up.add_metric([], 0.0)
            yield up
            yield from self._from_config()
            return
        up.add_metric([], 1.0)
        yield up
        yield from families
        yield from self._from_config()

    def _from_config(self) -> Iterator[Metric]:
        interval = GaugeMetricFamily(
            "vigil_model_tick_interval_seconds",
            "Configured tick interval of each model (dead-man's-switch rules compare with it)",
            labels=["model"],
        )
        for name, model in self.config.models.items():
            interval.add_metric([name], model.schedule.total_seconds())
        objective = GaugeMetricFamily(
            "vigil_slo_objective",
            "Threshold of each SLO's objective (durations in seconds)",
            labels=SLO_LABELS,
        )
        for (name, sid), meta in self.slos.items():
            objective.add_metric([name, sid, meta.metric, meta.window], meta.objective)
        yield interval
        yield objective

    def _from_store(self) -> Iterator[Metric]:
        now = self.clock.now()
        with self.sessions() as session:
            yield from self._slo_families(session)
            yield from self._incident_families(session)
            yield from self._outbox_families(session, now)
            yield from self._health_families(session, now)

    def _slo_families(self, session: Session) -> Iterator[Metric]:
        sli = GaugeMetricFamily("vigil_sli_value", "Latest value of each SLI", labels=SLI_LABELS)
        samples = GaugeMetricFamily(
            "vigil_sli_samples", "Sample size (n) behind each SLI value", labels=SLI_LABELS
        )
        status = GaugeMetricFamily(
            "vigil_slo_status",
            "1 for the current status of each SLO (per feature), 0 for the others",
            labels=[*SLI_LABELS, "status"],
        )
        slices = GaugeMetricFamily(
            "vigil_slo_slices",
            "Slices (segments, classes) of each SLO in each status",
            labels=[*SLO_LABELS, "status"],
        )
        budget = GaugeMetricFamily(
            "vigil_slo_error_budget_remaining",
            "Share of the error budget left over the SLO's period (below 0: overspent)",
            labels=SLI_LABELS,
        )
        burn = GaugeMetricFamily(
            "vigil_slo_burn_rate",
            "Error-budget burn rate over each burn-alert window (1 = spent exactly by period end)",
            labels=[*SLI_LABELS, "burn_window"],
        )
        slice_counts: dict[tuple[str, ...], dict[str, int]] = {}
        for state in session.scalars(select(SLOState)):
            meta = self.slos.get((state.model, state.slo_id))
            if meta is None:  # an SLO no longer in the config
                continue
            base = [state.model, state.slo_id, meta.metric, meta.window]
            feature = self.feature_label(state.model, state.feature)
            if feature is None:
                counts = slice_counts.setdefault(tuple(base), dict.fromkeys(STATUSES, 0))
                counts[state.status] = counts.get(state.status, 0) + 1
                continue
            labels = [*base, feature]
            if state.value is not None:
                sli.add_metric(labels, state.value)
            samples.add_metric(labels, state.n)
            for name in STATUSES:
                status.add_metric([*labels, name], 1.0 if state.status == name else 0.0)
            if state.budget_left is not None:
                budget.add_metric(labels, state.budget_left)
            for window, rate in sorted((state.burn_rates or {}).items()):
                burn.add_metric([*labels, str(window)], float(rate))
        for base_key, counts in slice_counts.items():
            for name, count in counts.items():
                slices.add_metric([*base_key, name], count)
        yield from (sli, samples, status, slices, budget, burn)

    def _incident_families(self, session: Session) -> Iterator[Metric]:
        incidents = GaugeMetricFamily(
            "vigil_open_incidents",
            "Open (firing or acknowledged) incidents by model and severity",
            labels=["model", "severity"],
        )
        blind = GaugeMetricFamily(
            "vigil_model_blind",
            "1 while a model has an open monitoring_blind incident (its ticks keep failing)",
            labels=["model"],
        )
        counts: dict[tuple[str, str], int] = {
            (m, s): 0 for m in self.config.models for s in SEVERITIES
        }
        for model, severity, count in session.execute(
            select(Incident.model, Incident.severity, func.count())
            .where(Incident.status != "resolved")
            .group_by(Incident.model, Incident.severity)
        ):
            counts[(model, severity)] = count
        for (model, severity), count in sorted(counts.items()):
            incidents.add_metric([model, severity], count)
        blind_models = set(
            session.scalars(
                select(Incident.model).where(
                    Incident.status != "resolved", Incident.kind == "monitoring_blind"
                )
            )
        )
        for model in sorted(set(self.config.models) | blind_models):
            blind.add_metric([model], 1.0 if model in blind_models else 0.0)
        yield from (incidents, blind)

    def _outbox_families(self, session: Session, now: datetime) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            "vigil_outbox_messages",
            "Outbox messages by receiver and state (pending = the outbox depth)",
            labels=["receiver", "status"],
        )
        oldest = GaugeMetricFamily(
            "vigil_outbox_oldest_pending_age_seconds",
            "Age of each receiver's oldest undelivered message (0 when none waits)",
            labels=["receiver"],
        )
        counts = {(r, s): 0 for r in self.config.receivers for s in OUTBOX_STATUSES}
        for receiver, state_name, count in session.execute(
            select(OutboxMessage.receiver, OutboxMessage.status, func.count()).group_by(
                OutboxMessage.receiver, OutboxMessage.status
            )
        ):
            counts[(receiver, state_name)] = count
        for (receiver, state_name), count in sorted(counts.items()):
            outbox.add_metric([receiver, state_name], count)
        ages = dict.fromkeys(self.config.receivers, 0.0)
        for receiver, created in session.execute(
            select(OutboxMessage.receiver, func.min(OutboxMessage.created_at))
            .where(OutboxMessage.status == "pending")
            .group_by(OutboxMessage.receiver)
        ):
            if created is not None:  # min() keeps the column's type: an aware UTC time
                ages[receiver] = max(0.0, (now - created).total_seconds())
        for receiver, age in sorted(ages.items()):
            oldest.add_metric([receiver], age)
        yield from (outbox, oldest)

    def _health_families(self, session: Session, now: datetime) -> Iterator[Metric]:
        last_ok = GaugeMetricFamily(
            "vigil_last_successful_tick_timestamp_seconds",
            "Unix time of each model's last successful tick (by any process)",
            labels=["model"],
        )
        last_tick = GaugeMetricFamily(
            "vigil_last_tick_timestamp_seconds",
            "Unix time of each model's last tick, failed or not: the dead man's switch",
            labels=["model"],
        )
        failing = GaugeMetricFamily(
            "vigil_consecutive_tick_failures", "Failed ticks in a row", labels=["model"]
        )
        lag = GaugeMetricFamily(
            "vigil_source_read_lag_seconds",
            "Now minus the time of the newest row read, per model and stream",
            labels=["model", "stream"],
        )
        rows = CounterMetricFamily(
            "vigil_rows",
            "Rows read per model, stream and outcome (summarised, held, already_counted, "
            "deferred, bad.<reason>): every row read has exactly one",
            labels=["model", "stream", "outcome"],
        )
        for health in session.scalars(select(ModelHealth)):
            for key, count in sorted((health.row_outcomes or {}).items()):
                stream, _, outcome = key.partition(".")
                rows.add_metric([health.model, stream, outcome], count)
            if health.last_success_at is not None:
                last_ok.add_metric([health.model], _ts(health.last_success_at))
            if health.last_tick_at is not None:
                last_tick.add_metric([health.model], _ts(health.last_tick_at))
            failing.add_metric([health.model], health.consecutive_failures or 0)
        for mark in session.scalars(select(Watermark).where(Watermark.row_id.is_not(None))):
            lag.add_metric([mark.model, mark.stream], max(0.0, (now - mark.ts).total_seconds()))
        yield from (last_ok, last_tick, failing, lag, rows)


class DaemonMetrics:
    """Process-local instruments: what this process did, observed as it happens."""

    def known(self, model: str) -> None:
        """Export a model's counters at 0 from the start, so a rate over them is defined."""
        for counter in (self.tick_failures, self.tick_timeouts, self.tick_overruns):
            counter.labels(model)

    def __init__(self, registry: CollectorRegistry):
        self.tick_duration = Histogram(
            "vigil_tick_duration_seconds",
            "Duration of one model's tick run by this process",
            ["model"],
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.tick_failures = Counter(
            "vigil_tick_failures", "Ticks that raised an error", ["model"], registry=registry
        )
        self.tick_timeouts = Counter(
            "vigil_tick_timeouts",
            "Ticks stopped at their tick_timeout (also counted as failures)",
            ["model"],
            registry=registry,
        )
        self.tick_overruns = Counter(
            "vigil_tick_overruns",
            "Turns a model gave up because its previous tick was still running",
            ["model"],
            registry=registry,
        )
        self.notifications = Counter(
            "vigil_notifications",
            "Delivery attempts by receiver and outcome (sent, retried, failed)",
            ["receiver", "outcome"],
            registry=registry,
        )
        self.leases = Gauge(
            "vigil_lease_held",
            "1 when this process holds the lease (a model's ticks, or the outbox sender)",
            ["lease"],
            registry=registry,
        )
        self.replicas = Gauge(
            "vigil_replicas",
            "Live `vigil run` replicas on this PostgreSQL store, as this process last saw them",
            registry=registry,
        )
        self.share = Gauge(
            "vigil_share_models",
            "Models this replica ticks (its rendezvous-hash share; all of them when alone)",
            registry=registry,
        )
        Info("vigil_build", "The running Vigil version", registry=registry).info(
            {"version": __version__}
        )
        self.config_hash = Gauge(
            "vigil_config_hash_info",
            "1 for the hash of the config file in force (sha256 of the file, first 16 digits)",
            ["hash"],
            registry=registry,
        )
        self.reload_success = Gauge(
            "vigil_config_last_reload_successful",
            "1 when the last reload (SIGHUP) applied the file, 0 when the old config was kept",
            registry=registry,
        )
        self.reload_time = Gauge(
            "vigil_config_last_reload_timestamp_seconds",
            "When the last reload was tried (0: never since the start)",
            registry=registry,
        )
        self.reloads = Counter(
            "vigil_config_reloads",
            "Reloads tried, by result (success, failure)",
            ["result"],
            registry=registry,
        )
        for result in ("success", "failure"):
            self.reloads.labels(result)
        self.reload_success.set(1.0)
        self.store: StoreCollector | None = None

    def config_loaded(self, digest: str) -> None:
        self.config_hash.clear()
        self.config_hash.labels(digest).set(1.0)

    def reloaded(self, ok: bool, at: datetime) -> None:
        self.reload_success.set(1.0 if ok else 0.0)
        self.reload_time.set(_ts(at))
        self.reloads.labels("success" if ok else "failure").inc()


class CountingNotifier:
    """Wraps a notifier to count each delivery attempt's outcome for its receiver."""

    def __init__(self, receiver: str, inner: Notifier, metrics: DaemonMetrics):
        self.receiver, self.inner, self.metrics = receiver, inner, metrics

    def send(self, notification: Notification) -> Delivery:
        try:
            delivery = self.inner.send(notification)
        except DeliveryError as exc:
            outcome = "retried" if exc.retryable else "failed"
            self.metrics.notifications.labels(self.receiver, outcome).inc()
            raise
        self.metrics.notifications.labels(self.receiver, "sent").inc()
        return delivery


def instrument(notifiers: Mapping[str, Notifier], metrics: DaemonMetrics) -> dict[str, Notifier]:
    for receiver in notifiers:  # zero series exist before the first message
        for outcome in ("sent", "retried", "failed"):
            metrics.notifications.labels(receiver, outcome)
    return {name: CountingNotifier(name, n, metrics) for name, n in notifiers.items()}


def build_registry(
    sessions: sessionmaker[Session],
    config: VigilConfig,
    clock: Clock,
    models: Iterable[str] = (),
) -> tuple[CollectorRegistry, DaemonMetrics]:
    """A registry with the store collector, process metrics and this process's instruments."""
    registry = CollectorRegistry()
    store = StoreCollector(sessions, config, clock)
    registry.register(store)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR):
        registry.register(collector)
    metrics = DaemonMetrics(registry)
    metrics.store = store
    for model in models:
        metrics.known(model)
    return registry, metrics
