"""Several `vigil run` processes on one store: exactly one ticks each model, one drains the
outbox, and a survivor takes over when a process is killed.

The integration test runs two real daemons against the real PostgreSQL (started together,
so their schema migrations also race), SIGKILLs the one ticking model `m`, and reads the
result from the store and the Slack outfile: ticks go on, rows written after the kill are
counted exactly once, one incident per SLO, one message per incident. With SQLite, a second
daemon refuses to start.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.service.leases import AdvisoryLocks, LeaseError, SoleOwner, lock_key
from monitor.store.db import make_engine
from monitor.store.tables import Incident, ModelHealth, OutboxMessage, SLOState
from tests.builders import add_labels, add_predictions, hourly, write_config
from tests.test_daemon import (
    SLO,
    VIGIL,
    env,
    free_port,
    get,
    make_config,
    samples,
    wait_for,
    write_source,
)

WAIT = 90.0  # two daemons importing pandas on a shared two-core machine start slowly
Scrape = dict[str, list[tuple[dict[str, str], float]]]


def eventually(what: str, check: Callable[[], bool]) -> None:
    wait_for(what, lambda: True if check() else None, WAIT)


# -- the lease primitives --------------------------------------------------------------------


def test_advisory_locks_are_exclusive_sticky_and_die_with_their_connection(pg_url: str) -> None:
    """One holder per name; the holder keeps it; when its connection ends (a killed process,
    a terminated backend) the lock is free and the old holder knows it holds nothing."""
    url = make_engine(pg_url).url
    first, second = AdvisoryLocks(url, "first"), AdvisoryLocks(url, "second")
    try:
        assert first.acquire("model:m") is True
        assert second.acquire("model:m") is False
        assert first.acquire("model:m") is True  # sticky, and not counted twice
        assert second.acquire("model:n") is True
        assert first.held() == {"model:m"} and second.held() == {"model:n"}

        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": "vigil-leases first"},
            ).scalars()
            assert list(killed) == [True]
            held = conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k"),
                {"k": lock_key("model:m") & 0xFFFFFFFF},
            ).scalar()
        admin.dispose()
        assert held == 0
        assert second.acquire("model:m") is True  # the survivor takes over
        with pytest.raises(sa.exc.SQLAlchemyError):
            first.acquire("model:m")  # the dead connection is noticed ...
        assert first.held() == frozenset()  # ... and nothing is believed held
        assert first.acquire("model:m") is False  # reconnected: now someone else's
    finally:
        first.close()
        second.close()


def test_sqlite_lock_file_admits_one_owner(tmp_path: Path) -> None:
    lock = tmp_path / "store.db.lock"
    owner = SoleOwner(lock)
    with pytest.raises(LeaseError, match="already uses this SQLite store"):
        SoleOwner(lock)
    owner.close()
    SoleOwner(lock).close()  # free again once released


def test_second_daemon_on_a_sqlite_store_exits_3(tmp_path: Path) -> None:
    """While one daemon holds a SQLite store, `vigil run` says so and exits 3."""
    write_source(f"sqlite:///{tmp_path / 'source.db'}", datetime.now(UTC), correct=True)
    data = make_config(tmp_path, schedule="1s")
    data["server"] = {"host": "127.0.0.1", "port": free_port()}
    config = write_config(tmp_path / "vigil.yaml", data)
    holder = SoleOwner(tmp_path / "store.db.lock")  # stands in for the first daemon
    try:
        result = subprocess.run(
            [VIGIL, "run", "--config", str(config)],
            cwd=tmp_path,
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.close()
    assert result.returncode == 3, result.stdout + result.stderr
    assert "already uses this SQLite store" in result.stderr
    assert "store.db.lock" in result.stderr
    assert "Traceback" not in result.stderr


# -- two daemons, one killed -------------------------------------------------------------------


class Daemons:
    """Real `vigil run` subprocesses sharing one config; killed at the end whatever happens."""

    def __init__(self, tmp_path: Path, data: dict[str, Any]):
        self.tmp_path, self.data = tmp_path, data
        self.procs: list[tuple[subprocess.Popen[bytes], int, Path]] = []

    def start(self) -> int:
        index = len(self.procs)
        port = free_port()
        data = {**self.data, "server": {**self.data["server"], "port": port}}
        config = write_config(self.tmp_path / f"vigil-{index}.yaml", data)
        log = self.tmp_path / f"daemon-{index}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [VIGIL, "run", "--config", str(config), "--log-format", "json"],
                cwd=self.tmp_path,
                env=env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append((proc, port, log))
        return index

    def scrape(self, index: int) -> Scrape | None:
        proc, port, log = self.procs[index]
        if proc.poll() is not None:
            pytest.fail(f"daemon {index} exited with {proc.returncode}:\n{log.read_text()}")
        answer = get(f"http://127.0.0.1:{port}/metrics")
        return samples(answer[2]) if answer is not None and answer[0] == 200 else None

    def value(self, index: int, name: str, **labels: str) -> float:
        scrape = wait_for(f"daemon {index} /metrics", lambda: self.scrape(index), WAIT)
        found = [v for lab, v in scrape.get(name, []) if labels.items() <= lab.items()]
        return sum(found)

    def stop_all(self) -> None:
        for proc, _, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def daemons(tmp_path: Path, pg_url: str) -> Iterator[Daemons]:
    data = make_config(tmp_path, schedule="1s")
    data["store"] = pg_url
    data["models"]["n"] = data["models"]["m"]  # a second model on the same tables
    data["server"] = {"host": "127.0.0.1", "outbox_interval": "1s", "shutdown_timeout": "5s"}
    data["routing"]["group_wait"] = "0s"
    group = Daemons(tmp_path, data)
    yield group
    group.stop_all()


def test_killed_daemon_is_replaced_without_lost_ticks_or_duplicates(
    daemons: Daemons, tmp_path: Path, pg_url: str
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    start = datetime.now(UTC) - timedelta(minutes=50)
    write_source(source_url, start, correct=False)  # ids 1..40, all wrong: both models breach
    store = sa.create_engine(pg_url)
    outfile = tmp_path / "slack.jsonl"

    def slack_lines() -> int:
        return len(outfile.read_text().splitlines()) if outfile.exists() else 0

    def n_of(model: str) -> int | None:
        try:
            with store.connect() as conn:
                return conn.execute(
                    sa.select(SLOState.n).where(SLOState.model == model, SLOState.slo_id == SLO)
                ).scalar()
        except sa.exc.ProgrammingError:  # the first daemon has not created the schema yet
            return None

    daemons.start()
    daemons.start()  # at once: their migrations of the empty store must not collide

    # Both come up; each model is ticked by exactly one of them, the other only tries.
    def counted(model: str, n: int) -> Callable[[], bool]:
        return lambda: n_of(model) == n

    for model in ("m", "n"):
        eventually(f"{model} judged", counted(model, 40))
    eventually("one message per breached model", lambda: slack_lines() == 2)
    owners = {}
    for model in ("m", "n"):
        ticked = [
            daemons.value(i, "vigil_tick_duration_seconds_count", model=model) for i in (0, 1)
        ]
        held = [daemons.value(i, "vigil_lease_held", lease=f"model:{model}") for i in (0, 1)]
        assert sorted(held) == [0.0, 1.0], held
        owners[model] = held.index(1.0)
        assert ticked[1 - owners[model]] == 0, "the standby ticked a model it does not own"
    victim = owners["m"]
    survivor = 1 - victim

    # Kill the process ticking `m` with no chance to clean up, then let new rows arrive.
    victim_proc = daemons.procs[victim][0]
    victim_proc.send_signal(signal.SIGKILL)
    victim_proc.wait(timeout=10)
    killed_at = datetime.now(UTC)
    engine = sa.create_engine(source_url)
    # Newer than everything read so far (the watermark), older than now: readable at once.
    times = hourly(start + timedelta(minutes=40), 20, step=timedelta(seconds=10))
    new_ids = add_predictions(engine, 41, times, score=0.9)
    add_labels(engine, [(i, start + timedelta(minutes=45), 0) for i in new_ids])
    engine.dispose()

    # The survivor takes both models and the outbox over, and reads every new row once.
    def holds(lease: str) -> Callable[[], bool]:
        return lambda: daemons.value(survivor, "vigil_lease_held", lease=lease) == 1

    for lease in ("model:m", "model:n", "outbox"):
        eventually(f"survivor holds {lease}", holds(lease))
    for model in ("m", "n"):
        eventually(f"{model} counts the new rows", counted(model, 60))
    ticks_after = daemons.value(survivor, "vigil_tick_duration_seconds_count", model="m")
    eventually(
        "further ticks",
        lambda: (
            daemons.value(survivor, "vigil_tick_duration_seconds_count", model="m")
            >= ticks_after + 3
        ),
    )

    with store.connect() as conn:
        last_ticks = {
            m: t for m, t in conn.execute(sa.select(ModelHealth.model, ModelHealth.last_tick_at))
        }
        incidents = conn.execute(
            sa.select(Incident.model, Incident.slo_id, Incident.status).order_by(Incident.model)
        ).all()
        outbox = conn.execute(sa.select(OutboxMessage.key, OutboxMessage.status)).all()
    store.dispose()
    for model in ("m", "n"):  # ticks went on after the kill
        assert (last_ticks[model] or killed_at) > killed_at
    assert [(m, s) for m, s, _ in incidents] == [("m", SLO), ("n", SLO)]  # no duplicate
    assert {status for _, _, status in incidents} == {"firing"}
    assert len(outbox) == 2 and {s for _, s in outbox} == {"sent"}
    assert slack_lines() == 2  # and no duplicate notification

    proc = daemons.procs[survivor][0]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
