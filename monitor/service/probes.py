"""`/healthz`, `/readyz`, the status page and the incidents' evidence pages of the daemon:
what an orchestrator and an operator ask of it."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from monitor.config.models import ServerConfig
from monitor.core.clock import Clock
from monitor.engine.runtime import Runtime
from monitor.service.evidence_page import render_incident
from monitor.service.leases import Coordinator, holder_name, model_lease
from monitor.service.status_page import render_status
from monitor.store.tables import ModelHealth

STALE_HEARTBEAT = timedelta(seconds=60)
TIMEOUT_ERROR = "TickTimeout"


class Probes:
    """The probe side of `monitor.service.daemon.Daemon` (state it sets up in `__init__`)."""

    rt: Runtime
    clock: Clock
    leases: Coordinator
    settings: ServerConfig
    scheduler: Any
    stop_event: threading.Event
    started_at: datetime
    last_heartbeat: float

    def error_line(self, exc: BaseException) -> str:
        raise NotImplementedError  # `monitor.service.ticking.TickJobs.error_line`

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
        time still updates its time, so age alone would call it healthy). A model whose last
        tick was stopped at its `tick_timeout` says so (`timed_out`)."""
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
        held = self.leases.held()
        for name, model in self.rt.config.models.items():
            row = health.get(name)
            last = row.last_tick_at if row is not None else None
            limit = 2 * model.schedule
            waited = now - max(last or self.started_at, self.started_at)
            failures = row.consecutive_failures if row is not None else 0
            error = (row.last_error if row is not None else None) or ""
            models[name] = {
                "last_tick_age_s": round((now - last).total_seconds(), 1) if last else None,
                "limit_s": limit.total_seconds(),
                "consecutive_failures": failures,
                "timed_out": bool(failures) and error.startswith(TIMEOUT_ERROR),
                "owned_here": model_lease(name) in held,
            }
            if waited > limit:
                age = f"{int((now - last).total_seconds())}s ago" if last else "never"
                problems.append(f"{name}: last tick {age}, limit {int(limit.total_seconds())}s")
            if failures >= self.settings.unready_after_failures:
                failing.append(name)
                problems.append(
                    f"{name}: {failures} ticks failed in a row "
                    f"(limit {self.settings.unready_after_failures}); "
                    f"last error: {(error or 'unknown error')[:300]}"
                )
        detail = {"problems": problems, "store": "ok", "failing_models": failing, "models": models}
        return not problems, detail

    def status_page(self) -> str:
        """The read-only HTML status page served at `/`."""
        return render_status(self.rt, self.clock.now(), self.settings.unready_after_failures)

    def incident_page(self, incident_id: int) -> str | None:
        """The evidence page served at `/incidents/<id>`; None (a 404) for an unknown id."""
        return render_incident(self.rt, incident_id, self.clock.now())
