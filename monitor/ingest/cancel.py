"""Statement timeouts on sources: a statement in flight when its tick's deadline passes is
cancelled by the engine itself; the tick then fails as `TickTimeout`.

Each driver has its own cancel, all callable from another thread: psycopg sends PostgreSQL's
cancel request (`cancel_safe`), sqlite3 and DuckDB `interrupt()` the running statement, ADBC
`adbc_cancel()` (`monitor.ingest.columnar`). The hooks cost nothing when no deadline is set
(`vigil check`, backtests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from monitor.core import deadline

_ACTIVE = "vigil_cancel"


def driver_cancel(dbapi_conn: Any) -> Callable[[], None] | None:
    """How to stop the statement running on this DB-API connection from another thread."""
    for name in ("cancel_safe", "interrupt", "cancel"):
        cancel = getattr(dbapi_conn, name, None)
        if callable(cancel):
            return cancel  # type: ignore[no-any-return]
    return None


def watch_statements(engine: Engine) -> Engine:
    """Register every statement `engine` runs with the current tick's deadline, if any."""

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, *_args: Any) -> None:
        current = deadline.current()
        if current is None:
            return
        cancel = driver_cancel(conn.connection.dbapi_connection)
        if cancel is None:
            current.check()
            return
        scope = current.cancellable(cancel)
        scope.__enter__()  # raises TickTimeout when the deadline already passed
        conn.info[_ACTIVE] = scope

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, *_args: Any) -> None:
        _release(conn)

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        if context.connection is not None:
            _release(context.connection)

    return engine


def _release(conn: Any) -> None:
    scope = conn.info.pop(_ACTIVE, None)
    if scope is not None:
        scope.__exit__(None, None, None)
