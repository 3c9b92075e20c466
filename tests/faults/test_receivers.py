"""Receivers answering 500, 429 and hanging, against a real `vigil run`.

Slack answers its first calls with 500s and then 429s (with Retry-After) while PagerDuty hangs
(every answer held until the test lets go; the notifier gives up after its 10 s timeout and
retries later). The Slack heads must arrive while PagerDuty still hangs (issue 12, defect 6:
one hanging receiver delays no other), in the order the incidents opened, and once every
receiver answers again everything must have been delivered exactly once.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from monitor.store.tables import Incident
from tests.faults.harness import World


def opened_order(world: World) -> list[str]:
    """The models in the order their incidents opened, as the store recorded it (on a loaded
    machine a later feed's tick may open its incident first)."""
    engine = world.store()
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(Incident.model).order_by(Incident.id)).scalars()
            return list(dict.fromkeys(rows))
    finally:
        engine.dispose()


def model_of(text: str) -> str:
    found = re.search(r"\bm\d+\b", text)
    assert found is not None, text
    return found.group(0)


def test_failing_and_hanging_receivers_delay_only_themselves(tmp_path: Path) -> None:
    with World(tmp_path, f"sqlite:///{tmp_path / 'store.db'}") as world:
        gate = threading.Event()
        world.pd.gate = gate
        world.slack.fail_next(3, status=500)
        world.slack.rate_limit_next(2, retry_after=1)
        daemon = world.start()
        daemon.wait_healthy()
        for name in world.models:
            world.feed(name, correct=False)
            time.sleep(0.5)  # incidents open one after another (their order: the store's)

        deadline = time.monotonic() + 120
        while len(world.slack.heads()) < len(world.models):
            assert time.monotonic() < deadline, "Slack heads never arrived while PD hung"
            time.sleep(0.1)
        assert world.pd.accepted() == []  # PagerDuty is still hanging: nothing answered yet
        heads_during_hang = len(world.slack.heads())
        order = [model_of(h["text"]) for h in world.slack.heads()]

        gate.set()
        world.pd.gate = None
        for name in world.models:
            world.feed(name, correct=True)
        world.settle()
        assert daemon.stop() == 0
        audit = world.audit()
        statuses = [r.status for r in world.slack.requests]
        world.record(
            "receivers 500/429/hang",
            f"Slack {statuses.count(500)}x500 {statuses.count(429)}x429, PagerDuty hung; "
            f"{heads_during_hang} Slack heads delivered during the hang",
            audit,
        )
        assert audit.lost == [] and audit.doubled == []
        assert statuses.count(500) == 3 and statuses.count(429) == 2
        assert order == opened_order(world)  # in the order the incidents opened
        assert sorted(order) == world.models
        # Requests that timed out were still processed once the gate opened (as a slow server
        # does), so the oldest trigger may have arrived more than once: PagerDuty folds it.
        triggers = [
            e["payload"]["source"] for e in world.pd.accepted() if e["event_action"] == "trigger"
        ]
        assert list(dict.fromkeys(triggers)) == opened_order(world)
