"""A tick's deadline: the time it may take, and how the statement it is waiting on is cancelled.

A Python thread cannot be killed, so a tick that overruns is stopped cooperatively: the
deadline is carried by the thread running the tick (a thread-local, so every source call
below it sees it without a parameter), a watchdog (`monitor.service.watchdog`) marks it
expired at the limit and calls the cancel function of the statement in flight (PostgreSQL's
cancel request, SQLite's and DuckDB's `interrupt`, ADBC's `adbc_cancel`), and the reading
loops check it between chunks. Whatever the source raised then, the tick fails as
`TickTimeout`, so the model's health says what happened rather than "query canceled".
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Cancel = Callable[[], None]


class TickTimeout(Exception):
    """The tick ran past its `tick_timeout`; its statement in flight was cancelled."""


class Deadline:
    """When one tick must be done, and the cancels registered by its statements in flight."""

    def __init__(self, seconds: float, model: str = ""):
        self.seconds = seconds
        self.model = model
        self.at = time.monotonic() + seconds
        self.expired = False
        self._cancels: dict[int, Cancel] = {}
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expire(self) -> None:
        """Called by the watchdog at `at`: cancel what runs, so the tick thread gets control."""
        with self._lock:
            self.expired = True
            cancels = list(self._cancels.values())
        for cancel in cancels:
            with contextlib.suppress(Exception):  # a statement that just finished
                cancel()

    def error(self) -> TickTimeout:
        return TickTimeout(f"tick exceeded its tick_timeout of {self.seconds:g}s and was stopped")

    def check(self) -> None:
        if self.expired:
            raise self.error()

    @contextmanager
    def cancellable(self, cancel: Cancel) -> Iterator[None]:
        key = id(cancel)
        with self._lock:
            if self.expired:
                raise self.error()
            self._cancels[key] = cancel
        try:
            yield
        finally:
            with self._lock:
                self._cancels.pop(key, None)


_local = threading.local()


def current() -> Deadline | None:
    """The deadline of the tick this thread runs, if it has one."""
    found: Deadline | None = getattr(_local, "deadline", None)
    return found


@contextmanager
def bound(deadline: Deadline) -> Iterator[Deadline]:
    """Make `deadline` the current thread's for the duration of the block."""
    previous = current()
    _local.deadline = deadline
    try:
        yield deadline
    finally:
        _local.deadline = previous


def check() -> None:
    """Raise `TickTimeout` when this thread's tick ran out of time (a no-op without one)."""
    deadline = current()
    if deadline is not None:
        deadline.check()


@contextmanager
def cancellable(cancel: Cancel) -> Iterator[None]:
    """Run a statement that `cancel` can stop from another thread when the deadline passes."""
    deadline = current()
    if deadline is None:
        yield
        return
    with deadline.cancellable(cancel):
        yield


def explain(exc: Exception) -> Exception:
    """The error to record: a `TickTimeout` when the deadline caused it, else `exc` itself."""
    deadline = current()
    if deadline is not None and deadline.expired and not isinstance(exc, TickTimeout):
        timeout = deadline.error()
        timeout.__cause__ = exc
        return timeout
    return exc
