"""`vigil check --dry-run`: the real tick, with nothing written to the store and nothing sent.

How the store is left untouched depends on the store:

- SQLite: the tick runs against a copy of the database (SQLite's online backup API, a
  consistent snapshot even while the daemon writes), in a temporary directory that is
  deleted afterwards. pysqlite's savepoints cannot be trusted to roll back everything (the
  driver starts transactions lazily, so releasing the first savepoint can commit).
- PostgreSQL (and other servers): the tick runs inside one outer transaction that is rolled
  back at the end; each of the tick's own transactions becomes a savepoint inside it. Rows
  the tick locks stay locked until then, so a dry run against a live store briefly delays
  the daemon's tick of the same model, never corrupts it.

Either way no message is delivered: the outbox rows the tick writes vanish with the rest,
and evidence reports are rendered into the temporary directory.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from monitor.config.models import VigilConfig
from monitor.core.redact import Redactor
from monitor.engine.runtime import Runtime, open_runtime
from monitor.store.db import StoreError, current_revision, head_revision, make_engine

COPY, ROLLBACK = "a copy of the SQLite store", "a transaction that is rolled back"


@dataclass(frozen=True)
class DryRun:
    runtime: Runtime
    method: str
    """Which of the two ways kept the store untouched (said to the user)."""


@contextmanager
def dry_runtime(config: VigilConfig) -> Iterator[DryRun]:
    """A runtime whose writes never reach the configured store."""
    url = make_url(config.store.get_secret_value())
    with tempfile.TemporaryDirectory(prefix="vigil-dry-run-") as scratch:
        if url.get_backend_name() == "sqlite":
            with _sqlite_copy(config, url.database, Path(scratch)) as run:
                yield run
        else:
            with _rolled_back(config, Path(scratch)) as run:
                yield run


@contextmanager
def _sqlite_copy(config: VigilConfig, database: str | None, scratch: Path) -> Iterator[DryRun]:
    copy = scratch / "store.db"
    if database and database != ":memory:" and Path(database).exists():
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
    replica = config.model_copy(update={"store": SecretStr(f"sqlite:///{copy}")})
    rt = open_runtime(replica, scratch)
    rt.config = config  # names and messages show the real config, not the copy's URL
    try:
        yield DryRun(rt, COPY)
    finally:
        rt.close()


@contextmanager
def _rolled_back(config: VigilConfig, scratch: Path) -> Iterator[DryRun]:
    engine = make_engine(config.store.get_secret_value())
    if current_revision(engine) != head_revision():
        engine.dispose()
        raise StoreError("the store's schema is not current: run `vigil db upgrade` first")
    connection = engine.connect()
    outer = connection.begin()
    sessions = sessionmaker(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )
    rt = Runtime(
        config=config, store=engine, sessions=sessions, state_dir=scratch, redact=Redactor(config)
    )
    try:
        yield DryRun(rt, ROLLBACK)
    finally:
        outer.rollback()
        connection.close()
        rt.close()
