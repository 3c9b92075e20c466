"""kill -9 at random points of ticks and sends, then restart: nothing lost, nothing doubled.

Three models on a SQLite store breach, are reminded every few seconds (thread replies and
PagerDuty re-triggers) and recover while `vigil run` is killed 20 times (seeded). Half of the
kills land right after Slack or PagerDuty answered a post, which is the window between a
delivery and its commit; the others at a random moment after the daemon came up (mostly
mid-tick: a tick runs every second). After the last restart the store must settle with every
message sent exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from tests.faults.harness import Daemon, World

SEED = 20261201
KILLS = 20


def test_twenty_kills_lose_and_double_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    hook_rng = random.Random(SEED + 1)
    with World(tmp_path, f"sqlite:///{tmp_path / 'store.db'}") as world:
        for name in world.models:
            world.feed(name, correct=False)
        kinds = {"after a send": 0, "at a random moment": 0}
        current: list[Daemon] = []
        armed = threading.Event()
        lock = threading.Lock()

        def kill_after_answer(method: str) -> None:
            """Called by the fakes once an answer is on the wire: kill before the commit."""
            if method not in ("chat.postMessage", "trigger", "acknowledge", "resolve"):
                return
            with lock:
                if not armed.is_set() or not current or hook_rng.random() > 0.5:
                    return
                armed.clear()
                current[-1].kill()

        world.slack.after_answer = world.pd.after_answer = kill_after_answer
        for kill in range(KILLS):
            if kill == KILLS // 2:
                world.feed(world.models[0], correct=True)  # one recovers mid-run
            daemon = world.start()
            with lock:
                current.append(daemon)
            daemon.wait_healthy()
            by_send = kill % 2 == 0
            if by_send:
                armed.set()
            deadline = time.monotonic() + (20.0 if by_send else rng.uniform(0.2, 3.0))
            while daemon.alive and time.monotonic() < deadline:
                time.sleep(0.02)
            with lock:
                armed.clear()
                killed_by_hook = not daemon.alive
                daemon.kill()
            kinds["after a send" if killed_by_hook else "at a random moment"] += 1

        for name in world.models[1:]:
            world.feed(name, correct=True)
        last = world.start()
        last.wait_healthy()
        world.settle()
        assert last.stop() == 0
        audit = world.audit()
        world.record(
            "kill -9",
            f"{KILLS} kills (seed {SEED}: {kinds['after a send']} right after a send, "
            f"{kinds['at a random moment']} at a random moment)",
            audit,
        )
        assert audit.lost == []
        assert audit.doubled == []
        assert kinds["after a send"] >= KILLS // 4
        assert len(world.slack.heads()) == len(world.models)
        assert all(i.status == "resolved" for i in world.pd.incidents)
