"""The daemon's weekly report job: a cron trigger from `report.weekly` in `report.timezone`.

The job reports on the last complete week as seen from the injected clock, so a simulated
clock and the wall clock pick the same week for the same moment. Sending is idempotent, so a
job that runs twice (two daemons, a restart inside the minute) delivers once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from monitor.config.models import parse_weekly
from monitor.core.clock import Clock
from monitor.engine.runtime import Runtime

log = structlog.get_logger("vigil.report")
JOB_ID = "report:weekly"


def weekly_trigger(weekly: str, timezone: str) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    day, hour, minute = parse_weekly(weekly)
    return CronTrigger(day_of_week=day, hour=hour, minute=minute, timezone=ZoneInfo(timezone))


def run_weekly(rt: Runtime, clock: Clock, may_send: Callable[[], bool] | None = None) -> None:
    """Publish last week's report; never raises, because a failed report must not stop ticks.
    `may_send` is the daemon's lease check: one process (daemon or CLI) sends at a time."""
    from monitor.report.deliver import publish
    from monitor.report.weeks import last_complete_week

    try:
        if may_send is not None and not may_send():
            return
    except Exception as exc:
        log.error("weekly report skipped", error=rt.redact(f"{type(exc).__name__}: {exc}"))
        return
    now = clock.now()
    week = last_complete_week(now, ZoneInfo(rt.config.report.timezone))
    try:
        result = publish(rt, week, now)
    except Exception as exc:
        log.error(
            "weekly report failed", week=week.label, error=rt.redact(f"{type(exc).__name__}: {exc}")
        )
        return
    log.info(
        "weekly report",
        week=week.label,
        path=str(result.html),
        **{o.channel: o.status for o in result.outcomes},
    )


def schedule_weekly(
    scheduler: Any, rt: Runtime, clock: Clock, may_send: Callable[[], bool] | None = None
) -> None:
    """Add the one weekly job to an APScheduler scheduler."""
    report = rt.config.report
    scheduler.add_job(
        run_weekly,
        weekly_trigger(report.weekly, report.timezone),
        args=[rt, clock, may_send],
        id=JOB_ID,
        replace_existing=True,
    )
