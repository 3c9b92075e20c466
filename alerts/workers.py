"""One delivery worker per receiver, for the daemon: a receiver that hangs delays only itself.

The daemon's sender job writes due groups into the outbox and then *kicks* the workers: every
receiver with mail gets a thread draining its queue (`outbox.drain_receiver`), unless the
previous one is still busy, in which case that receiver simply waits for its own next round.
So a Slack that hangs until its timeout never holds up PagerDuty's next message, and the
sender job itself never waits on the network. Each notifier bounds its own calls with a
timeout, so a worker always ends.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session, sessionmaker

from alerts.notifiers.base import Notifier
from alerts.outbox import BASE_BACKOFF, DrainResult, drain_receiver, pending_receivers

log = structlog.get_logger("vigil.outbox")


class ReceiverWorkers:
    """Starts and tracks one draining thread per receiver."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifiers: Mapping[str, Notifier],
        max_age: timedelta,
        on_result: Callable[[str, DrainResult], None] | None = None,
        base_backoff: timedelta = BASE_BACKOFF,
    ) -> None:
        self.sessions = sessions
        self.notifiers = notifiers
        self.max_age = max_age
        self.on_result = on_result
        self.base_backoff = base_backoff
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()

    def kick(self, now: datetime) -> list[str]:
        """Start a drain for every receiver with pending mail and no drain running; returns
        the receivers started. Never blocks on a receiver."""
        started = []
        for receiver in pending_receivers(self.sessions):
            with self._lock:
                running = self._threads.get(receiver)
                if running is not None and running.is_alive():
                    continue
                thread = threading.Thread(
                    target=self._drain,
                    args=(receiver, now, self._rng.random()),
                    name=f"outbox:{receiver}",
                    daemon=True,
                )
                self._threads[receiver] = thread
                thread.start()
            started.append(receiver)
        return started

    def busy(self) -> list[str]:
        with self._lock:
            return sorted(r for r, t in self._threads.items() if t.is_alive())

    def wait(self, deadline: float) -> bool:
        """Wait until every worker finished or `deadline` (time.monotonic()) passed."""
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not self.busy()

    def _drain(self, receiver: str, now: datetime, seed: float) -> None:
        try:
            result = drain_receiver(
                self.sessions,
                receiver,
                self.notifiers.get(receiver),
                now,
                self.max_age,
                random.Random(seed),
                self.base_backoff,
            )
        except Exception as exc:  # a store outage: the next round tries again
            log.error("outbox drain failed", receiver=receiver, error=type(exc).__name__)
            return
        if self.on_result is not None:
            self.on_result(receiver, result)
