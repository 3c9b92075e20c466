"""Reads the next chunk of a keyset read while the caller folds the current one.

A chunk's statement depends only on the previous chunk's last row, which is known as soon as
that chunk is fetched, so the next fetch can start before the current chunk is triaged,
folded and committed. The Arrow fetch (`monitor.ingest.columnar`) runs in the driver and in
the database server without Python's GIL, so on two cores the two overlap (`bench/README.md`,
"Pull path from PostgreSQL"). Nothing else changes: chunks are still yielded one at a time, in
order, each with its watermark; at most one chunk is read ahead, and a read ahead that is
not wanted (the caller stopped at its chunk budget, or failed) is waited for and dropped.

The helper thread runs under the tick's deadline (`monitor.core.deadline`), so the statement
it has in flight is cancelled at the tick timeout like any other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pandas as pd

from monitor.core import deadline

Fetch = Callable[[Any], pd.DataFrame]


class ReadAhead:
    """At most one statement fetched on a helper thread; `take` returns its frame."""

    def __init__(self, fetch: Fetch, enabled: bool):
        self._fetch = fetch
        self._enabled = enabled
        self._pending: Any = None
        self._thread: threading.Thread | None = None
        self._outcome: tuple[pd.DataFrame | None, BaseException | None] = (None, None)

    def start(self, stmt: Any) -> None:
        """Begin fetching `stmt` (on the caller's thread at `take` when not enabled)."""
        self._pending = stmt
        if not self._enabled:
            return
        bound = deadline.current()

        def run() -> None:
            try:
                if bound is None:
                    self._outcome = (self._fetch(stmt), None)
                else:
                    with deadline.bound(bound):
                        self._outcome = (self._fetch(stmt), None)
            except BaseException as exc:  # handed to the caller's thread by `take`
                self._outcome = (None, exc)

        self._thread = threading.Thread(target=run, name="vigil-read-ahead", daemon=True)
        self._thread.start()

    def take(self) -> pd.DataFrame:
        """The frame of the statement last started (its error, raised here)."""
        stmt, self._pending = self._pending, None
        if self._thread is None:
            return self._fetch(stmt)
        self._thread.join()
        self._thread = None
        frame, error = self._outcome
        self._outcome = (None, None)
        if error is not None:
            raise error
        assert frame is not None
        return frame

    def close(self) -> None:
        """Wait for a read ahead nobody will take (its connection goes back to the pool)."""
        self._pending = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self._outcome = (None, None)
