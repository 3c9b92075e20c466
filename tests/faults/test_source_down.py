"""A source that stops answering, then comes back, under a running daemon.

One model reads a PostgreSQL source on the private server (tests/faults/private_pg.py); the
test stops that server for longer than the model's `blind_after`, so every read is refused as
an unreachable database's would be, then starts it again. The daemon stays up, raises one
`monitoring_blind` incident for that model and resolves it when the source answers; the other
model carries on; rows written meanwhile are counted once; every message is delivered once.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from monitor.store.tables import Incident
from tests.faults.harness import World
from tests.faults.private_pg import PrivatePostgres


def test_a_source_down_raises_blind_once_and_loses_nothing(
    tmp_path: Path, private_pg: PrivatePostgres
) -> None:
    source = private_pg.database_url("source_down")
    with World(
        tmp_path, f"sqlite:///{tmp_path / 'store.db'}", models=2, sources={"m0": source}
    ) as world:
        world.model_overrides = {"blind_after": "3s"}
        daemon = world.start()
        daemon.wait_healthy()
        for name in world.models:
            world.feed(name, correct=False)
        world.wait("both breaches", lambda s: s["incidents"].get("firing", 0) == 2, 120)

        private_pg.stop()
        try:
            world.wait("the blind incident", lambda s: s["incidents"].get("firing", 0) == 3, 120)
        finally:
            private_pg.start()
        for name in world.models:
            world.feed(name, correct=True)
        world.settle()
        assert daemon.alive and daemon.stop() == 0
        audit = world.audit()
        engine = world.store()
        with engine.connect() as conn:
            kinds = sorted(conn.execute(sa.select(Incident.kind, Incident.model)).all())
        engine.dispose()
        blind = [k for k in kinds if k[0] == "monitoring_blind"]
        world.record(
            "source down",
            f"PostgreSQL source of m0 stopped until blind, then started; "
            f"{daemon.logged('tick failed')} failed ticks, {len(blind)} blind incident",
            audit,
        )
        assert audit.lost == [] and audit.doubled == []
        assert blind == [("monitoring_blind", "m0")]
        assert len(kinds) == 3
        assert daemon.logged("tick failed") >= 1
