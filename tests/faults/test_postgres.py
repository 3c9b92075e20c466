"""A PostgreSQL store that restarts under a running daemon, and two daemons killed in turn.

Both run on a private PostgreSQL server (tests/faults/private_pg.py), never on the shared one.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from tests.faults.harness import World
from tests.faults.private_pg import PrivatePostgres

SEED = 1212


def test_store_restarts_mid_tick_lose_and_double_nothing(
    tmp_path: Path, private_pg: PrivatePostgres
) -> None:
    """Three crash-restarts of the store (`pg_ctl restart -m immediate`) at random moments
    while a daemon ticks every second and sends reminders: the daemon stays up, and the
    store ends with every row counted once and every message delivered once."""
    rng = random.Random(SEED)
    with World(tmp_path, private_pg.database_url("restarts")) as world:
        daemon = world.start()
        daemon.wait_healthy()
        for name in world.models:
            world.feed(name, correct=False)
        restarts = 0
        for _ in range(3):
            time.sleep(rng.uniform(0.5, 2.5))  # 1-3 ticks of 1 s: mid-tick or mid-drain
            private_pg.restart()
            restarts += 1
        for name in world.models:
            world.feed(name, correct=True)
        world.settle()
        assert daemon.alive
        assert daemon.stop() == 0
        audit = world.audit()
        failed = daemon.logged("tick failed") + daemon.logged("outbox drain failed")
        world.record(
            "PostgreSQL restarts",
            f"{restarts} restarts (seed {SEED}), {failed} ticks or drains cut off",
            audit,
        )
        assert audit.lost == [] and audit.doubled == []
        assert len(world.slack.heads()) == len(world.models)


def test_two_daemons_killed_in_turn_lose_and_double_nothing(
    tmp_path: Path, private_pg: PrivatePostgres
) -> None:
    """Two daemons share the store through advisory-lock leases; one of them (picked by the
    seed) is killed with -9 and restarted six times while incidents open, remind and resolve.
    Whoever holds a model or the outbox at any moment, nothing is lost or doubled."""
    rng = random.Random(SEED)
    with World(tmp_path, private_pg.database_url("two_daemons")) as world:
        running = [world.start(), world.start()]
        for daemon in running:
            daemon.wait_healthy()
        for name in world.models:
            world.feed(name, correct=False)
        kills = 0
        for round_ in range(6):
            time.sleep(rng.uniform(0.3, 2.5))
            victim = rng.randrange(2)
            running[victim].kill()
            kills += 1
            if round_ == 3:
                world.feed(world.models[0], correct=True)
            running[victim] = world.start()
            running[victim].wait_healthy()
        for name in world.models[1:]:
            world.feed(name, correct=True)
        world.settle()
        assert [d.stop() for d in running] == [0, 0]
        audit = world.audit()
        world.record("two daemons", f"{kills} kills -9 of either (seed {SEED})", audit)
        assert audit.lost == [] and audit.doubled == []
        assert len(world.slack.heads()) == len(world.models)
