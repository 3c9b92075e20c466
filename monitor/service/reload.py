"""SIGHUP: read the config file again and apply it to the running daemon, or keep the old one.

A valid file takes effect without a restart and without dropping a tick: jobs of models whose
schedule did not change are left alone (their next run stays where it was), new models tick at
once, removed models stop after the tick they may be running, a new interval applies from the
earlier of the old next run and now plus the new interval. Receivers are rebuilt. An invalid
file (or one that changes what only a restart can change: the store, the listen address) is
reported with its line and field and the old config stays in force.

`/metrics` shows the hash of the file in force and the last reload's result and time, so an
operator (or a rule) sees a reload that did not take.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog

from alerts.notifiers.registry import build_notifiers
from alerts.suppression import sync_config_silences
from monitor.config import ConfigError, load_config
from monitor.config.models import ServerConfig, VigilConfig
from monitor.core.clock import Clock
from monitor.engine.runtime import Runtime
from monitor.report.schedule import schedule_weekly
from monitor.service.metrics import DaemonMetrics, instrument

log = structlog.get_logger("vigil.daemon")


def config_hash(path: str | Path) -> str:
    """The first 16 hex digits of the file's SHA-256: the file as written, `${NAME}`
    references unexpanded, so the hash never depends on (or reveals) a secret."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "unreadable"


@dataclass(frozen=True)
class Plan:
    """What a reload changes in the scheduler and the caches."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rescheduled: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    """Models whose settings changed in any way: their cached buckets are dropped."""
    sources: list[str] = field(default_factory=list)
    """Sources whose URL changed or that were removed: their engines are disposed."""


def plan(old: VigilConfig, new: VigilConfig) -> Plan:
    models_old, models_new = old.models, new.models
    sources = [
        name
        for name, source in old.sources.items()
        if name not in new.sources or new.sources[name].url != source.url
    ]
    return Plan(
        added=sorted(set(models_new) - set(models_old)),
        removed=sorted(set(models_old) - set(models_new)),
        rescheduled=sorted(
            n
            for n in set(models_old) & set(models_new)
            if models_old[n].schedule != models_new[n].schedule
        ),
        changed=sorted(
            n for n in models_old if n not in models_new or models_new[n] != models_old[n]
        ),
        sources=sorted(sources),
    )


def restart_only(old: VigilConfig, new: VigilConfig) -> str | None:
    """A change that a running process cannot apply, named so the operator knows to restart."""
    if old.store.get_secret_value() != new.store.get_secret_value():
        return "store: the store cannot change without a restart (kept the old config)"
    if (old.server.host, old.server.port) != (new.server.host, new.server.port):
        return "server: host and port cannot change without a restart (kept the old config)"
    return None


class Daemon(Protocol):
    """What a reload changes in the daemon (`monitor.service.daemon.Daemon`)."""

    rt: Runtime
    clock: Clock
    config_path: Path | None
    metrics: DaemonMetrics
    settings: ServerConfig
    notifiers: dict[str, Any]
    workers: Any
    scheduler: Any

    def add_tick_job(self, name: str, first: datetime) -> None: ...
    def retime(self, job_id: str, interval: timedelta) -> None: ...
    def error_line(self, exc: BaseException) -> str: ...


def reload_config(daemon: Daemon) -> bool:
    """Re-read the daemon's config file and apply it, or log why not and keep the old one."""
    when = daemon.clock.now()

    def failed(problems: list[str]) -> bool:
        log.error("config reload failed", kept="old config", problems=problems)
        daemon.metrics.reloaded(False, when)
        return False

    if daemon.config_path is None:
        return failed(["no config file to reload"])
    try:
        new = load_config(daemon.config_path)
    except ConfigError as exc:  # problems are masked: they name fields, never secrets
        return failed(exc.render().splitlines()[1:])
    refused = restart_only(daemon.rt.config, new)
    if refused:
        return failed([f"{daemon.config_path}: {refused}"])
    try:
        changes = apply(daemon, new)
    except Exception as exc:  # the store refused the silences, a receiver would not build
        return failed([daemon.error_line(exc)])
    daemon.metrics.config_loaded(config_hash(daemon.config_path))
    daemon.metrics.reloaded(True, when)
    log.info("config reloaded", **{k: v for k, v in vars(changes).items() if v})
    return True


def apply(daemon: Daemon, new: VigilConfig) -> Plan:
    """Swap in a validated config: receivers and silences first (either can fail and leave
    the old config whole), then the runtime, the caches and the scheduler's jobs."""
    rt, old = daemon.rt, daemon.rt.config
    changes = plan(old, new)
    notifiers = instrument(build_notifiers(new, rt.state_dir), daemon.metrics)
    with rt.sessions.begin() as session:
        sync_config_silences(session, new, daemon.clock.now())
    rt.redact.extend(new)
    rt.config = new
    daemon.settings = new.server
    for source in changes.sources:
        engine = rt.source_engines.pop(source, None)
        if engine is not None:
            engine.dispose()  # connections a running tick holds are closed when returned
    for key in [k for k in rt.bucket_cache if k[0] in changes.changed]:
        rt.bucket_cache.pop(key, None)
    daemon.notifiers = notifiers
    daemon.workers.notifiers = notifiers
    daemon.workers.max_age = new.outbox_max_age
    daemon.workers.base_backoff = new.server.outbox_backoff
    if daemon.metrics.store is not None:
        daemon.metrics.store.reconfigure(new)
    scheduler = daemon.scheduler
    if scheduler.running:
        now = datetime.now(UTC)
        for name in changes.removed:
            if scheduler.get_job(f"tick:{name}") is not None:
                scheduler.remove_job(f"tick:{name}")
        for name in changes.added:
            daemon.metrics.known(name)
            daemon.add_tick_job(name, now)
        for name in changes.rescheduled:
            daemon.retime(f"tick:{name}", new.models[name].schedule)
        if new.server.outbox_interval != old.server.outbox_interval:
            daemon.retime("outbox", new.server.outbox_interval)
        if new.report != old.report:
            schedule_weekly(scheduler, rt, daemon.clock)
    return changes
