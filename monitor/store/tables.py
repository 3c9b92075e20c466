"""Vigil's own state, as SQLAlchemy tables; Alembic migrations in `migrations/` create them.

Times are stored as naive UTC (`UTCDateTime`) so SQLite and PostgreSQL behave the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Accepts aware datetimes, stores naive UTC, returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; all times must be aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Watermark(Base):
    """How far each stream (predictions, labels) of a model has been read: (timestamp, id)."""

    __tablename__ = "watermarks"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    stream: Mapped[str] = mapped_column(String(20), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    row_id: Mapped[Any] = mapped_column(JSON)
    raw_ts: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Reference(Base):
    """The fitted reference summary of a model; `fingerprint` changes when its spec does."""

    __tablename__ = "references"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReferenceVersion(Base):
    """Every reference a model has had, from when it applied: the config's, or one moved or
    widened by `vigil baseline` (who, why, which period or categories)."""

    __tablename__ = "reference_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    applies_from: Mapped[datetime] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(20))
    """`config` (fitted from the config's reference), `period` or `categories` (baseline)."""
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    accepted: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        Index("uq_reference_versions_model_version", "model", "version", unique=True),
    )


class BucketSummaryRow(Base):
    """Mergeable counts for one model and one time bucket (by prediction time)."""

    __tablename__ = "bucket_summaries"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    part: Mapped[str] = mapped_column(String(20), primary_key=True, default="predictions")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MetricPoint(Base):
    """Every metric value computed at a tick, with its sample size and interval."""

    __tablename__ = "metric_points"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(100))
    feature: Mapped[str] = mapped_column(String(200), default="")
    window: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    n: Mapped[int] = mapped_column(Integer)
    ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_metric_points_model_at", "model", "at"),)


class SLOState(Base):
    """The latest verdict of one SLO (per feature where it has one) and how long it has held."""

    __tablename__ = "slo_states"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    slo_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    feature: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    status: Mapped[str] = mapped_column(String(30))
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    streak: Mapped[int] = mapped_column(Integer, default=1)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    budget_left: Mapped[float | None] = mapped_column(Float, nullable=True)
    burn_rates: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    rule: Mapped[str | None] = mapped_column(String(20), nullable=True)
    cusum: Mapped[float | None] = mapped_column(Float, nullable=True)
    """Page's CUSUM of the blocks judged so far (monitor/sequential.py)."""
    cusum_block: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """End of the newest block added to the CUSUM."""
    wrong_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """Since when the point estimate has been on the wrong side of the objective."""


class SLOEvaluation(Base):
    """The good/bad history of every SLI, from which budgets and reports are computed."""

    __tablename__ = "slo_evaluations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    slo_id: Mapped[str] = mapped_column(String(200))
    feature: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(30))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    rule: Mapped[str | None] = mapped_column(String(20), nullable=True)
    """The rule that decided the status (point, interval, sequential, min_samples)."""
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    """The threshold that applied: a relative objective's, resolved for this value's sample
    size; null when it could not be resolved."""
    __table_args__ = (Index("ix_slo_evaluations_model_slo_at", "model", "slo_id", "at"),)


class Incident(Base):
    """One breach of one SLO (and feature) from opening to resolution."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    slo_id: Mapped[str] = mapped_column(String(200))
    feature: Mapped[str] = mapped_column(String(200), default="")
    metric: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    suppressed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """Why the incident is recorded but not notified: `silence:<id>` or `inhibited:<key>`."""
    alert: Mapped[dict[str, Any]] = mapped_column(JSON)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Resolving and re-firing too often: changes are recorded, not notified, until it settles."""
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """The last open, resolve or re-fire: flapping settles when this is old enough."""
    __table_args__ = (
        Index(
            "uq_incidents_open_dedup_key",
            "dedup_key",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_incidents_model_opened", "model", "opened_at"),
    )


class IncidentEvent(Base):
    """Every change of an incident: when, what, who and why."""

    __tablename__ = "incident_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)


class OutboxMessage(Base):
    """A notification about one alert group waiting for (or done with) delivery."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    receiver: Mapped[str] = mapped_column(String(200))
    group_id: Mapped[int] = mapped_column(ForeignKey("alert_groups.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)


class ModelHealth(Base):
    """The daemon's own view of each model: last tick, last success, consecutive failures."""

    __tablename__ = "model_health"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_tick_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    last_duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    row_outcomes: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    """Rows read since the store was created, by stream and outcome (`predictions.summarised`,
    `predictions.bad.duplicate_id`, `labels.held`, ...): every row read lands in one."""


class AlertGroup(Base):
    """Incidents that share a receiver and `group_by` labels travel as one notification.

    `next_flush_at` is set when the group changed and a message is due (after `group_wait`
    for a new group, `group_interval` for a changed one); `sequence` counts messages sent.
    """

    __tablename__ = "alert_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receiver: Mapped[str] = mapped_column(String(200))
    group_key: Mapped[str] = mapped_column(String(64))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="firing")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_flush_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    group_interval_s: Mapped[int] = mapped_column(Integer, default=300)
    repeat_interval_s: Mapped[int] = mapped_column(Integer, default=14400)
    ticket_repeat_interval_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The reminder interval while no page fires in the group; NULL: tickets get none."""
    __table_args__ = (
        Index(
            "uq_alert_groups_active",
            "receiver",
            "group_key",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
    )


class AlertGroupMember(Base):
    __tablename__ = "alert_group_members"
    group_id: Mapped[int] = mapped_column(
        ForeignKey("alert_groups.id", ondelete="CASCADE"), primary_key=True
    )
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    notified_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    """The incident's status as last notified; a difference makes the group due."""


class Silence(Base):
    """Matchers plus a time range: matching incidents are recorded but not notified."""

    __tablename__ = "silences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    matchers: Mapped[dict[str, Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(20), default="cli")
    """`config` for silences declared in the config file (re-synced at start), else `cli`."""


class Bug(Base):
    """Vigil's own bug queue: ticket-severity incidents and follow-ups of resolved pages."""

    __tablename__ = "bugs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True
    )
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    model: Mapped[str] = mapped_column(String(200))
    slo_id: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    runbook_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    assignee: Mapped[str | None] = mapped_column(String(100), nullable=True)
    external_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Lease(Base):
    """Who runs what: a model's tick or the outbox sender, held until `expires_at`."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportDelivery(Base):
    """One weekly report sent to one channel: makes sending idempotent per week.

    `state` is `sending` from just before the send until the channel accepted it (then
    `sent`, with `sent_at`): a `sending` row found later is a send whose outcome a crash hid.
    """

    __tablename__ = "report_deliveries"
    week: Mapped[str] = mapped_column(String(10), primary_key=True)
    channel: Mapped[str] = mapped_column(String(200), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    path: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default="sent", server_default="sent")


class SeenRow(Base):
    """Rows already counted, by a 64-bit hash of their id: predictions within the duplicate
    horizon (a re-logged id is a duplicate across ticks), future-dated rows already counted
    as such, and rows with an unusable timestamp already counted as bad."""

    __tablename__ = "seen_rows"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    __table_args__ = (Index("ix_seen_rows_ts", "ts"),)


class HeldLabel(Base):
    """A label whose prediction was not in the source yet: retried every tick until it is
    found or the label horizon passes."""

    __tablename__ = "held_labels"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    row_id: Mapped[Any] = mapped_column(JSON)
    label: Mapped[Any] = mapped_column(JSON, nullable=True)
    labeled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())
