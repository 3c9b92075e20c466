"""Engines for the store and the Alembic upgrade that every entry point runs first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StoreError(Exception):
    """The store cannot be used (unreachable, newer schema); the message is safe to show."""


def make_engine(url: str) -> Engine:
    """An engine with the settings Vigil relies on (SQLite: WAL, foreign keys, busy wait)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        # Naive UTC parameters compare correctly with timestamptz only in a UTC session.
        # Options in the URL (a source's statement_timeout) are kept: connect_args would
        # otherwise replace them.
        options = " ".join([*url_options(parsed), "-c timezone=UTC"])
        return create_engine(parsed, pool_pre_ping=True, connect_args={"options": options})
    return create_engine(parsed, pool_pre_ping=True)


def url_options(url: URL) -> list[str]:
    """libpq `options` given in a PostgreSQL URL's query (`?options=-c%20x%3Dy`)."""
    found = url.query.get("options")
    if found is None:
        return []
    return [found] if isinstance(found, str) else list(found)


def with_statement_timeout(url: str, timeout: timedelta | None) -> str:
    """A PostgreSQL URL whose sessions cancel any statement running longer than `timeout`."""
    if timeout is None:
        return url
    parsed = make_url(url)
    option = f"-c statement_timeout={max(1, int(timeout.total_seconds() * 1000))}"
    joined = " ".join([*url_options(parsed), option])
    return parsed.update_query_dict({"options": joined}).render_as_string(hide_password=False)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions flush explicitly: autoflush before every query cost the demo a third of its time."""
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(
        _alembic_config(create_engine("sqlite://"))
    ).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the schema to head; refuses a store written by a newer Vigil (no silent downgrade)."""
    script = ScriptDirectory.from_config(_alembic_config(engine))
    current = current_revision(engine)
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise StoreError(
            f"the store is at schema revision {current}, which this Vigil does not know; "
            "it was written by a newer version: upgrade Vigil instead of downgrading the store"
        )
    command.upgrade(_alembic_config(engine), "head")
    return head_revision()
