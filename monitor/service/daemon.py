"""`vigil run`: one APScheduler job per model, the outbox sender, and the HTTP endpoints.

Jobs never overlap for one model (`max_instances=1`) and missed runs are coalesced into one,
so a slow source delays ticks instead of piling them up. Several processes may share a
PostgreSQL store: each job runs only under its lease (`monitor.service.leases`), so exactly one
process ticks a model and one drains the outbox, and a survivor takes over a killed
process's jobs at their next scheduled run.

A failing tick never stops the daemon: it is recorded, retried with backoff, and after the
model's `blind_after` becomes a `monitoring_blind` incident (`monitor.service.blind`).

SIGHUP re-reads the config file: a valid one takes effect without a restart or a dropped tick,
an invalid one is logged with its line and field and the old one kept (`monitor.service.reload`).

SIGTERM and SIGINT stop the scheduler, give running jobs `server.shutdown_timeout` to finish
(each source chunk commits with its watermark, so abandoning a tick loses nothing), send what
the outbox owes, release the leases and exit 0.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from alerts.dispatch import flush
from alerts.notifiers.registry import build_notifiers
from alerts.outbox import DrainResult
from alerts.workers import ReceiverWorkers
from monitor.core.clock import Clock
from monitor.engine.runtime import Runtime
from monitor.engine.tick import TickResult, tick
from monitor.report.schedule import schedule_weekly
from monitor.service import blind
from monitor.service.http import serve
from monitor.service.leases import (
    OUTBOX_LEASE,
    REPORT_LEASE,
    Coordinator,
    coordinator_for,
    holder_name,
    model_lease,
)
from monitor.service.metrics import build_registry, instrument
from monitor.service.reload import config_hash, reload_config
from monitor.service.status_page import render_status
from monitor.service.webconfig import WebConfig, load_web_config
from monitor.store.tables import ModelHealth

log = structlog.get_logger("vigil.daemon")
HEARTBEAT = timedelta(seconds=5)
STALE_HEARTBEAT = timedelta(seconds=60)


class Daemon:
    def __init__(
        self,
        rt: Runtime,
        clock: Clock,
        coordinator: Coordinator | None = None,
        config_path: Path | None = None,
        web: WebConfig | None = None,
    ):
        """Raises `LeaseError` when another daemon owns the (SQLite) store, `WebConfigError`
        when `server.web_config_file` cannot be used (`web` overrides that file; TLS and auth
        are read at start, a SIGHUP does not change them). `config_path`: the file SIGHUP
        reloads (without it, a reload is refused)."""
        self.rt = rt
        self.clock = clock
        self.config_path = config_path
        self.settings = rt.config.server
        if web is None and self.settings.web_config_file:
            web = load_web_config(rt.state_dir / self.settings.web_config_file)
        self.web = web
        if coordinator is None:
            coordinator, warning = coordinator_for(rt.store)
            if warning:
                log.warning("no coordination", reason=warning)
        self.leases = coordinator
        self.registry, self.metrics = build_registry(
            rt.sessions, rt.config, clock, rt.config.models
        )
        self.metrics.config_loaded(config_hash(config_path) if config_path else "none")
        self.notifiers = instrument(build_notifiers(rt.config, rt.state_dir), self.metrics)
        self.workers = ReceiverWorkers(
            rt.sessions,
            self.notifiers,
            rt.config.outbox_max_age,
            self._delivered,
            base_backoff=rt.config.server.outbox_backoff,
        )
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(10), "heartbeat": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.stop_event = threading.Event()
        self.server: Any = None
        self.started_at = clock.now()
        self.last_heartbeat = time.monotonic()
        self.abandoned: list[str] = []
        self._running: set[str] = set()
        self._idle = threading.Condition()
        self._outbox_mutex = threading.Lock()
        self._owned: dict[str, bool] = {}
        self._failing_since: dict[str, datetime] = {}
        self._failures: dict[str, int] = {}
        self._reload_wanted = threading.Event()
        self._wake = threading.Event()

    # -- jobs --------------------------------------------------------------------------------

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
        with self._in_flight(f"tick:{name}"):
            now = self.clock.now()
            started = time.perf_counter()
            try:
                if not self._lease(model_lease(name)):
                    self._failing_since.pop(name, None)  # its owner keeps that count
                    self._failures.pop(name, None)
                    return
                result = tick(self.rt, name, now)
            except Exception as exc:
                self._tick_failed(name, now, time.perf_counter() - started, exc)
                return
            self._tick_succeeded(name, now, result)

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
        self._reschedule(f"tick:{name}", delay)
        log.warning(
            "tick failed",
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

    def _reschedule(self, job_id: str, delay: timedelta) -> None:
        """Bring a failed model's next attempt forward to `now + delay` (never later)."""
        job = self.scheduler.get_job(job_id)
        if job is None or job.next_run_time is None:
            return
        wanted = datetime.now(UTC) + delay
        if wanted < job.next_run_time:
            job.modify(next_run_time=wanted)

    def run_outbox(self) -> None:
        """Under the outbox lease: write due groups into the outbox, then start a delivery
        worker for each receiver with mail (one at a time per receiver, never waited for
        here, so a hanging receiver delays neither this job nor another receiver)."""
        with self._outbox_mutex, self._in_flight(OUTBOX_LEASE):
            try:
                if not self._lease(OUTBOX_LEASE):
                    return
                now = self.clock.now()
                with self.rt.sessions.begin() as session:
                    flush(session, now)
                self.workers.kick(now)
            except Exception as exc:
                log.error("outbox drain failed", error=self.error_line(exc))

    def _delivered(self, receiver: str, result: DrainResult) -> None:
        counts = {k: getattr(result, k) for k in ("sent", "retried", "failed", "expired")}
        if any(counts.values()):
            log.info("outbox", receiver=receiver, **counts)

    def _heartbeat(self) -> None:
        self.last_heartbeat = time.monotonic()

    # -- probes ------------------------------------------------------------------------------

    def alive(self) -> tuple[bool, dict[str, Any]]:
        """Alive while the scheduler's loop runs jobs; a restart is the cure when it does not."""
        age = time.monotonic() - self.last_heartbeat
        detail: dict[str, Any] = {
            "scheduler": "running" if self.scheduler.running else "stopped",
            "heartbeat_age_s": round(age, 1),
            "holder": holder_name(),
        }
        if self.stop_event.is_set():
            return True, {**detail, "stopping": True}
        problems = []
        if not self.scheduler.running:
            problems.append("scheduler is not running")
        elif age > STALE_HEARTBEAT.total_seconds():
            problems.append(f"scheduler has run no job for {age:.0f}s")
        return not problems, {**detail, "problems": problems}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the store answers, the scheduler runs, every model ticked (by any
        process) within twice its interval, counting from this process's start at most, and
        no model's last `unready_after_failures` ticks all failed (a tick that fails every
        time still updates its time, so age alone would call it healthy)."""
        problems: list[str] = []
        if not self.scheduler.running:
            problems.append("scheduler is not running")
        try:
            with self.rt.sessions() as session:
                health = {h.model: h for h in session.query(ModelHealth)}
        except Exception as exc:
            problems.append(f"store unreachable: {self.error_line(exc)}")
            return False, {"problems": problems, "store": "unreachable"}
        now = self.clock.now()
        models: dict[str, Any] = {}
        failing: list[str] = []
        for name, model in self.rt.config.models.items():
            row = health.get(name)
            last = row.last_tick_at if row is not None else None
            limit = 2 * model.schedule
            waited = now - max(last or self.started_at, self.started_at)
            models[name] = {
                "last_tick_age_s": round((now - last).total_seconds(), 1) if last else None,
                "limit_s": limit.total_seconds(),
                "consecutive_failures": row.consecutive_failures if row is not None else 0,
                "owned_here": model_lease(name) in self.leases.held(),
            }
            if waited > limit:
                age = f"{int((now - last).total_seconds())}s ago" if last else "never"
                problems.append(f"{name}: last tick {age}, limit {int(limit.total_seconds())}s")
            failures = row.consecutive_failures if row is not None else 0
            if failures >= self.settings.unready_after_failures:
                failing.append(name)
                error = (row.last_error if row is not None else None) or "unknown error"
                problems.append(
                    f"{name}: {failures} ticks failed in a row "
                    f"(limit {self.settings.unready_after_failures}); last error: {error[:300]}"
                )
        detail = {"problems": problems, "store": "ok", "failing_models": failing, "models": models}
        return not problems, detail

    def status_page(self) -> str:
        """The read-only HTML status page served at `/`."""
        return render_status(self.rt, self.clock.now(), self.settings.unready_after_failures)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.started_at = self.clock.now()
        now = datetime.now(UTC)
        for name in self.rt.config.models:
            self.add_tick_job(name, now)
        self.scheduler.add_job(
            self.run_outbox,
            IntervalTrigger(seconds=self.settings.outbox_interval.total_seconds(), timezone=UTC),
            id="outbox",
            next_run_time=now,
        )
        self.scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=HEARTBEAT.total_seconds(), timezone=UTC),
            id="heartbeat",
            executor="heartbeat",
            next_run_time=now,
        )
        schedule_weekly(self.scheduler, self.rt, self.clock, lambda: self._lease(REPORT_LEASE))
        self.server = serve(
            self.settings.host,
            self.settings.port,
            self.registry,
            self.ready,
            self.alive,
            status_page=self.status_page,
            web=self.web,
            idle_timeout=self.settings.idle_timeout.total_seconds(),
            max_connections=self.settings.max_connections,
        )
        self.scheduler.start()
        log.info(
            "started",
            models=list(self.rt.config.models),
            port=self.server.server_address[1],
            coordination=self.leases.kind,
            holder=holder_name(),
        )

    def add_tick_job(self, name: str, first: datetime) -> None:
        seconds = self.rt.config.models[name].schedule.total_seconds()
        self.scheduler.add_job(
            self.run_tick,
            IntervalTrigger(seconds=seconds, timezone=UTC),
            args=[name],
            id=f"tick:{name}",
            next_run_time=first,
            replace_existing=True,
        )

    def retime(self, job_id: str, interval: timedelta) -> None:
        """A new interval for a job; its next run comes no later than it would have."""
        job = self.scheduler.get_job(job_id)
        if job is None:
            return
        soonest = datetime.now(UTC) + interval
        upcoming = job.next_run_time
        job.modify(
            trigger=IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
            next_run_time=min(upcoming, soonest) if upcoming is not None else soonest,
        )

    def reload(self) -> bool:
        """Re-read the config file; apply it when valid, else keep the old one. Never raises."""
        return reload_config(self)

    def _wait_idle(self, deadline: float) -> bool:
        with self._idle:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self) -> bool:
        """Stop within `shutdown_timeout`; True when every running job finished in time."""
        self.stop_event.set()
        deadline = time.monotonic() + self.settings.shutdown_timeout.total_seconds()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # no new runs; running ones go on
        finished = self._wait_idle(deadline)
        if finished:
            self._final_drain(deadline)
        else:
            with self._idle:
                self.abandoned = sorted(self._running)
            log.warning("abandoning running jobs", jobs=self.abandoned)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if finished:  # an abandoned job may still write: its lease goes with the process
            self.leases.close()
        log.info("stopped", clean=finished)
        return finished

    def _final_drain(self, deadline: float) -> None:
        """Send what the outbox owes before leaving (only if this process is its sender),
        waiting for the receivers' workers until the shutdown deadline at most."""
        if OUTBOX_LEASE in self.leases.held():
            self.workers.wait(deadline)  # a round still running holds its receiver's rows
            self.run_outbox()
            self.workers.wait(deadline)

    def serve_forever(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""

        def request_stop(signum: int, _frame: Any) -> None:
            log.info("stopping", signal=signal.Signals(signum).name)
            self.stop_event.set()
            self._wake.set()

        def request_reload(_signum: int, _frame: Any) -> None:
            self._reload_wanted.set()  # applied by the main loop, not inside the handler
            self._wake.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGHUP, request_reload)
        self.start()
        while not self.stop_event.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._reload_wanted.is_set() and not self.stop_event.is_set():
                self._reload_wanted.clear()
                log.info("reloading", signal="SIGHUP", config=str(self.config_path))
                self.reload()
        self.stop()
        return 0

    def close(self) -> None:
        """Release the leases of a daemon that was never started (tests, failed starts)."""
        self.leases.close()
