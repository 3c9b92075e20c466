"""The daemon's retention run: fine buckets become daily, old history goes, in small batches.

Each batch is its own short transaction of at most `retention.batch_rows` rows, so a tick
beside the run waits for one batch at most; a run stops after `retention.max_batches` and
the next run goes on where it stopped. What a configured window, budget period, volume
baseline or report still reads is never touched (`monitor.config.horizons`).

Daily buckets are days in the report's time zone, so a week of the report (local midnights)
is exactly a run of whole days; windows never reach them (validated in the config).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from monitor.config.horizons import DAY, resolve_retention
from monitor.engine.runtime import Runtime
from monitor.store.retention import (
    prune_buckets_batch,
    prune_history_batch,
    reclaim,
    roll_up_batch,
)
from monitor.store.tables import BucketSummaryRow, MetricPoint, SLOEvaluation


@dataclass
class RetentionRun:
    """Rows handled by one run, per kind, and whether everything due was done."""

    rolled_up: int = 0
    buckets_deleted: int = 0
    evaluations_deleted: int = 0
    points_deleted: int = 0
    batches: int = 0
    finished: bool = True
    models: list[str] = field(default_factory=list)
    vacuumed: list[str] = field(default_factory=list)


def day_bounds(tz: ZoneInfo) -> Callable[[datetime], tuple[datetime, datetime]]:
    """A UTC time -> (start, end) of its local day, both in UTC (23 or 25 hours at DST)."""

    def of(when: datetime) -> tuple[datetime, datetime]:
        local = when.astimezone(tz).date()
        start = datetime.combine(local, time(0), tz).astimezone(UTC)
        end = datetime.combine(local + timedelta(days=1), time(0), tz).astimezone(UTC)
        return start, end

    return of


def run_retention(rt: Runtime, now: datetime) -> RetentionRun:
    """One bounded pass over every configured model (a model gone from the config keeps its
    rows: it may come back, and deleting is not undoable)."""
    settings = rt.config.retention
    lengths = resolve_retention(rt.config)
    day_of = day_bounds(ZoneInfo(rt.config.report.timezone))
    limit = settings.batch_rows
    run = RetentionRun()

    def drain(step: Callable[[Session], int]) -> int:
        total = 0
        while run.batches < settings.max_batches:
            with rt.sessions.begin() as session:
                done = step(session)
            run.batches += 1
            total += done
            if done == 0:
                return total
        run.finished = False
        return total

    rolled_before = day_of(now - lengths.fine_for)[0]
    bucket_cut = day_of(now - lengths.buckets_for)[0]
    history_cut = now - lengths.history_for
    for name, model in rt.config.models.items():
        run.models.append(name)
        if model.bucket < DAY:
            roll = partial(roll_up_batch, model=name, before=rolled_before, day_of=day_of)
            run.rolled_up += drain(partial(roll, limit=limit, now=now))
        run.buckets_deleted += drain(
            partial(prune_buckets_batch, model=name, before=bucket_cut, limit=limit)
        )
        prune = partial(prune_history_batch, model=name, before=history_cut, limit=limit)
        run.evaluations_deleted += drain(partial(prune, table=SLOEvaluation))
        run.points_deleted += drain(partial(prune, table=MetricPoint))
    if settings.vacuum:
        run.vacuumed = reclaim(rt.store, _emptied(run))
    # The process's parsed buckets older than the roll-up are no window's any more: without
    # this the daemon's cache would keep every hour it ever read.
    for key in [k for k in list(rt.bucket_cache) if k[1] < rolled_before]:
        rt.bucket_cache.pop(key, None)
    return run


def _emptied(run: RetentionRun) -> list[str]:
    """The tables this run deleted rows from (a roll-up deletes the fine rows it merged)."""
    deleted = {
        BucketSummaryRow.__tablename__: run.rolled_up + run.buckets_deleted,
        SLOEvaluation.__tablename__: run.evaluations_deleted,
        MetricPoint.__tablename__: run.points_deleted,
    }
    return [table for table, rows in deleted.items() if rows]
