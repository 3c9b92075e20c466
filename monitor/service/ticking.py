"""One model's tick as the daemon runs it: under its lease, within its `tick_timeout`, with
its failures recorded, retried with backoff and, past `blind_after`, made a `monitoring_blind`
incident (`monitor.service.blind`). A failing or slow model never stops the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog

from monitor.config.models import tick_timeout
from monitor.core import deadline
from monitor.core.clock import Clock
from monitor.engine.runtime import Runtime
from monitor.engine.tick import TickResult, tick
from monitor.service import blind
from monitor.service.leases import Coordinator, model_lease
from monitor.service.metrics import DaemonMetrics
from monitor.service.scheduling import bring_forward, tick_job_id
from monitor.service.watchdog import Watchdog

log = structlog.get_logger("vigil.daemon")


class TickJobs:
    """The tick side of `monitor.service.daemon.Daemon` (state it sets up in `__init__`)."""

    rt: Runtime
    clock: Clock
    leases: Coordinator
    metrics: DaemonMetrics
    scheduler: Any
    watchdog: Watchdog
    stop_event: threading.Event
    _running: set[str]
    _idle: threading.Condition
    _owned: dict[str, bool]
    _failing_since: dict[str, datetime]
    _failures: dict[str, int]

    def run_outbox(self) -> None: ...

    def mine(self, name: str) -> bool:
        raise NotImplementedError  # `monitor.service.share.Sharing.mine`

    def may_tick(self, name: str) -> bool:
        """Whether this process should tick `name` now: its share, and it holds the lease.
        Called after the tick marked itself running (see `Sharing._give_back`)."""
        return self.mine(name) and self._lease(model_lease(name))

    @contextmanager
    def _in_flight(self, job: str) -> Iterator[None]:
        with self._idle:
            self._running.add(job)
        try:
            yield
        finally:
            with self._idle:
                self._running.discard(job)
                self._idle.notify_all()

    def _lease(self, name: str) -> bool:
        """Take or keep a lease, logging when ownership changes hands."""
        got = self.leases.acquire(name)
        if self._owned.get(name) != got:
            log.info("lease acquired" if got else "lease held elsewhere", lease=name)
            self._owned[name] = got
        self.metrics.leases.labels(name).set(1.0 if got else 0.0)
        return got

    def run_tick(self, name: str) -> None:
        """One model's tick under its lease; a failure is recorded, retried, never raised."""
        if self.stop_event.is_set() or name not in self.rt.config.models:
            return  # stopping, or the model left the config in a reload
        with self._in_flight(tick_job_id(name)):
            now = self.clock.now()
            started = time.perf_counter()
            try:
                if not self.may_tick(name):
                    self._failing_since.pop(name, None)  # its owner keeps that count
                    self._failures.pop(name, None)
                    return
                result = self._timed_tick(name, now)
            except Exception as exc:
                self._tick_failed(name, now, time.perf_counter() - started, exc)
                return
            self._tick_succeeded(name, now, result)

    def _timed_tick(self, name: str, now: datetime) -> TickResult:
        """`tick` under the model's deadline: the watchdog cancels its statement at the limit."""
        limit = deadline.Deadline(tick_timeout(self.rt.config, name).total_seconds(), name)
        self.watchdog.watch(limit)
        try:
            with deadline.bound(limit):
                return tick(self.rt, name, now)
        finally:
            self.watchdog.forget(limit)

    def _tick_succeeded(self, name: str, now: datetime, result: TickResult) -> None:
        self.metrics.tick_duration.labels(name).observe(result.duration_s)
        self._failing_since.pop(name, None)
        self._failures.pop(name, None)
        blind_event = None
        try:
            blind_event = blind.on_success(self.rt, name, now)
        except Exception as exc:
            log.error("cannot resolve blindness", model=name, error=self.error_line(exc))
        log.info(
            "tick",
            model=name,
            predictions=result.predictions_read,
            labels=result.labels_read,
            bad_rows=result.bad_rows,
            slos=len(result.verdicts),
            breaches=sum(v.status == "breach" for v in result.verdicts),
            opened=sum(c.event == "open" for c in result.changes),
            resolved=sum(c.event == "resolve" for c in result.changes),
            duration_s=round(result.duration_s, 4),
            **({"blind": blind_event} if blind_event else {}),
        )
        if result.changes or blind_event:
            self.run_outbox()  # owed messages leave now, not at the sender's next run

    def _tick_failed(self, name: str, now: datetime, duration: float, exc: Exception) -> None:
        self.metrics.tick_duration.labels(name).observe(duration)
        self.metrics.tick_failures.labels(name).inc()
        timed_out = isinstance(exc, deadline.TickTimeout)
        if timed_out:
            self.metrics.tick_timeouts.labels(name).inc()
        error = self.error_line(exc)
        since = self._failing_since.setdefault(name, now)
        failures = self._failures[name] = self._failures.get(name, 0) + 1
        blind_event = None
        try:
            blind_event = blind.on_failure(self.rt, name, now, since, error)
        except Exception as inner:
            log.error("cannot record blindness", model=name, error=self.error_line(inner))
        model = self.rt.config.models.get(name)
        delay = blind.retry_delay(failures, model.schedule if model else timedelta(minutes=5))
        bring_forward(self.scheduler, tick_job_id(name), delay)
        log.warning(
            "tick timed out" if timed_out else "tick failed",
            model=name,
            error=error,
            consecutive_failures=failures,
            failing_for_s=round((now - since).total_seconds(), 1),
            retry_in_s=delay.total_seconds(),
            duration_s=round(duration, 4),
            **({"blind": blind_event} if blind_event else {}),
        )
        if blind_event:
            self.run_outbox()

    def error_line(self, exc: BaseException) -> str:
        """One redacted line: the error type and its message, without SQL or background links."""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return self.rt.redact(f"{type(exc).__name__}: {first}")[:500]
