"""The daemon's scheduler: a bounded pool of tick threads, and when each model's job runs.

Fairness comes from the job settings, not from a priority queue: each model has one job with
`max_instances=1`, so a model whose tick overruns its interval gives up the turns it missed
(coalesced into one, counted in `vigil_tick_overruns_total`) instead of queueing more ticks;
it holds one worker thread at most, and a fast model waits in the pool's FIFO behind at most
one tick of every other model. First ticks are staggered so 200 models on one schedule do not
all start in the same second, and keep that spacing afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

TICK_PREFIX = "tick:"


def tick_job_id(name: str) -> str:
    return f"{TICK_PREFIX}{name}"


def build_scheduler(workers: int) -> BackgroundScheduler:
    """Ticks and the outbox share `workers` threads; the liveness heartbeat and the replicas'
    rebalance have their own, so a saturated pool neither makes a busy daemon look dead nor
    delays the takeover of a departed replica's models."""
    return BackgroundScheduler(
        timezone=UTC,
        executors={
            "default": ThreadPoolExecutor(workers),
            "heartbeat": ThreadPoolExecutor(1),
            "share": ThreadPoolExecutor(1),
        },
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )


def on_overrun(scheduler: BackgroundScheduler, count: Callable[[str], None]) -> None:
    """Call `count(model)` whenever a model's turn is skipped because its tick still runs."""

    def listener(event: JobEvent) -> None:
        if event.job_id.startswith(TICK_PREFIX):
            count(event.job_id[len(TICK_PREFIX) :])

    scheduler.add_listener(listener, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)


def _rank_key(name: str) -> bytes:
    """A stable order unrelated to the names' spelling (so `model_001..200` interleave)."""
    return hashlib.sha256(name.encode()).digest()


def staggered_starts(
    schedules: dict[str, timedelta], stagger: timedelta, now: datetime
) -> dict[str, datetime]:
    """Each model's first run: models spread evenly over min(stagger, their schedule), in a
    hash order; the first model starts at once, so one model alone is never delayed."""
    order = sorted(schedules, key=_rank_key)
    starts: dict[str, datetime] = {}
    for rank, name in enumerate(order):
        window = min(stagger, schedules[name])
        starts[name] = now + window * (rank / len(order))
    return starts


def add_interval_job(
    scheduler: BackgroundScheduler,
    func: Callable[..., Any],
    job_id: str,
    interval: timedelta,
    first: datetime,
    args: list[Any] | None = None,
    executor: str = "default",
) -> None:
    scheduler.add_job(
        func,
        IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
        args=args or [],
        id=job_id,
        next_run_time=first,
        replace_existing=True,
        executor=executor,
    )


def retime(scheduler: BackgroundScheduler, job_id: str, interval: timedelta) -> None:
    """A new interval for a job; its next run comes no later than it would have."""
    job = scheduler.get_job(job_id)
    if job is None:
        return
    soonest = datetime.now(UTC) + interval
    upcoming = job.next_run_time
    job.modify(
        trigger=IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
        next_run_time=min(upcoming, soonest) if upcoming is not None else soonest,
    )


def bring_forward(scheduler: BackgroundScheduler, job_id: str, delay: timedelta) -> None:
    """Run a job at `now + delay` if that is sooner than its next run (never later)."""
    job = scheduler.get_job(job_id)
    if job is None or job.next_run_time is None:
        return
    wanted = datetime.now(UTC) + delay
    if wanted < job.next_run_time:
        job.modify(next_run_time=wanted)
