"""Self-monitoring: a source that fails makes the model "blind", never the daemon dead.

The daemon's own `run_tick` is driven with a simulated clock on SQLite and PostgreSQL: the
source's table disappears (as when a schema change or a revoked grant breaks the query), the
ticks fail, are retried with backoff, and after `blind_after` a `monitoring_blind` incident
opens through the normal routing and mutes the model's quality incident; when the table is
back, the next tick resolves it and the quality incident speaks again.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from structlog.testing import capture_logs

from monitor.core.clock import SimulatedClock
from monitor.engine.runtime import open_runtime
from monitor.service.blind import KIND, blind_key, retry_delay
from monitor.service.daemon import Daemon
from monitor.store.tables import Incident, ModelHealth, OutboxMessage
from tests.builders import (
    T0,
    add_labels,
    add_predictions,
    build_config,
    config_dict,
    create_source,
    hourly,
)

FIVE = timedelta(minutes=5)


class Blindable:
    """A daemon (not started: its jobs are called directly) over a breaching model whose
    source table can be taken away and given back."""

    def __init__(self, store: str, source: str, state_dir: Path):
        self.source = create_source(source)
        ids = add_predictions(self.source, 1, hourly(T0, 40), score=0.9)
        add_labels(self.source, [(i, T0 + timedelta(minutes=40), 0) for i in ids])
        data = config_dict(store, source, schedule="5m", blind_after="15m")
        data["routing"]["group_wait"] = "0s"
        self.config = build_config(data)
        self.rt = open_runtime(self.config, state_dir)
        self.clock = SimulatedClock(T0 + timedelta(hours=2))
        self.daemon = Daemon(self.rt, self.clock)

    def break_source(self) -> None:
        with self.source.begin() as conn:
            conn.execute(sa.text("ALTER TABLE predictions RENAME TO predictions_gone"))

    def repair_source(self) -> None:
        with self.source.begin() as conn:
            conn.execute(sa.text("ALTER TABLE predictions_gone RENAME TO predictions"))

    def tick_in(self, delta: timedelta) -> list[MutableMapping[str, Any]]:
        """Advance the clock and run the model's job; returns its log events."""
        self.clock.advance(delta)
        with capture_logs() as logs:
            self.daemon.run_tick("m")  # never raises, whatever the source does
        return logs

    def incidents(self) -> list[Incident]:
        with self.rt.sessions() as session:
            return list(session.scalars(select(Incident).order_by(Incident.id)))

    def outbox_kinds(self) -> list[tuple[str, list[str]]]:
        with self.rt.sessions() as session:
            rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            return [(m.event, [a["kind"] for a in m.payload["alerts"]]) for m in rows]

    def close(self) -> None:
        self.daemon.close()
        self.rt.close()
        self.source.dispose()


@pytest.fixture
def blindable(two_db_urls: tuple[str, str], tmp_path: Path) -> Iterator[Blindable]:
    world = Blindable(*two_db_urls, tmp_path)
    yield world
    world.close()


def test_failing_source_raises_and_resolves_a_monitoring_blind_incident(
    blindable: Blindable,
) -> None:
    [ok] = [e for e in blindable.tick_in(timedelta(0)) if e["event"] == "tick"]
    assert ok["opened"] == 1
    [quality] = blindable.incidents()
    assert quality.kind == "quality_drop" and quality.suppressed_by is None

    blindable.break_source()
    for minutes in (0, 5, 10):  # failing for less than blind_after: recorded, not raised
        [failed] = [e for e in blindable.tick_in(FIVE) if e["event"] == "tick failed"]
        assert failed["consecutive_failures"] == minutes // 5 + 1
        assert failed["failing_for_s"] == minutes * 60
        assert "predictions" in failed["error"] and "blind" not in failed
    assert len(blindable.incidents()) == 1
    with blindable.rt.sessions() as session:
        health = session.get(ModelHealth, "m")
        assert health is not None and health.consecutive_failures == 3
        assert health.last_success_at == T0 + timedelta(hours=2)

    [failed] = [e for e in blindable.tick_in(FIVE) if e["event"] == "tick failed"]
    assert failed["failing_for_s"] == 15 * 60 and failed["blind"] == "open"
    quality, blind = blindable.incidents()
    assert (blind.kind, blind.severity, blind.model, blind.status) == (KIND, "page", "m", "firing")
    assert blind.dedup_key == blind_key("m") and blind.suppressed_by is None
    assert blind.alert["runbook_url"].endswith("monitoring-blind.md")
    # The default inhibit rule: a blind model's quality numbers are stale, so they stay quiet.
    assert quality.suppressed_by == f"inhibited:{blind.id}"
    assert ("open", [KIND]) in blindable.outbox_kinds()

    blindable.tick_in(FIVE)  # still failing: still one blind incident
    assert len(blindable.incidents()) == 2

    blindable.repair_source()
    [ok] = [e for e in blindable.tick_in(FIVE) if e["event"] == "tick"]
    assert ok["blind"] == "resolve"
    quality, blind = blindable.incidents()
    assert blind.status == "resolved" and blind.resolved_at == blindable.clock.now()
    assert quality.status == "firing" and quality.suppressed_by is None
    assert ("resolve", [KIND]) in blindable.outbox_kinds()
    # The daemon counted each failure for Prometheus.
    failures = blindable.daemon.registry.get_sample_value(
        "vigil_tick_failures_total", {"model": "m"}
    )
    assert failures == 5


def test_retry_backs_off_up_to_the_schedule() -> None:
    schedule = timedelta(minutes=5)
    delays = [retry_delay(k, schedule).total_seconds() for k in range(1, 9)]
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]
    assert retry_delay(3, timedelta(seconds=1)) == timedelta(seconds=1)


def test_a_failed_tick_is_retried_before_its_next_interval(blindable: Blindable) -> None:
    """The scheduler job of a model whose tick failed runs again after the backoff delay,
    not a whole interval later."""
    scheduler = blindable.daemon.scheduler
    scheduler.start(paused=True)
    try:
        far = datetime.now(UTC) + timedelta(hours=1)
        scheduler.add_job(
            blindable.daemon.run_tick,
            IntervalTrigger(hours=1, timezone=UTC),
            args=["m"],
            id="tick:m",
            next_run_time=far,
        )
        blindable.break_source()
        before = datetime.now(UTC)
        blindable.tick_in(FIVE)
        after = datetime.now(UTC)
        job = scheduler.get_job("tick:m")
        assert job is not None  # first failure: retried after 5 s instead of an hour
        assert before + timedelta(seconds=5) <= job.next_run_time <= after + timedelta(seconds=5)
    finally:
        scheduler.shutdown(wait=False)
