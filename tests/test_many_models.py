"""Many models, one daemon: a bounded pool, a slow model that cannot starve the others, and a
per-model tick timeout that cancels the source's statement and counts towards blindness.

The slow sources are real slow queries: on PostgreSQL a view over the predictions that calls
`pg_sleep`, on SQLite a view whose recursive CTE counts to a hundred million. The daemon's own
`run_tick` runs them; the cancellation is checked on the server (no `pg_sleep` left running)
and through the model's recorded health, `/readyz` detail, metrics and incidents.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy import select
from structlog.testing import capture_logs

from monitor.config.models import default_workers, tick_timeout, worker_count
from monitor.core import deadline
from monitor.core.clock import SimulatedClock
from monitor.engine.runtime import open_runtime
from monitor.service.blind import KIND
from monitor.service.daemon import Daemon
from monitor.service.scheduling import staggered_starts
from monitor.store.tables import Incident, ModelHealth
from tests.builders import T0, add_predictions, build_config, config_dict, create_source, hourly
from tests.test_config import problems_of

SLEEP_S = 600  # far longer than any test: only a cancel ends it


def slow_view_sql(backend: str) -> str:
    if backend == "postgresql":
        return (
            "CREATE VIEW predictions_slow AS SELECT p.* FROM predictions p "
            f"CROSS JOIN (SELECT pg_sleep({SLEEP_S})) AS s"
        )
    return (
        "CREATE VIEW predictions_slow AS SELECT p.* FROM predictions p WHERE (WITH RECURSIVE "
        "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000000) "
        "SELECT count(*) FROM c) > 0"
    )


class SlowWorld:
    """A daemon (not started) with a fast model `fast` and a model `slow` whose predictions
    table becomes a slow view, and whose `slow` settings apply, once both ticked once."""

    def __init__(self, store: str, source: str, state_dir: Path, **slow: Any):
        self.source = create_source(source)
        add_predictions(self.source, 1, hourly(T0, 40), score=0.9)
        data = config_dict(store, source, schedule="5m", blind_after="5m")
        data["models"]["fast"] = data["models"]["m"]
        data["models"]["slow"] = data["models"].pop("m")
        data["routing"]["group_wait"] = "0s"
        self.rt = open_runtime(build_config(data), state_dir)
        self.clock = SimulatedClock(T0 + timedelta(hours=2))
        self.daemon = Daemon(self.rt, self.clock)
        for name in ("fast", "slow"):  # fit both references while every table is fast
            assert [e for e in self.tick(name) if e["event"] == "tick"], name
        backend = self.source.url.get_backend_name()
        with self.source.begin() as conn:
            conn.execute(sa.text(slow_view_sql(backend)))
        spec = self.rt.config.models["slow"]
        slow_table = spec.predictions.model_copy(update={"table": "predictions_slow"})
        self.rt.config.models["slow"] = spec.model_copy(update={"predictions": slow_table, **slow})

    def tick(self, name: str, delta: timedelta = timedelta(0)) -> list[MutableMapping[str, Any]]:
        self.clock.advance(delta)
        with capture_logs() as logs:
            self.daemon.run_tick(name)
        return logs

    def health(self, name: str) -> ModelHealth:
        with self.rt.sessions() as session:
            found = session.get(ModelHealth, name)
            assert found is not None
            return found

    def sleeping_backends(self) -> int:
        with self.source.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                        "AND query LIKE '%predictions_slow%' AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )

    def close(self) -> None:
        self.daemon.close()
        self.rt.close()
        self.source.dispose()


@pytest.fixture
def slow_world(two_db_urls: tuple[str, str], tmp_path: Path) -> Iterator[SlowWorld]:
    world = SlowWorld(*two_db_urls, tmp_path, tick_timeout=timedelta(seconds=1))
    yield world
    world.close()


def test_a_tick_past_its_timeout_is_cancelled_recorded_and_goes_blind(
    slow_world: SlowWorld,
) -> None:
    """The slow model's statement is cancelled at its 1 s `tick_timeout` (a 600 s sleep on
    PostgreSQL: only a cancel returns), the tick fails as a timeout in its health, metrics and
    `/readyz`, and past `blind_after` it is a `monitoring_blind` incident; the fast model,
    ticked in between, goes on."""
    [timed_out] = [e for e in slow_world.tick("slow") if e["event"] == "tick timed out"]
    assert timed_out["error"].startswith("TickTimeout: tick exceeded its tick_timeout of 1s")
    health = slow_world.health("slow")
    assert health.consecutive_failures == 1 and health.last_error is not None
    assert health.last_error.startswith("TickTimeout")
    if slow_world.source.url.get_backend_name() == "postgresql":
        assert slow_world.sleeping_backends() == 0  # cancelled on the server, not abandoned

    [ok] = [e for e in slow_world.tick("fast") if e["event"] == "tick"]
    assert ok["model"] == "fast"

    [again] = [
        e for e in slow_world.tick("slow", timedelta(minutes=5)) if e["event"] == "tick timed out"
    ]
    assert again["blind"] == "open"
    with slow_world.rt.sessions() as session:
        [blind] = session.scalars(select(Incident).where(Incident.kind == KIND)).all()
    assert blind.model == "slow" and blind.status == "firing"
    registry = slow_world.daemon.registry
    assert registry.get_sample_value("vigil_tick_timeouts_total", {"model": "slow"}) == 2
    assert registry.get_sample_value("vigil_tick_failures_total", {"model": "slow"}) == 2
    assert registry.get_sample_value("vigil_tick_timeouts_total", {"model": "fast"}) == 0
    _, detail = slow_world.daemon.ready()
    assert detail["models"]["slow"]["timed_out"] is True
    assert detail["models"]["fast"]["timed_out"] is False
    assert slow_world.health("fast").consecutive_failures == 0


def test_a_deadline_that_passed_stops_the_next_statement_before_it_runs() -> None:
    """A statement started after the deadline expired is refused at once (no cancel race)."""
    limit = deadline.Deadline(60)
    limit.expire()
    with (
        deadline.bound(limit),
        pytest.raises(deadline.TickTimeout),
        deadline.cancellable(lambda: None),
    ):
        pass
    assert deadline.current() is None
    assert isinstance(deadline.explain(RuntimeError("x")), RuntimeError)  # no deadline bound


# -- configuration --------------------------------------------------------------------------


def test_workers_and_tick_timeout_defaults_and_overrides(tmp_path: Path) -> None:
    data = config_dict("sqlite:///s.db", "sqlite:///src.db", schedule="2m")
    config = build_config(data)
    assert worker_count(config.server) == default_workers() == min(32, 2 * _cores() + 4)
    assert tick_timeout(config, "m") == timedelta(minutes=2)  # default: the schedule
    data["models"]["m"]["schedule"] = "10s"
    assert tick_timeout(build_config(data), "m") == timedelta(minutes=1)  # at least 1m
    data["server"] = {"workers": 3, "tick_timeout": "30s"}
    config = build_config(data)
    assert worker_count(config.server) == 3 and tick_timeout(config, "m") == timedelta(seconds=30)
    data["models"]["m"]["tick_timeout"] = "10s"
    assert tick_timeout(build_config(data), "m") == timedelta(seconds=10)


def test_a_bad_worker_count_or_timeout_is_refused_with_its_line() -> None:
    data = config_dict("sqlite:///s.db", "sqlite:///src.db", tick_timeout="0s")
    data["server"] = {"workers": 0}
    text = yaml.safe_dump(data, sort_keys=False)
    lines = text.splitlines()
    workers_line = lines.index("  workers: 0") + 1
    timeout_line = lines.index("    tick_timeout: 0s") + 1
    problems = problems_of(text)
    assert any(p.startswith(f"c.yaml:{workers_line}: server.workers: ") for p in problems)
    assert any(p.startswith(f"c.yaml:{timeout_line}: models.m.tick_timeout: ") for p in problems)


def test_first_ticks_are_spread_over_the_stagger_window() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    schedules = {f"model_{i:03d}": timedelta(minutes=5) for i in range(200)}
    starts = staggered_starts(schedules, timedelta(minutes=1), now)
    offsets = sorted((at - now).total_seconds() for at in starts.values())
    assert offsets[0] == 0 and offsets[-1] < 60
    assert all(b - a == pytest.approx(0.3) for a, b in itertools.pairwise(offsets))
    # One model alone is never delayed; a 1 s schedule bounds its window to 1 s.
    assert staggered_starts({"m": timedelta(minutes=5)}, timedelta(minutes=1), now) == {"m": now}
    short = staggered_starts(
        {"a": timedelta(seconds=1), "b": timedelta(seconds=1)}, timedelta(minutes=1), now
    )
    assert max(short.values()) - now == timedelta(seconds=0.5)


def _cores() -> int:
    import os

    return os.cpu_count() or 1
