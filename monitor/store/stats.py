"""How big the store is, and what of it belongs to which model: `vigil db stats`.

Bytes come from the engine where it can say: PostgreSQL's `pg_total_relation_size` (table,
indexes and TOAST), SQLite's `dbstat` table (pages of the table and its indexes) when the
library was built with it; otherwise only rows are counted and bytes are left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from monitor.store.retention import is_daily
from monitor.store.tables import Base, BucketSummaryRow, MetricPoint, SLOEvaluation


@dataclass(frozen=True)
class TableSize:
    table: str
    rows: int
    bytes: int | None


@dataclass
class ModelSize:
    """One model's rows in the tables that grow with time, and its buckets' time range."""

    model: str
    fine_buckets: int = 0
    daily_buckets: int = 0
    oldest_bucket: datetime | None = None
    newest_bucket: datetime | None = None
    evaluations: int = 0
    metric_points: int = 0
    bytes: int | None = None
    """Its share of the three tables' bytes, by rows (the engines size tables, not rows)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("oldest_bucket", "newest_bucket"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def _sqlite_bytes(conn: Connection) -> dict[str, int] | None:
    try:
        rows = conn.execute(
            text(
                "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat AS s "
                "JOIN sqlite_master AS m ON m.name = s.name GROUP BY m.tbl_name"
            )
        ).all()
    except DBAPIError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
        return None
    return {str(name): int(size) for name, size in rows}


def _postgres_bytes(conn: Connection, tables: list[str]) -> dict[str, int]:
    return {
        table: int(
            conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": table}).scalar_one()
        )
        for table in tables
    }


def table_sizes(engine: Engine) -> tuple[list[TableSize], str]:
    """Every Vigil table's rows and bytes, largest first, and how bytes were measured."""
    tables = sorted(Base.metadata.tables)
    with engine.connect() as conn:
        rows = {
            t: int(
                conn.execute(select(func.count()).select_from(Base.metadata.tables[t])).scalar_one()
            )
            for t in tables
        }
        backend = engine.url.get_backend_name()
        sizes: dict[str, int] | None = None
        method = "rows only"
        if backend == "postgresql":
            sizes, method = _postgres_bytes(conn, tables), "pg_total_relation_size"
        elif backend == "sqlite":
            sizes = _sqlite_bytes(conn)
            method = "dbstat" if sizes is not None else "rows only (no dbstat)"
    found = [TableSize(t, rows[t], None if sizes is None else sizes.get(t, 0)) for t in tables]
    return sorted(found, key=lambda s: (s.bytes or 0, s.rows), reverse=True), method


def model_sizes(engine: Engine, tables: list[TableSize]) -> list[ModelSize]:
    """Per model: fine and daily buckets, their time range, evaluations and metric points."""
    models: dict[str, ModelSize] = {}
    with engine.connect() as conn:
        buckets = conn.execute(
            select(
                BucketSummaryRow.model,
                BucketSummaryRow.part,
                func.count(),
                func.min(BucketSummaryRow.start),
                func.max(BucketSummaryRow.start),
            ).group_by(BucketSummaryRow.model, BucketSummaryRow.part)
        ).all()
        for model, part, count, oldest, newest in buckets:
            size = models.setdefault(model, ModelSize(model))
            if is_daily(part):
                size.daily_buckets += count
            else:
                size.fine_buckets += count
            size.oldest_bucket = min(filter(None, (size.oldest_bucket, oldest)), default=None)
            size.newest_bucket = max(filter(None, (size.newest_bucket, newest)), default=None)
        for table, attr in ((SLOEvaluation, "evaluations"), (MetricPoint, "metric_points")):
            for model, count in conn.execute(
                select(table.model, func.count()).group_by(table.model)
            ):
                setattr(models.setdefault(model, ModelSize(model)), attr, int(count))
    by_name = {t.table: t for t in tables}
    for size in models.values():
        size.bytes = _share(size, by_name)
    return sorted(models.values(), key=lambda m: m.model)


def _share(size: ModelSize, tables: dict[str, TableSize]) -> int | None:
    total = 0
    for table, rows in (
        ("bucket_summaries", size.fine_buckets + size.daily_buckets),
        ("slo_evaluations", size.evaluations),
        ("metric_points", size.metric_points),
    ):
        found = tables.get(table)
        if found is None or found.bytes is None:
            return None
        total += found.bytes * rows // max(found.rows, 1)
    return total
