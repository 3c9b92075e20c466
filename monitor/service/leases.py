"""Who runs what when several `vigil run` processes share one store.

Every model's tick and the outbox sender is a *lease*: a process runs a job only while it holds
the job's lease, so two processes never tick one model (which would count its rows twice) or
drain one outbox message twice.

- PostgreSQL: session-level advisory locks (`pg_try_advisory_lock`) held on one dedicated
  connection. The server releases them the moment that connection ends, so when a process is
  killed its models are taken over by the next scheduled attempt of another process, within
  one interval, with no expiry to tune and no clock to trust. Ownership is sticky: a process
  keeps a lease until it stops or loses its lock connection.
- SQLite: a file store cannot be shared safely between hosts, so the first daemon takes an
  exclusive lock file next to the database and a second one refuses to start.
- Any other backend: no coordination is available; the daemon warns that it must run alone.

Replicas (`vigil run` processes, not `vigil check`) name their lock connection
`vigil-replica <host:pid>`: the live replicas are the sessions with that name in
`pg_stat_activity`, so membership needs no table, no heartbeat row and no clock, and a killed
replica leaves it the moment its connection ends. `monitor.service.share` splits the models
between them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

try:  # POSIX only; elsewhere the SQLite store is simply not guarded
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


OUTBOX_LEASE = "outbox"
REPLICA_PREFIX = "vigil-replica "
REPORT_LEASE = "report"


def model_lease(name: str) -> str:
    """The lease whose holder alone ticks model `name` (the daemon, `vigil check`)."""
    return f"model:{name}"


class LeaseError(Exception):
    """This process may not run against the store (another daemon owns it); safe to show."""


class Coordinator(Protocol):
    kind: str

    def acquire(self, name: str) -> bool:
        """Take or keep the lease `name`; False while another process holds it."""
        ...

    def held(self) -> frozenset[str]: ...

    def release(self, name: str) -> None:
        """Give one lease back (another replica's share now)."""
        ...

    def replicas(self) -> list[str] | None:
        """The live replicas' ids, this one's included; None when this process runs alone."""
        ...

    @property
    def me(self) -> str: ...

    def close(self) -> None:
        """Give every lease back (also done by the OS or the server if the process dies)."""
        ...


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key per lease name, namespaced so other tools' keys differ."""
    digest = hashlib.sha256(f"vigil-lease:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SoleOwner:
    """The only daemon on this store: every lease is ours once the lock file is.

    `flock` is released by the kernel when the process exits, however it exits, so a killed
    daemon never leaves a stale lock behind (the file itself stays, empty of meaning).
    """

    kind = "lock-file"

    def __init__(self, lock_path: Path | None):
        self.lock_path = lock_path
        self._file: IO[str] | None = None
        self._held: set[str] = set()
        if lock_path is None or fcntl is None:
            return
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise LeaseError(
                f"another `vigil run` ({owner}) already uses this SQLite store "
                f"(lock file {lock_path}); a SQLite store serves one daemon only. "
                "Stop the other daemon, or move the store to PostgreSQL to run several."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{holder_name()}\n")
        handle.flush()
        self._file = handle

    def acquire(self, name: str) -> bool:
        self._held.add(name)
        return True

    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    def release(self, name: str) -> None:
        self._held.discard(name)

    def replicas(self) -> list[str] | None:
        return None

    @property
    def me(self) -> str:
        return holder_name()

    def close(self) -> None:
        self._held.clear()
        if self._file is not None and fcntl is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class AdvisoryLocks:
    """PostgreSQL advisory locks on one dedicated connection, shared by the scheduler threads.

    Keepalives on both ends bound how long a vanished holder (a host that lost power, not a
    killed process) keeps its locks; a killed process's connection closes at once.
    """

    kind = "advisory-lock"

    def __init__(self, url: URL, holder: str | None = None, replica: bool = False):
        self.holder = holder or holder_name()
        self.replica = replica
        prefix = REPLICA_PREFIX if replica else "vigil-leases "
        self.application_name = f"{prefix}{self.holder}"[:63]  # PostgreSQL keeps 63 bytes
        self._engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "application_name": self.application_name,
                "connect_timeout": 10,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            },
        )
        self._conn: Connection | None = None
        self._held: set[str] = set()
        self._mutex = threading.Lock()

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # The server notices a silent client within ~25 s instead of the OS's 2 hours.
            for setting in (
                "tcp_keepalives_idle = 10",
                "tcp_keepalives_interval = 5",
                "tcp_keepalives_count = 3",
            ):
                conn.exec_driver_sql(f"SET {setting}")
            self._conn = conn
            self._held.clear()
        return self._conn

    def _drop(self) -> None:
        """The connection failed, and with it every lock it held."""
        self._held.clear()
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None

    def acquire(self, name: str) -> bool:
        """Raises `SQLAlchemyError` when the store cannot be reached (no lease is held then)."""
        with self._mutex:
            try:
                conn = self._connection()
                if name in self._held:
                    conn.exec_driver_sql("SELECT 1")  # alive connection = lock still ours
                    return True
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(name)}
                ).scalar()
            except SQLAlchemyError:
                self._drop()
                raise
            if got:
                self._held.add(name)
            return bool(got)

    def held(self) -> frozenset[str]:
        with self._mutex:
            return frozenset(self._held)

    @property
    def me(self) -> str:
        return self.application_name[len(REPLICA_PREFIX) :] if self.replica else self.holder

    def release(self, name: str) -> None:
        """Raises `SQLAlchemyError` when the store cannot be reached (no lease is held then)."""
        with self._mutex:
            if name not in self._held:
                return
            try:
                self._connection().execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(name)}
                )
            except SQLAlchemyError:
                self._drop()
                raise
            self._held.discard(name)

    def replicas(self) -> list[str] | None:
        """The replicas whose lock connection is open now (this one's, opened if need be)."""
        if not self.replica:
            return None
        with self._mutex:
            try:
                rows = self._connection().execute(
                    text(
                        "SELECT application_name FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name LIKE :prefix"
                    ),
                    {"prefix": f"{REPLICA_PREFIX}%"},
                )
                names = {str(row[0])[len(REPLICA_PREFIX) :] for row in rows}
            except SQLAlchemyError:
                self._drop()
                raise
        return sorted(names | {self.me})

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.close()  # ends the session: the server releases every lock
                self._conn = None
            self._held.clear()
        self._engine.dispose()


