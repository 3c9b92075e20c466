"""Receiver kind -> factory. Adding an integration is a module and one line in `NOTIFIERS`.

Every notifier built here is wrapped so that a receiver which rejects messages for good (a
PagerDuty routing key PagerDuty does not accept, a revoked Slack token) raises a Vigil
meta-alert once: an incident of kind `monitoring_blind` for model `vigil`, routed like any
other (so it reaches the receivers that still work), resolved when the receiver next
delivers. The failed outbox rows themselves stay visible in `vigil outbox list` and in
`vigil_outbox_messages{status="failed"}`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from alerts.notifiers import bug_queue, github, pagerduty, slack, webhook
from alerts.notifiers.base import Alert, Delivery, DeliveryError, Notification, Notifier
from monitor.config.models import ReceiverConfig, VigilConfig
from monitor.core.clock import Clock, SystemClock

log = structlog.get_logger("vigil.notify")


@dataclass(frozen=True)
class Context:
    """What a factory may need besides its own config section."""

    state_dir: Path
    sessions: Callable[[], sessionmaker[Session]]
    clock: Clock


Factory = Callable[[ReceiverConfig, Context], Notifier]
"""Builds a receiver's notifier from its config; each factory reads its own section."""

_T = TypeVar("_T")


def _section(section: _T | None, kind: str) -> _T:
    """The receiver's section for `kind`; the config guarantees it is set for its kind."""
    if section is None:
        raise ValueError(f"receiver has no {kind!r} section")
    return section


def _slack(receiver: ReceiverConfig, ctx: Context) -> Notifier:
    section = _section(receiver.slack, "slack")
    return slack.from_config(section, ctx.state_dir / "slack-payloads.jsonl")


def _pagerduty(receiver: ReceiverConfig, ctx: Context) -> Notifier:
    return pagerduty.from_config(_section(receiver.pagerduty, "pagerduty"))


def _webhook(receiver: ReceiverConfig, ctx: Context) -> Notifier:
    return webhook.from_config(_section(receiver.webhook, "webhook"))


def _bug_queue(receiver: ReceiverConfig, ctx: Context) -> Notifier:
    return bug_queue.from_config(_section(receiver.bug_queue, "bug_queue"), ctx.sessions, ctx.clock)


def _github(receiver: ReceiverConfig, ctx: Context) -> Notifier:
    return github.from_config(_section(receiver.github, "github"), ctx.sessions, ctx.clock)


NOTIFIERS: dict[str, Factory] = {
    "slack": _slack,
    "pagerduty": _pagerduty,
    "webhook": _webhook,
    "bug_queue": _bug_queue,
    "github": _github,
}

META_MODEL = "vigil"
META_METRIC = "notifications.rejected"
META_KIND = "monitoring_blind"


def build_notifier(receiver: ReceiverConfig, context: Context) -> Notifier:
    return NOTIFIERS[receiver.kind](receiver, context)


def build_notifiers(
    config: VigilConfig,
    state_dir: Path,
    sessions: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
) -> dict[str, Notifier]:
    """One notifier per configured receiver, each reporting permanent rejections.

    Without `sessions`, a store connection is opened on first need (the bug queue, a
    meta-alert), so building notifiers never touches the database.
    """
    store = _LazySessions(config, sessions)
    context = Context(state_dir=state_dir, sessions=store, clock=clock or SystemClock())
    reporter = FailureReporter(config, store, context.clock)
    return {
        name: Reporting(name, build_notifier(receiver, context), reporter)
        for name, receiver in config.receivers.items()
    }


class _LazySessions:
    """The store, connected on first use only (most receivers never need it)."""

    def __init__(self, config: VigilConfig, sessions: sessionmaker[Session] | None) -> None:
        self._config = config
        self._sessions = sessions
        self._lock = threading.Lock()

    def __call__(self) -> sessionmaker[Session]:
        with self._lock:
            if self._sessions is None:
                from monitor.store.db import make_engine

                engine = make_engine(self._config.store.get_secret_value())
                self._sessions = sessionmaker(
                    engine, class_=_ClosingSession, expire_on_commit=False, autoflush=False
                )
            return self._sessions


class _ClosingSession(Session):
    """Keeps no idle connection once closed. Notifiers use the store rarely, and an idle
    SQLite connection left in a pool would checkpoint the store's WAL whenever it happens to
    be garbage-collected, long after its owner (a demo, a `vigil check`) finished."""

    def close(self) -> None:
        bind = self.bind
        super().close()
        if isinstance(bind, Engine):
            bind.dispose()


class Reporting:
    """A notifier that tells the reporter about permanent failures and recoveries."""

    def __init__(self, name: str, inner: Notifier, reporter: FailureReporter) -> None:
        self.name = name
        self.inner = inner
        self.reporter = reporter

    def __repr__(self) -> str:
        return f"Reporting({self.name!r}, {self.inner!r})"

    def send(self, notification: Notification) -> Delivery:
        try:
            delivery = self.inner.send(notification)
        except DeliveryError as exc:
            if not exc.retryable:
                self.reporter.failed(self.name, str(exc))
            raise
        self.reporter.delivered(self.name)
        return delivery


class FailureReporter:
    """Opens one meta-incident per receiver that rejects messages, and resolves it later.

    Reporting must never break delivery: a store problem here is logged and dropped.
    """

    def __init__(
        self, config: VigilConfig, sessions: Callable[[], sessionmaker[Session]], clock: Clock
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.clock = clock
        self._logged: set[tuple[str, str]] = set()
        self._maybe_open = set(config.receivers)
        self._lock = threading.Lock()

    def failed(self, receiver: str, error: str) -> None:
        with self._lock:
            first = (receiver, error) not in self._logged
            self._logged.add((receiver, error))
            self._maybe_open.add(receiver)
        if first:
            log.error("receiver rejects notifications", receiver=receiver, error=error)
        try:
            self._open(receiver, error)
        except Exception as exc:
            log.error("meta-alert not recorded", receiver=receiver, error=type(exc).__name__)

    def delivered(self, receiver: str) -> None:
        with self._lock:
            if receiver not in self._maybe_open:
                return
            self._maybe_open.discard(receiver)
        try:
            self._resolve(receiver)
        except Exception as exc:
            log.error("meta-alert not resolved", receiver=receiver, error=type(exc).__name__)

    def _open(self, receiver: str, error: str) -> None:
        from alerts.incidents import dedup_key, open_incident, open_incident_for
        from alerts.runbooks import runbook_url

        now = self.clock.now()
        key = dedup_key(META_MODEL, f"receiver:{receiver}", receiver)
        with self.sessions().begin() as session:
            if open_incident_for(session, key) is not None:
                return
            alert = Alert(
                model=META_MODEL,
                slo=f"receiver {receiver} rejects notifications: {error}"[:200],
                metric=META_METRIC,
                kind=META_KIND,
                severity="page",
                objective="== 0",
                window="now",
                value=1.0,
                n=1,
                runbook_url=runbook_url(META_KIND, self.config.runbook_base_url),
                started_at=now,
                feature=receiver,
                labels={"receiver": receiver},
            )
            open_incident(session, self.config, key, alert, now, error)

    def _resolve(self, receiver: str) -> None:
        from alerts.incidents import dedup_key, open_incident_for, resolve

        key = dedup_key(META_MODEL, f"receiver:{receiver}", receiver)
        with self.sessions().begin() as session:
            incident = open_incident_for(session, key)
            if incident is not None:
                resolve(session, incident, self.clock.now(), f"{receiver} delivered again")
