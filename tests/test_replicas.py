"""Replicas on one PostgreSQL store split the models between them and rebalance.

The split itself is checked on the rendezvous function (every model has one owner; a joining
or leaving replica moves only the models it takes or leaves). Then two, then three real
`vigil run` processes share one store: each ticks exactly the share that rendezvous hashing
gives it over the live replicas, a third replica joining takes its share, a SIGKILLed one's
models are ticked by the survivors, no model is ever ticked by two replicas at once (the tick
intervals in their logs never overlap) and every row is counted once.
"""

from __future__ import annotations

import itertools
import json
import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.service.leases import AdvisoryLocks
from monitor.service.share import owner, share_of
from monitor.store.db import make_engine
from monitor.store.tables import SLOState
from tests.test_daemon import SLO, make_config, write_source
from tests.test_ha import Daemons, eventually

MODELS = [f"model-{i}" for i in range(6)]


def test_each_model_has_one_owner_and_only_the_moved_models_move() -> None:
    models = [f"m{i:03d}" for i in range(300)]
    two, three = ["host:1", "host:2"], ["host:1", "host:2", "host:3"]
    shares = {r: share_of(r, models, three) for r in three}
    assert sorted(m for s in shares.values() for m in s) == sorted(models)  # one owner each
    assert all(60 <= len(s) <= 140 for s in shares.values())  # about a third each
    before = {m: owner(m, two) for m in models}
    after = {m: owner(m, three) for m in models}
    moved = {m for m in models if before[m] != after[m]}
    assert moved == shares["host:3"]  # a join moves only what the newcomer takes
    survivors = {m: owner(m, ["host:1", "host:3"]) for m in models}
    assert {m for m in models if survivors[m] != after[m]} == shares["host:2"]


def test_replicas_are_the_open_lock_connections_and_leases_can_be_given_back(
    pg_url: str,
) -> None:
    url = make_engine(pg_url).url
    first, second = AdvisoryLocks(url, "a:1", replica=True), AdvisoryLocks(url, "b:2", True)
    cli = AdvisoryLocks(url, "c:3")  # `vigil check`: takes leases, is no replica
    try:
        assert cli.acquire("model:x") is True and cli.replicas() is None
        assert first.replicas() == ["a:1"]  # alone until the other connects
        assert first.acquire("model:m") is True and second.acquire("model:m") is False
        assert second.replicas() == first.replicas() == ["a:1", "b:2"]
        first.release("model:m")
        assert first.held() == frozenset() and second.acquire("model:m") is True
        second.close()
        assert first.replicas() == ["a:1"]
    finally:
        for locks in (first, second, cli):
            locks.close()


def json_events(text: str) -> Iterator[dict[str, Any]]:
    """The JSON log events in a daemon's output, also when a line holds two (threads write
    without a shared lock) or a killed process cut its last one short."""
    decoder = json.JSONDecoder()
    for line in text.splitlines():
        at = line.find("{")
        while at != -1:
            try:
                event, end = decoder.raw_decode(line, at)
            except json.JSONDecodeError:
                break
            if isinstance(event, dict):
                yield event
            at = line.find("{", end)


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[Daemons]:
    data = make_config(tmp_path, schedule="2s")
    data["store"] = pg_url
    base = data["models"].pop("m")
    data["models"] = {name: base for name in MODELS}  # same tables, one watermark each
    data["server"] = {
        "host": "127.0.0.1",
        "outbox_interval": "1s",
        "shutdown_timeout": "5s",
        "rebalance_interval": "1s",
    }
    data["routing"]["group_wait"] = "0s"
    group = Daemons(tmp_path, data)
    yield group
    group.stop_all()


def test_replicas_tick_their_share_rebalance_on_join_and_kill_and_never_both(
    replicas: Daemons, tmp_path: Path, pg_url: str
) -> None:
    write_source(
        f"sqlite:///{tmp_path / 'source.db'}",
        datetime.now(UTC) - timedelta(minutes=50),
        correct=True,
    )
    host = socket.gethostname()

    def ident(index: int) -> str:
        return f"{host}:{replicas.procs[index][0].pid}"

    def ticks(index: int, model: str) -> float:
        return replicas.value(index, "vigil_tick_duration_seconds_count", model=model)

    def settled(live: list[int]) -> bool:
        """Every live replica sees the others and holds exactly its rendezvous share."""
        ids = sorted(ident(i) for i in live)
        for i in live:
            scrape = replicas.scrape(i)
            if scrape is None:
                return False
            seen = {
                k: v for k, v in scrape.items() if k in ("vigil_replicas", "vigil_share_models")
            }
            held = {
                labels["lease"][len("model:") :]
                for labels, value in scrape.get("vigil_lease_held", [])
                if value == 1 and labels["lease"].startswith("model:")
            }
            share = share_of(ident(i), MODELS, ids)
            if seen.get("vigil_replicas") != [({}, len(ids))] or held != share:
                return False
            if seen.get("vigil_share_models") != [({}, len(share))]:
                return False
        return True

    replicas.start()
    replicas.start()
    eventually("two replicas split the models", lambda: settled([0, 1]))
    counts = {m: sum(ticks(i, m) for i in (0, 1)) for m in MODELS}
    eventually(
        "every model ticked",
        lambda: all(sum(ticks(i, m) for i in (0, 1)) > counts[m] for m in MODELS),
    )

    replicas.start()  # a third joins
    eventually("three replicas split the models", lambda: settled([0, 1, 2]))
    joined = share_of(ident(2), MODELS, sorted(ident(i) for i in range(3)))
    eventually("the newcomer ticks its share", lambda: all(ticks(2, m) > 0 for m in joined))

    victim = replicas.procs[0][0]
    orphans = share_of(ident(0), MODELS, sorted(ident(i) for i in range(3)))
    before = {m: ticks(1, m) + ticks(2, m) for m in orphans}
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    eventually("the survivors split the models", lambda: settled([1, 2]))
    eventually(
        "the killed replica's models tick again",
        lambda: all(ticks(1, m) + ticks(2, m) > before[m] for m in orphans),
    )
    replicas.stop_all()

    # No model was ticked by two replicas at once: per model, the tick intervals logged by
    # all replicas, sorted by start, never overlap.
    intervals: dict[str, list[tuple[datetime, datetime, int]]] = {m: [] for m in MODELS}
    for index, (_, _, log) in enumerate(replicas.procs):
        for event in json_events(log.read_text()):
            if event.get("event") == "tick":
                end = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
                start = end - timedelta(seconds=event["duration_s"])
                intervals[event["model"]].append((start, end, index))
    for model, spans in intervals.items():
        spans.sort()
        for (_, end, a), (start, _, b) in itertools.pairwise(spans):
            assert start >= end, f"{model} ticked by replicas {a} and {b} at once"
    store = sa.create_engine(pg_url)
    with store.connect() as conn:  # and every row was counted once
        n = dict(
            conn.execute(sa.select(SLOState.model, SLOState.n).where(SLOState.slo_id == SLO)).all()
        )
    store.dispose()
    assert n == {m: 40 for m in MODELS}
