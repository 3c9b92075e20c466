"""Fairness on the daemon's real scheduler: a model whose tick hangs holds one worker thread,
gives up the turns it misses (counted in `vigil_tick_overruns_total`), and never keeps the
other models from ticking, even when the pool has only two threads.

The daemon is built from a real config (SQLite store and source); only its `run_tick` is
replaced, by one that blocks for the slow model until the test releases it, so what is under
test is the scheduler the daemon builds (pool size from `server.workers`, `max_instances=1`,
coalescing) and the listener it wires to the overrun counter. Nothing here asserts a time:
the test waits (with a generous bound) for counts to be reached.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.core.clock import SystemClock
from monitor.engine.runtime import open_runtime
from monitor.service import scheduling
from monitor.service.daemon import Daemon
from tests.builders import build_config, config_dict, create_source

FAST = ("fast_a", "fast_b", "fast_c")
INTERVAL = timedelta(milliseconds=200)
BOUND_S = 60.0  # only reached if the behaviour is broken


def _daemon(tmp_path: Path, workers: int) -> Daemon:
    source = f"sqlite:///{tmp_path}/source.db"
    create_source(source).dispose()
    data = config_dict(f"sqlite:///{tmp_path}/store.db", source)
    model = data["models"].pop("m")
    for name in ("slow", *FAST):
        data["models"][name] = dict(model)
    data["server"] = {"workers": workers}
    rt = open_runtime(build_config(data), tmp_path)
    return Daemon(rt, SystemClock())


def _start(daemon: Daemon, run_tick: Callable[[str], None]) -> Any:
    """Every model on a 200 ms interval, ticked by `run_tick`; the overrun counter."""
    daemon.run_tick = run_tick  # type: ignore[method-assign]
    now = datetime.now(UTC)
    for name in ("slow", *FAST):
        scheduling.add_interval_job(
            daemon.scheduler, daemon.run_tick, scheduling.tick_job_id(name), INTERVAL, now, [name]
        )
    daemon.scheduler.start()
    return daemon.metrics.tick_overruns


def _stop(daemon: Daemon, release: threading.Event) -> None:
    release.set()
    daemon.scheduler.shutdown(wait=True)
    daemon.close()
    daemon.rt.close()


def _wait_until(condition: threading.Condition, done: object) -> bool:
    deadline = time.monotonic() + BOUND_S
    with condition:
        while not done():  # type: ignore[operator]
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            condition.wait(min(left, 0.05))  # overruns do not notify: poll them too
    return True


def test_a_hanging_model_skips_its_turns_and_the_others_keep_ticking(tmp_path: Path) -> None:
    """With two worker threads, one held by a hanging tick, every other model ticks again and
    again; the hanging model runs once, and each turn it misses is counted for it alone."""
    daemon = _daemon(tmp_path, workers=2)
    release = threading.Event()
    runs: Counter[str] = Counter()
    changed = threading.Condition()

    def run_tick(name: str) -> None:
        with changed:
            runs[name] += 1
            changed.notify_all()
        if name == "slow":
            release.wait(BOUND_S)

    overruns = _start(daemon, run_tick)
    try:
        reached = _wait_until(
            changed,
            lambda: all(runs[n] >= 5 for n in FAST) and overruns.labels("slow")._value.get() >= 3,
        )
        with changed:
            snapshot = dict(runs)
        slow_overruns = overruns.labels("slow")._value.get()
    finally:
        _stop(daemon, release)
    assert reached, f"runs {snapshot}, slow overruns {slow_overruns}"
    assert snapshot["slow"] == 1  # max_instances=1: never a second, queued tick
    assert all(snapshot[n] >= 5 for n in FAST)
    assert slow_overruns >= 3


def test_the_pool_is_bounded_by_server_workers(tmp_path: Path) -> None:
    """With every model's tick hanging, no more ticks run at once than `server.workers`."""
    daemon = _daemon(tmp_path, workers=2)
    release = threading.Event()
    running: set[str] = set()
    most = 0
    started: Counter[str] = Counter()
    changed = threading.Condition()

    def run_tick(name: str) -> None:
        nonlocal most
        with changed:
            running.add(name)
            started[name] += 1
            most = max(most, len(running))
            changed.notify_all()
        release.wait(BOUND_S)
        with changed:
            running.discard(name)

    overruns = _start(daemon, run_tick)
    try:
        reached = _wait_until(
            changed,
            lambda: sum(overruns.labels(n)._value.get() for n in ("slow", *FAST)) >= 8,
        )
        with changed:
            peak, total = most, sum(started.values())
    finally:
        _stop(daemon, release)
    assert reached
    assert peak == 2
    assert total == 2  # the two others wait in the queue; none of the four runs twice
