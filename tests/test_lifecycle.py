"""Starting, stopping and restarting `vigil run` as an operator would, with real processes.

SIGINT and SIGTERM end the daemon with exit 0; a tick stuck on its source is abandoned after
`shutdown_timeout` instead of holding the process forever; a restart mid-incident reads on
from the stored watermarks and finds the open incident (no second incident, no second
message); a store written by a newer Vigil is refused with exit 3.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.store.db import make_engine, upgrade
from monitor.store.tables import Incident, OutboxMessage, SLOState
from tests.builders import add_labels, add_predictions, create_source, hourly, write_config
from tests.test_daemon import SLO, VIGIL, env, free_port, make_config, wait_for, write_source
from tests.test_ha import WAIT, Daemons


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    data = make_config(tmp_path, schedule="1s")
    data["server"] = {"host": "127.0.0.1", "outbox_interval": "1s", "shutdown_timeout": "5s"}
    data["routing"]["group_wait"] = "0s"
    group = Daemons(tmp_path, data)
    yield group
    group.stop_all()


def test_restart_mid_incident_resumes_without_duplicates(daemons: Daemons, tmp_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(minutes=50)
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    write_source(source_url, start, correct=False)
    store = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    outfile = tmp_path / "slack.jsonl"

    def state() -> tuple[int, int, int, int | None]:
        """(incidents, outbox rows, Slack lines, the SLI's n)."""
        lines = len(outfile.read_text().splitlines()) if outfile.exists() else 0
        try:
            with store.connect() as conn:
                count = sa.select(sa.func.count())
                return (
                    conn.execute(count.select_from(Incident)).scalar_one(),
                    conn.execute(count.select_from(OutboxMessage)).scalar_one(),
                    lines,
                    conn.execute(sa.select(SLOState.n).where(SLOState.slo_id == SLO)).scalar(),
                )
        except sa.exc.OperationalError:  # no schema yet
            return 0, 0, lines, None

    first = daemons.start()
    wait_for("the breach notified", lambda: state() == (1, 1, 1, 40) or None, WAIT)
    proc = daemons.procs[first][0]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert '"event": "stopped"' in daemons.procs[first][2].read_text()

    # Rows arrive while Vigil is down; the restart reads exactly those from its watermark.
    engine = sa.create_engine(source_url)
    times = hourly(start + timedelta(minutes=40), 20, step=timedelta(seconds=10))
    new_ids = add_predictions(engine, 41, times, score=0.9)
    add_labels(engine, [(i, start + timedelta(minutes=45), 0) for i in new_ids])
    engine.dispose()

    second = daemons.start()
    wait_for("the new rows counted", lambda: state()[3] == 60 or None, WAIT)
    wait_for(
        "three ticks after the restart",
        lambda: daemons.value(second, "vigil_tick_duration_seconds_count", model="m") >= 3 or None,
        WAIT,
    )
    assert state() == (1, 1, 1, 60)  # the same incident, its one message, nothing doubled
    with store.connect() as conn:
        assert conn.execute(sa.select(Incident.status)).scalar_one() == "firing"
    store.dispose()
    proc = daemons.procs[second][0]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def test_sigterm_abandons_a_tick_stuck_on_its_source(tmp_path: Path, pg_url: str) -> None:
    """A source that blocks (here: a table locked by another session) cannot hold the
    daemon: after `shutdown_timeout` the tick is abandoned and the process exits 0."""
    source = create_source(pg_url)
    blocker = source.connect()
    blocker.begin()
    blocker.execute(sa.text("LOCK TABLE reference_rows IN ACCESS EXCLUSIVE MODE"))
    data = make_config(tmp_path, schedule="1s")
    data["sources"]["src"]["url"] = pg_url
    data["server"] = {"host": "127.0.0.1", "port": free_port(), "shutdown_timeout": "2s"}
    config = write_config(tmp_path / "vigil.yaml", data)
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [VIGIL, "run", "--config", str(config), "--log-format", "json"],
            cwd=tmp_path,
            env=env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def waiting() -> bool | None:
            if proc.poll() is not None:
                pytest.fail(f"vigil run exited early:\n{log.read_text()}")
            with source.connect() as conn:
                found = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND query LIKE '%reference_rows%'"
                    )
                ).scalar()
            return True if found else None

        wait_for("the tick to block on the locked table", waiting, WAIT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        blocker.rollback()
        blocker.close()
        source.dispose()
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [abandoned] = [e for e in events if e["event"] == "abandoning running jobs"]
    assert abandoned["jobs"] == ["tick:m"]
    assert [e["clean"] for e in events if e["event"] == "stopped"] == [False]


def test_store_from_a_newer_vigil_is_refused(tmp_path: Path) -> None:
    """Migrations run at start and never downgrade: an unknown revision is a clear exit 3."""
    write_source(f"sqlite:///{tmp_path / 'source.db'}", datetime.now(UTC), correct=True)
    store = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(store)
    with store.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))
    store.dispose()
    data = make_config(tmp_path, schedule="1s")
    data["server"] = {"host": "127.0.0.1", "port": free_port()}
    config = write_config(tmp_path / "vigil.yaml", data)
    result = subprocess.run(
        [VIGIL, "run", "--config", str(config)],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "f00dfeedbeef" in result.stderr and "newer version" in result.stderr
    assert "Traceback" not in result.stderr
