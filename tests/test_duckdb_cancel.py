"""The tick timeout's cancel on a DuckDB source: a long DuckDB statement is interrupted from
the watchdog's thread (`monitor.ingest.cancel`: DuckDB's `interrupt()`), the reader fails as
`TickTimeout`, and the connection serves the next statement. PostgreSQL and SQLite are
covered in tests/test_many_models.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.core import deadline
from monitor.ingest.cancel import driver_cancel, watch_statements
from monitor.store.db import make_engine

# 10^12 rows to filter: some 40 minutes for DuckDB here (10^10 take 25 s), so only a cancel
# ends it within the test.
SLOW = "SELECT count(*) FROM range(1000000000000) AS t(x) WHERE x % 7 = 3"


def test_a_long_duckdb_statement_is_interrupted_at_the_deadline(tmp_path: Path) -> None:
    engine = watch_statements(make_engine(f"duckdb:///{tmp_path / 'src.duckdb'}"))
    limit = deadline.Deadline(600, "m")
    fired = threading.Event()

    def watchdog() -> None:  # as monitor.service.watchdog does at the limit
        time.sleep(1.0)
        fired.set()
        limit.expire()

    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert driver_cancel(raw) is not None  # DuckDB's interrupt is found
            rescued = threading.Event()

            def rescue() -> None:  # so a broken cancel fails the test instead of hanging it
                if not finished.wait(120):
                    rescued.set()
                    raw.interrupt()

            finished = threading.Event()
            threading.Thread(target=watchdog, daemon=True).start()
            threading.Thread(target=rescue, daemon=True).start()
            started = time.monotonic()
            with deadline.bound(limit), pytest.raises(Exception) as raised:
                conn.execute(sa.text(SLOW)).scalar()
            elapsed = time.monotonic() - started
            finished.set()
            assert fired.is_set() and not rescued.is_set()  # the deadline's cancel ended it
            with deadline.bound(limit):
                error = deadline.explain(raised.value)
            assert isinstance(error, deadline.TickTimeout)
            assert "tick_timeout" in str(error)
            print(f"interrupted after {elapsed:.1f} s")  # informative only, not asserted
        with engine.connect() as conn:  # the engine still serves the next statement
            assert conn.execute(sa.text("SELECT 41 + 1")).scalar() == 42
        # and a statement started after the deadline passed is refused before it runs
        with (
            engine.connect() as conn,
            deadline.bound(limit),
            pytest.raises(deadline.TickTimeout),
        ):
            conn.execute(sa.text("SELECT 1"))
    finally:
        engine.dispose()
