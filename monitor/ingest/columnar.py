"""Runs a source's SELECT into columns: ADBC (Arrow) where the URL's dialect has a driver.

Statements are still built with SQLAlchemy (one keyset query for every dialect); only the
transport changes. PostgreSQL is fetched through its ADBC driver (binary COPY) straight into
Arrow buffers and handed to pandas as columns, with no Python object per row for numbers and
times. Every other dialect, and any result the Arrow path cannot type faithfully (a UUID id, a
driver error), goes through SQLAlchemy's rows as before, so a reader never fails because of the
transport.

SQLite stays on SQLAlchemy on purpose: ADBC's SQLite driver links its own copy of SQLite, and
two SQLite libraries in one process clobber each other's POSIX locks on the same file (closing
one releases the other's), which showed up at once as "disk I/O error" in the tests and can
corrupt a database that Vigil's process also writes (the demo, the tests, a SQLite store).
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Dialect

from monitor.core import deadline
from monitor.store.db import url_options

log = logging.getLogger(__name__)


POOL_IDLE = 4
"""Idle Arrow connections kept per source URL: a PostgreSQL connection costs tens of ms to
open, more than a small tick's whole read."""


@dataclass
class ArrowDriver:
    """How one dialect reaches Arrow: the SQL it compiles to and the connections it opens.

    `inline` renders numbers and times into the SQL text: a statement without parameters is
    streamed by PostgreSQL's binary COPY, twice as fast as a prepared one with them.
    """

    dialect: Dialect
    connect: Callable[[], Any]
    inline: bool = False
    idle: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def checkout(self) -> Any:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return self.connect()

    def checkin(self, conn: Any) -> None:
        with self.lock:
            if len(self.idle) < POOL_IDLE:
                self.idle.append(conn)
                return
        _close(conn)

    def close_idle(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for conn in idle:
            _close(conn)


_DRIVERS: dict[str, ArrowDriver | None] = {}
_DRIVERS_LOCK = threading.Lock()


def arrow_driver(engine: Engine) -> ArrowDriver | None:
    """The ADBC driver for this engine's URL, or None when it has none (SQLAlchemy then)."""
    key = engine.url.render_as_string(hide_password=False)
    with _DRIVERS_LOCK:
        if key not in _DRIVERS:
            backend = engine.url.get_backend_name()
            _DRIVERS[key] = _postgres_driver(engine.url) if backend == "postgresql" else None
        return _DRIVERS[key]


def reads_ahead(engine: Engine) -> bool:
    """Whether a keyset read fetches its next chunk while the current one is folded
    (`monitor.ingest.prefetch`): where the fetch is Arrow's, which runs without the GIL on
    its own pooled connection. SQLAlchemy's rows would hold the GIL, and SQLite sources
    (single-file, sometimes in memory) stay on one thread."""
    return arrow_driver(engine) is not None


@atexit.register
def _close_all() -> None:
    """Idle connections closed before the interpreter tears the driver down under them."""
    with _DRIVERS_LOCK:
        drivers = [d for d in _DRIVERS.values() if d is not None]
        _DRIVERS.clear()
    for driver in drivers:
        driver.close_idle()


def release(engine: Engine) -> None:
    """Close the idle Arrow connections to this engine's database (the runtime is closing)."""
    key = engine.url.render_as_string(hide_password=False)
    with _DRIVERS_LOCK:
        driver = _DRIVERS.pop(key, None)
    if driver is not None:
        driver.close_idle()


def _postgres_driver(url: sa.URL) -> ArrowDriver | None:
    try:
        import adbc_driver_postgresql.dbapi as adbc_pg
        from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
        from sqlalchemy.engine.interfaces import BindTyping
    except ImportError:  # pragma: no cover - the drivers are a core dependency
        return None
    if set(url.query) - {"sslmode", "application_name", "connect_timeout", "options"}:
        return None  # options libpq's URI would read differently: keep the SQLAlchemy path
    dialect = PGDialect_psycopg(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
    # ADBC sends typed parameters (int64, timestamp): no casts such as $1::INTEGER, which
    # would overflow a bigint id.
    dialect.bind_typing = BindTyping.NONE
    # Naive UTC parameters compare correctly with timestamptz only in a UTC session; the
    # URL's own options (a source's statement_timeout) come along.
    options = " ".join([*url_options(url), "-c timezone=UTC"])
    plain = url.set(drivername="postgresql").difference_update_query(["options"])
    uri = plain.render_as_string(hide_password=False)
    uri += ("&" if "?" in uri else "?") + "options=" + quote(options, safe="")
    return ArrowDriver(dialect, lambda: adbc_pg.connect(uri), inline=True)


@contextmanager
def arrow_session(engine: Engine) -> Iterator[Callable[[Any], pd.DataFrame]]:
    """A fetch function for a run of statements over one pooled connection."""
    driver = arrow_driver(engine)
    if driver is None:
        yield lambda stmt: fetch_rows(engine, stmt)
        return
    try:
        conn = driver.checkout()
    except Exception as exc:  # the SQLAlchemy path raises its own, clearer error if it fails too
        log.debug("arrow connection failed, reading rows instead: %s", type(exc).__name__)
        yield lambda stmt: fetch_rows(engine, stmt)
        return
    healthy = [True]

    def fetch(stmt: Any) -> pd.DataFrame:
        try:
            frame = _fetch_arrow(driver, conn, stmt) if healthy[0] else None
        except deadline.TickTimeout:
            healthy[0] = False  # cancelled mid-statement: not pooled again
            raise
        if frame is None:
            healthy[0] = False  # a connection that failed once is not pooled again
            return fetch_rows(engine, stmt)
        return frame

    try:
        yield fetch
    finally:
        if healthy[0]:
            driver.checkin(conn)
        else:
            _close(conn)


def fetch_frame(engine: Engine, stmt: Any) -> pd.DataFrame:
    """One statement, fetched as columns where possible."""
    with arrow_session(engine) as fetch:
        return fetch(stmt)


def fetch_rows(engine: Engine, stmt: Any) -> pd.DataFrame:
    """The SQLAlchemy path: rows of Python objects, for dialects without an Arrow driver."""
    with engine.connect() as conn:
        result = conn.execute(stmt)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _fetch_arrow(driver: ArrowDriver, conn: Any, stmt: Any) -> pd.DataFrame | None:
    """The frame, or None when this statement must be read as rows (a driver error: ADBC
    raises OSError and its own DB-API errors alike; a column Arrow cannot type)."""
    sql, params = compile_positional(stmt, driver.dialect)
    if driver.inline and params and all(_inlinable(v) for v in params):
        sql = str(stmt.compile(dialect=driver.dialect, compile_kwargs={"literal_binds": True}))
        params = []
    try:
        with closing(conn.cursor()) as cursor, deadline.cancellable(cursor.adbc_cancel):
            cursor.execute(sql, params or None)
            table = cursor.fetch_arrow_table()
        conn.commit()  # end the read transaction so the next chunk sees newly committed rows
    except deadline.TickTimeout:
        raise
    except Exception as exc:
        log.debug("arrow fetch failed, reading rows instead: %s", type(exc).__name__)
        return None
    columns = _plain_columns(table)
    if columns is None:
        return None
    frame: pd.DataFrame = pa.table(columns).to_pandas(split_blocks=True, self_destruct=True)
    return frame


def _inlinable(value: Any) -> bool:
    """Values whose SQL literal is unambiguous; text stays a parameter (no quoting rules)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int | datetime)


def _close(conn: Any) -> None:
    """The connection may already be unusable; closing it must not raise."""
    with suppress(Exception):
        conn.close()


def compile_positional(stmt: Any, dialect: Dialect) -> tuple[str, list[Any]]:
    """SQL text and positional parameters, each passed through its type's bind processor
    (as SQLAlchemy's own execution would: a dialect may store times as text)."""
    compiled = stmt.compile(dialect=dialect)
    params = compiled.construct_params()
    values = []
    for key in compiled.positiontup or []:
        value = params[key]
        bind = compiled.binds[key]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        values.append(process(value) if process is not None and value is not None else value)
    return str(compiled), values


def _plain_columns(table: pa.Table) -> dict[str, pa.Array] | None:
    """Columns pandas reads without surprises; None when one would not round-trip (binary,
    UUID), so the caller reads rows instead. PostgreSQL NUMERIC arrives as text: parsed to
    float64 here, as SQLAlchemy's Decimal would be by the summarizer."""
    out: dict[str, pa.Array] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if isinstance(kind, pa.BaseExtensionType):
            storage = _storage(column)
            if not pa.types.is_string(storage.type):
                return None
            try:
                column = pc.cast(storage, pa.float64())
            except pa.ArrowInvalid:
                column = storage
        elif _opaque(kind):
            return None
        out[name] = column
    return out


def _opaque(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_nested(kind)
    )


def _storage(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([chunk.storage for chunk in column.chunks], column.type.storage_type)
