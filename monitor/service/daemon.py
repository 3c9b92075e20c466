"""`vigil run`: one APScheduler job per model, the outbox sender, and the HTTP endpoints.

The parts live in their own modules: the pool and job timing (`monitor.service.scheduling`:
`server.workers` threads, one job per model that never overlaps itself, staggered starts),
one tick under its lease and deadline (`monitor.service.ticking`), the probes and status page
(`monitor.service.probes`). Several processes may share a
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from alerts.dispatch import flush
from alerts.notifiers.registry import build_notifiers
from alerts.outbox import DrainResult
from alerts.workers import ReceiverWorkers
from monitor.config.models import worker_count
from monitor.core.clock import Clock
from monitor.engine.runtime import Runtime
from monitor.report.schedule import schedule_weekly
from monitor.service import scheduling
from monitor.service.http import serve
from monitor.service.leases import (
    OUTBOX_LEASE,
    REPORT_LEASE,
    Coordinator,
    coordinator_for,
    holder_name,
)
from monitor.service.metrics import build_registry, instrument
from monitor.service.probes import STALE_HEARTBEAT, Probes
from monitor.service.reload import config_hash, reload_config
from monitor.service.retention_job import RETENTION_LEASE, schedule_retention
from monitor.service.share import Sharing
from monitor.service.ticking import TickJobs
from monitor.service.watchdog import Watchdog
from monitor.service.webconfig import WebConfig, load_web_config

log = structlog.get_logger("vigil.daemon")
HEARTBEAT = timedelta(seconds=5)
__all__ = ["HEARTBEAT", "STALE_HEARTBEAT", "Daemon"]


class Daemon(Sharing, TickJobs, Probes):
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
            coordinator, warning = coordinator_for(rt.store, replica=True)
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
        self.scheduler = scheduling.build_scheduler(worker_count(self.settings))
        scheduling.on_overrun(self.scheduler, self._overran)
        self.watchdog = Watchdog()
        self.share: frozenset[str] | None = None
        self.replica_set: list[str] = []
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

    def _overran(self, model: str) -> None:
        self.metrics.tick_overruns.labels(model).inc()
        log.warning("tick overran its interval: turn skipped", model=model)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.started_at = self.clock.now()
        now = datetime.now(UTC)
        self.rebalance()  # a replica takes only its share from its first tick on
        schedules = {name: m.schedule for name, m in self.rt.config.models.items()}
        for name, first in scheduling.staggered_starts(
            schedules, self.settings.stagger, now
        ).items():
            self.add_tick_job(name, first)
        scheduling.add_interval_job(
            self.scheduler, self.run_outbox, "outbox", self.settings.outbox_interval, now
        )
        scheduling.add_interval_job(
            self.scheduler, self._heartbeat, "heartbeat", HEARTBEAT, now, executor="heartbeat"
        )
        scheduling.add_interval_job(
            self.scheduler,
            self.rebalance,
            "rebalance",
            self.settings.rebalance_interval,
            now + self.settings.rebalance_interval,
            executor="share",
        )
        schedule_weekly(self.scheduler, self.rt, self.clock, lambda: self._lease(REPORT_LEASE))
        schedule_retention(
            self.scheduler, self.rt, self.clock, lambda: self._lease(RETENTION_LEASE)
        )
        self.server = serve(
            self.settings.host,
            self.settings.port,
            self.registry,
            self.ready,
            self.alive,
            status_page=self.status_page,
            incident_page=self.incident_page,
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
            workers=worker_count(self.settings),
        )

    def add_tick_job(self, name: str, first: datetime) -> None:
        schedule = self.rt.config.models[name].schedule
        job = scheduling.tick_job_id(name)
        scheduling.add_interval_job(self.scheduler, self.run_tick, job, schedule, first, [name])

    def retime(self, job_id: str, interval: timedelta) -> None:
        """A new interval for a job; its next run comes no later than it would have."""
        scheduling.retime(self.scheduler, job_id, interval)

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
        self.watchdog.stop()
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
