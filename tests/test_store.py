"""The state store: Alembic migrations against the models, the partial unique index, UTC times.

Every test runs on SQLite and on a real PostgreSQL database (the `db_url` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError, StatementError

from monitor.store.db import (
    StoreError,
    current_revision,
    head_revision,
    make_engine,
    session_factory,
    upgrade,
)
from monitor.store.tables import Base, Incident, Watermark

NOW = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_creates_every_model_table(engine: sa.Engine) -> None:
    """`upgrade` on an empty database creates every table of the models and stamps head."""
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    expected = set(Base.metadata.tables)
    assert expected <= _tables(engine), expected - _tables(engine)
    assert current_revision(engine) == head_revision()


def test_upgrade_twice_is_harmless(engine: sa.Engine) -> None:
    """A second `upgrade` changes nothing and keeps the data already stored."""
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        session.add(Watermark(model="m", stream="predictions", ts=NOW, row_id=7, updated_at=NOW))
    before = _tables(engine)
    assert upgrade(engine) == head_revision()
    assert _tables(engine) == before
    assert current_revision(engine) == head_revision()
    with sessions() as session:
        row = session.get(Watermark, ("m", "predictions"))
        assert row is not None and row.row_id == 7 and row.ts == NOW


def _schema_diffs(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_migrations_match_models(engine: sa.Engine) -> None:
    """After `upgrade`, autogenerate finds no difference between the migrated schema and models.

    No difference is filtered out, on either backend: not even SQLite type-affinity noise.
    """
    upgrade(engine)
    assert _schema_diffs(engine) == []


def test_compare_metadata_would_notice_a_drift(engine: sa.Engine) -> None:
    """The comparison above is not vacuous: a column the migrations lack is reported."""
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE model_health ADD COLUMN stray INTEGER"))
    diffs = _schema_diffs(engine)
    assert any(d[0] == "remove_column" and d[3].name == "stray" for d in diffs), diffs


def test_unknown_newer_revision_is_refused(engine: sa.Engine) -> None:
    """A store stamped by a newer Vigil makes `upgrade` raise `StoreError`, naming the revision."""
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(StoreError) as info:
        upgrade(engine)
    message = str(info.value)
    assert "9999_from_the_future" in message
    assert "newer" in message
    # Nothing was touched: the foreign revision is still there.
    assert current_revision(engine) == "9999_from_the_future"


def _incident(key: str, status: str, opened: datetime = NOW) -> Incident:
    return Incident(
        dedup_key=key,
        model="m",
        slo_id="m/accuracy/24h",
        feature="",
        metric="accuracy",
        kind="quality_drop",
        severity="page",
        status=status,
        opened_at=opened,
        resolved_at=opened + timedelta(hours=1) if status == "resolved" else None,
        alert={},
    )


def test_only_one_open_incident_per_dedup_key(engine: sa.Engine) -> None:
    """The partial unique index allows many resolved incidents per key but one open one."""
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        session.add_all(
            [
                _incident("k1", "resolved", NOW - timedelta(days=2)),
                _incident("k1", "resolved", NOW - timedelta(days=1)),
                _incident("k1", "open"),
                _incident("k2", "open"),  # another key is independent
            ]
        )
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(_incident("k1", "open", NOW + timedelta(hours=1)))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(_incident("k1", "escalated", NOW + timedelta(hours=1)))
    with sessions() as session:
        rows = session.scalars(sa.select(Incident).where(Incident.dedup_key == "k1")).all()
        assert sorted(r.status for r in rows) == ["open", "resolved", "resolved"]
    # Once the open one is resolved, a new one may open under the same key.
    with sessions.begin() as session:
        current = session.scalars(
            sa.select(Incident).where(Incident.dedup_key == "k1", Incident.status == "open")
        ).one()
        current.status = "resolved"
        current.resolved_at = NOW + timedelta(hours=2)
        session.add(_incident("k1", "open", NOW + timedelta(hours=3)))
    with sessions() as session:
        statuses = session.scalars(
            sa.select(Incident.status).where(Incident.dedup_key == "k1")
        ).all()
        assert sorted(statuses) == ["open", "resolved", "resolved", "resolved"]


def test_utc_datetime_round_trips_aware_times_as_utc(engine: sa.Engine) -> None:
    """Aware datetimes in any zone come back as the same instant, with tzinfo UTC."""
    upgrade(engine)
    sessions = session_factory(engine)
    berlin_summer = timezone(timedelta(hours=2))
    given = datetime(2026, 7, 1, 3, 30, 15, 123456, tzinfo=berlin_summer)
    with sessions.begin() as session:
        session.add(Watermark(model="m", stream="labels", ts=given, row_id="abc", updated_at=NOW))
    with sessions() as session:
        row = session.get(Watermark, ("m", "labels"))
        assert row is not None
        assert row.ts == given
        assert row.ts.tzinfo is UTC
        assert row.ts.hour == 1 and row.ts.microsecond == 123456
        assert row.updated_at == NOW and row.updated_at.tzinfo is UTC
    # Stored as naive UTC: the raw column holds 01:30 whatever zone was given.
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT ts FROM watermarks WHERE stream = 'labels'")).scalar()
    raw_dt = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    assert raw_dt.replace(tzinfo=None) == datetime(2026, 7, 1, 1, 30, 15, 123456)


def test_utc_datetime_rejects_naive_times(engine: sa.Engine) -> None:
    """A naive datetime never reaches the store: the write fails and nothing is stored."""
    upgrade(engine)
    sessions = session_factory(engine)
    with pytest.raises(StatementError) as info, sessions.begin() as session:
        session.add(
            Watermark(
                model="m",
                stream="predictions",
                ts=datetime(2026, 10, 5, 12, 0),
                row_id=1,
                updated_at=NOW,
            )
        )
    assert isinstance(info.value.orig, ValueError)
    assert "naive" in str(info.value.orig)
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Watermark)) == 0
