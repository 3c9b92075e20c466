"""The daemon's retention job (`monitor.engine.retention`) on its own interval.

It runs under the `retention` lease, so of several replicas sharing a PostgreSQL store one
at a time does the work; it never raises, because a failed clean-up must not stop ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from monitor.core.clock import Clock
from monitor.engine.retention import RetentionRun, run_retention
from monitor.engine.runtime import Runtime

log = structlog.get_logger("vigil.retention")
JOB_ID = "retention"
RETENTION_LEASE = "retention"


def retention_once(
    rt: Runtime, clock: Clock, may_run: Callable[[], bool] | None = None
) -> RetentionRun | None:
    """One run under the lease; None when retention is off, the lease is elsewhere, or the
    run failed (logged, redacted)."""
    if not rt.config.retention.enabled:
        return None
    try:
        if may_run is not None and not may_run():
            return None
        run = run_retention(rt, clock.now())
    except Exception as exc:
        log.error("retention failed", error=rt.redact(f"{type(exc).__name__}: {exc}")[:500])
        return None
    log.info(
        "retention",
        rolled_up=run.rolled_up,
        buckets_deleted=run.buckets_deleted,
        evaluations_deleted=run.evaluations_deleted,
        points_deleted=run.points_deleted,
        batches=run.batches,
        finished=run.finished,
        vacuumed=run.vacuumed,
    )
    return run


def schedule_retention(
    scheduler: Any, rt: Runtime, clock: Clock, may_run: Callable[[], bool] | None = None
) -> None:
    """Add the retention job to an APScheduler scheduler; its first run is one interval after
    the start, so a restarting daemon ticks its models first."""
    from apscheduler.triggers.interval import IntervalTrigger

    every = rt.config.retention.every
    scheduler.add_job(
        retention_once,
        IntervalTrigger(seconds=every.total_seconds(), timezone=UTC),
        args=[rt, clock, may_run],
        id=JOB_ID,
        next_run_time=datetime.now(UTC) + every,
        replace_existing=True,
    )
