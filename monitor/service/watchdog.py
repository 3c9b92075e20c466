"""One thread that expires tick deadlines on time (`monitor.core.deadline`).

One watchdog for all models instead of a timer thread per tick: with 200 models, 200 sleeping
timer threads would cost more than the ticks' waits they guard.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time

from monitor.core.deadline import Deadline


class Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        """Expire `deadline` at its time unless `forget` came first."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="vigil-watchdog", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            self._cond.notify()

    def forget(self, deadline: Deadline) -> None:
        with self._cond:
            self._heap = [entry for entry in self._heap if entry[2] is not deadline]
            heapq.heapify(self._heap)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, due = heapq.heappop(self._heap)
            due.expire()  # outside the lock: a cancel request may take a round trip
