"""The store's side of retention: roll fine buckets up into daily ones, delete old rows.

Every function does one bounded batch inside the caller's transaction and returns how many
rows it handled (0: nothing left). Rows are deleted by the exact keys just read (and, on
PostgreSQL, locked), so a row a tick writes meanwhile is never deleted unseen: a late label
landing in an hour already rolled up becomes a new fine row, merged at the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from monitor.core.summaries import BucketSummary, merge_all
from monitor.store.state import upsert_buckets
from monitor.store.tables import BucketSummaryRow, MetricPoint, SLOEvaluation

FINE_PARTS = ("predictions", "labels")
DAILY_SUFFIX = ":1d"
"""A daily bucket keeps its stream in `part` (`predictions:1d`): readers merge every part of
a start, so windows and reports read daily and fine rows alike."""


def daily_part(part: str) -> str:
    return part + DAILY_SUFFIX


def is_daily(part: str) -> bool:
    return part.endswith(DAILY_SUFFIX)


DayOf = Callable[[datetime], tuple[datetime, datetime]]
"""A bucket's start -> (start, end) of the day it belongs to (in the report's time zone)."""


def roll_up_batch(
    session: Session, model: str, before: datetime, day_of: DayOf, limit: int, now: datetime
) -> int:
    """Merge up to `limit` fine buckets of the oldest day that starts before `before` into
    that day's daily rows (one per stream), then delete them. `before` must be a day start."""
    fine = (
        BucketSummaryRow.model == model,
        BucketSummaryRow.part.in_(FINE_PARTS),
        BucketSummaryRow.start < before,
    )
    oldest = session.scalar(select(func.min(BucketSummaryRow.start)).where(*fine))
    if oldest is None:
        return 0
    day, day_end = day_of(oldest)
    rows = session.execute(
        select(BucketSummaryRow.start, BucketSummaryRow.part, BucketSummaryRow.payload)
        .where(*fine, BucketSummaryRow.start < day_end)
        .order_by(BucketSummaryRow.start, BucketSummaryRow.part)
        .limit(limit)
        .with_for_update()
    ).all()
    by_part: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
    for start, part, payload in rows:
        by_part.setdefault(part, []).append((start, payload))
    for part, found in by_part.items():
        merged = merge_all(BucketSummary.from_json(payload) for _, payload in found)
        upsert_buckets(session, model, {day: merged}, now, part=daily_part(part))
        session.execute(
            delete(BucketSummaryRow).where(
                BucketSummaryRow.model == model,
                BucketSummaryRow.part == part,
                BucketSummaryRow.start.in_([start for start, _ in found]),
            )
        )
    return len(rows)


def prune_buckets_batch(session: Session, model: str, before: datetime, limit: int) -> int:
    """Delete up to `limit` bucket rows (any part) that start before `before`."""
    keys = session.execute(
        select(BucketSummaryRow.start, BucketSummaryRow.part)
        .where(BucketSummaryRow.model == model, BucketSummaryRow.start < before)
        .order_by(BucketSummaryRow.start)
        .limit(limit)
    ).all()
    by_part: dict[str, list[datetime]] = {}
    for start, part in keys:
        by_part.setdefault(part, []).append(start)
    for part, starts in by_part.items():
        session.execute(
            delete(BucketSummaryRow).where(
                BucketSummaryRow.model == model,
                BucketSummaryRow.part == part,
                BucketSummaryRow.start.in_(starts),
            )
        )
    return len(keys)


def prune_history_batch(
    session: Session,
    table: type[SLOEvaluation] | type[MetricPoint],
    model: str,
    before: datetime,
    limit: int,
) -> int:
    """Delete up to `limit` SLO evaluations or metric points of `model` made before `before`."""
    ids = list(
        session.scalars(
            select(table.id)
            .where(table.model == model, table.at < before)
            .order_by(table.at)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(table).where(table.id.in_(ids)))
    return len(ids)


def reclaim(engine: Engine, tables: list[str]) -> list[str]:
    """PostgreSQL only: a plain `VACUUM` of the tables a run deleted from, so the next writes
    reuse the freed space at once instead of when autovacuum next gets to them (in a fast
    backfill or a busy store, autovacuum falls behind and the files keep growing though the
    rows do not). Plain VACUUM blocks no reader or writer; SQLite reuses freed pages by
    itself. Returns the tables vacuumed."""
    if engine.dialect.name != "postgresql" or not tables:
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f'VACUUM "{table}"')
    return list(tables)
