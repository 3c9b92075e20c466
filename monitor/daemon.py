"""`vigil run`: one APScheduler job per model, the outbox sender, and the metrics server.

Jobs never overlap for one model (`max_instances=1`) and missed runs are coalesced into one,
so a slow source delays ticks instead of piling them up. SIGTERM and SIGINT stop the
scheduler after the running ticks finish.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from alerts.dispatch import deliver
from alerts.notifiers.registry import build_notifiers
from monitor.clock import Clock
from monitor.http import serve
from monitor.metrics import build_registry
from monitor.pipeline import tick
from monitor.runtime import Runtime
from monitor.store.tables import ModelHealth

log = structlog.get_logger("vigil.daemon")
OUTBOX_INTERVAL = timedelta(seconds=10)


class Daemon:
    def __init__(self, rt: Runtime, clock: Clock):
        self.rt = rt
        self.clock = clock
        self.stop_event = threading.Event()
        self.registry, self.metrics = build_registry(rt.sessions)
        self.notifiers = build_notifiers(rt.config, rt.state_dir)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.server: Any = None

    def run_tick(self, name: str) -> None:
        with self.metrics.tick_duration.labels(name).time():
            try:
                result = tick(self.rt, name, self.clock.now())
            except Exception as exc:
                self.metrics.tick_failures.labels(name).inc()
                log.error(
                    "tick failed", model=name, error=self.rt.redact(f"{type(exc).__name__}: {exc}")
                )
                return
        log.info(
            "tick",
            model=name,
            predictions=result.predictions_read,
            labels=result.labels_read,
            bad_rows=result.bad_rows,
            breaches=sum(v.status == "breach" for v in result.verdicts),
            opened=sum(c.event == "open" for c in result.changes),
            resolved=sum(c.event == "resolve" for c in result.changes),
            duration_s=round(result.duration_s, 4),
        )

    def run_outbox(self) -> None:
        try:
            result = deliver(
                self.rt.sessions, self.notifiers, self.clock.now(), self.rt.config.outbox_max_age
            )
        except Exception as exc:
            log.error("outbox drain failed", error=self.rt.redact(f"{type(exc).__name__}: {exc}"))
            return
        for outcome in ("sent", "retried", "failed", "expired"):
            count = getattr(result, outcome)
            if count:
                self.metrics.notifications.labels(outcome).inc(count)
                log.info("outbox", outcome=outcome, count=count)

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the store answers, the scheduler runs, and every model ticked recently."""
        problems: list[str] = []
        if not self.scheduler.running:
            problems.append("scheduler is not running")
        try:
            with self.rt.sessions() as session:
                health = {h.model: h for h in session.query(ModelHealth)}
        except Exception as exc:
            return False, {"problems": [f"store unreachable: {type(exc).__name__}"]}
        now = self.clock.now()
        for name, model in self.rt.config.models.items():
            last = health.get(name)
            if last is None or last.last_tick_at is None:
                if now - self.started_at > 2 * model.schedule:
                    problems.append(f"{name}: no tick yet")
            elif now - last.last_tick_at > 2 * model.schedule:
                problems.append(
                    f"{name}: last tick {int((now - last.last_tick_at).total_seconds())}s ago"
                )
        return not problems, {"problems": problems}

    def start(self) -> None:
        self.started_at = self.clock.now()
        now = datetime.now(UTC)
        for name, model in self.rt.config.models.items():
            self.scheduler.add_job(
                self.run_tick,
                IntervalTrigger(seconds=model.schedule.total_seconds(), timezone=UTC),
                args=[name],
                id=f"tick:{name}",
                next_run_time=now,
            )
        self.scheduler.add_job(
            self.run_outbox,
            IntervalTrigger(seconds=OUTBOX_INTERVAL.total_seconds(), timezone=UTC),
            id="outbox",
            next_run_time=now,
        )
        server_cfg = self.rt.config.server
        self.server = serve(server_cfg.host, server_cfg.port, self.registry, self.ready)
        self.scheduler.start()
        log.info(
            "started",
            models=list(self.rt.config.models),
            metrics_port=self.server.server_address[1],
        )

    def stop(self) -> None:
        self.scheduler.shutdown(wait=True)
        self.run_outbox()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        log.info("stopped")

    def serve_forever(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""

        def request_stop(signum: int, _frame: Any) -> None:
            log.info("stopping", signal=signal.Signals(signum).name)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.start()
        self.stop_event.wait()
        self.stop()
        return 0
