"""Replicas on one PostgreSQL store split the models between them: each ticks its share.

Every replica computes the same split from the same inputs, with no coordinator to elect:
the live replicas (`Coordinator.replicas`, the lock connections open in `pg_stat_activity`)
and rendezvous hashing, which gives each model to the replica with the highest
hash(replica, model). When a replica joins, it takes about 1/n of the models and only those
move; when one leaves, only its models move, spread over the survivors.

The advisory lock of each model (`monitor.service.leases`) still guarantees that no model is
ticked by two replicas at once while their views of who is alive differ for a moment: a
replica releases a lease that is no longer its share (never while that model's tick runs),
and takes a new one as soon as the old holder let go. Every `server.rebalance_interval` a
replica looks again, gives back what is not its own and tries, at once, the models that
became its own, so a departed replica's models are ticked again within about one interval.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import structlog

from monitor.engine.runtime import Runtime
from monitor.service.leases import Coordinator, model_lease
from monitor.service.metrics import DaemonMetrics
from monitor.service.scheduling import bring_forward, tick_job_id

log = structlog.get_logger("vigil.daemon")
_NOW = timedelta(0)


def _weight(replica: str, model: str) -> bytes:
    return hashlib.sha256(f"{replica}\0{model}".encode()).digest()


def owner(model: str, replicas: Iterable[str]) -> str:
    """The replica that ticks `model` (rendezvous, or highest-random-weight, hashing)."""
    return max(replicas, key=lambda replica: _weight(replica, model))


def share_of(me: str, models: Iterable[str], replicas: list[str]) -> frozenset[str]:
    return frozenset(m for m in models if owner(m, replicas) == me)


class Sharing:
    """The replica side of `monitor.service.daemon.Daemon` (state it sets up in `__init__`)."""

    rt: Runtime
    leases: Coordinator
    scheduler: Any
    _running: set[str]
    _idle: threading.Condition
    metrics: DaemonMetrics
    share: frozenset[str] | None
    replica_set: list[str]

    def mine(self, name: str) -> bool:
        """Whether `name` is this process's to tick (always, when it runs alone)."""
        return self.share is None or name in self.share

    def rebalance(self) -> None:
        """Recompute the share; release leases now elsewhere, try new ones at once. Never
        raises: an unreachable store keeps the last share (the leases still guard)."""
        try:
            replicas = self.leases.replicas()
        except Exception as exc:
            log.warning("cannot list replicas", error=type(exc).__name__)
            return
        if replicas is None:
            self.share = None
            return
        models = list(self.rt.config.models)
        share = share_of(self.leases.me, models, replicas)
        if share != self.share or replicas != self.replica_set:
            log.info("share", replicas=len(replicas), models=len(share), of=len(models))
        self.share, self.replica_set = share, replicas
        self.metrics.replicas.set(len(replicas))
        self.metrics.share.set(len(share))
        held = self.leases.held()
        for name in models:
            lease = model_lease(name)
            if name in share and lease not in held:
                bring_forward(self.scheduler, tick_job_id(name), _NOW)  # take it over now
            elif name not in share and lease in held:
                self._give_back(name)
        for lease in held:  # models removed from the config in a reload
            if lease.startswith("model:") and lease[len("model:") :] not in self.rt.config.models:
                self._give_back(lease[len("model:") :])

    def _give_back(self, name: str) -> None:
        """Release `name`'s lease unless its tick runs (then at the next rebalance): a tick
        checks `mine` after it marks itself running, under the same lock."""
        with self._idle:
            if tick_job_id(name) in self._running:
                return
            try:
                self.leases.release(model_lease(name))
            except Exception as exc:
                log.warning("cannot release lease", model=name, error=type(exc).__name__)
                return
            self.metrics.leases.labels(model_lease(name)).set(0.0)
        log.info("lease released", lease=model_lease(name), reason="another replica's share")