def coordinator_for(store: Engine, replica: bool = False) -> tuple[Coordinator, str | None]:
    """The coordinator that fits the store's backend, and a warning to log, if any.
    `replica`: a `vigil run` process that takes its share of the models."""
    backend = store.url.get_backend_name()
    if backend == "postgresql":
        return AdvisoryLocks(store.url, replica=replica), None
    if backend == "sqlite":
        database = store.url.database
        if not database or database == ":memory:":
            return SoleOwner(None), None
        return SoleOwner(Path(database).resolve().with_name(Path(database).name + ".lock")), None
    return SoleOwner(None), (
        f"no cross-process coordination on a {backend} store: run a single `vigil run` "
        "against it (use PostgreSQL for several)"
    )


@contextmanager
def startup_lock(url: str) -> Iterator[None]:
    """Serialise the start (schema migrations) of daemons started together on PostgreSQL.

    Two replicas migrating an empty store at once would race to create the same tables; with
    this lock the second waits, then finds the schema at head. An unreachable store is left
    for the caller to report.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        yield
        return
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError:
        engine.dispose()
        yield
        return
    key = lock_key("schema-migrations")
    try:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        yield
    finally:
        with contextlib.suppress(SQLAlchemyError):
            conn.close()  # ends the session, and the lock with it
        engine.dispose()
