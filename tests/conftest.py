"""Shared fixtures: a real PostgreSQL database per test, SQLite files, and config builders.

PostgreSQL tests never skip: if the server cannot be reached the test fails, in CI and out.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
import structlog

if TYPE_CHECKING:
    from tests.test_outbox import Store

os.environ.setdefault("DO_NOT_TRACK", "1")  # evidently must send no telemetry from tests

PG_ADMIN_URL = os.environ.get(
    "VIGIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """A CLI command run in-process binds structlog to its (then closed) stderr: reset it
    before and after each test, so every test logs to the current stdout."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # fail loudly: a skipped database test is not a passing one
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}", pytrace=False)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin: sa.Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"vigil_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """The outbox's view of a fresh, migrated store (`tests/test_outbox.py`), on both databases.

    Imported here rather than at the top so tests that never use it do not load the outbox."""
    from monitor.store.db import make_engine, session_factory, upgrade
    from tests.test_outbox import Store

    engine = make_engine(db_url)
    upgrade(engine)
    yield Store(session_factory(engine))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_db_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(store URL, source URL) on the same backend: both SQLite, or two PostgreSQL databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}", f"sqlite:///{tmp_path / 'source.db'}"
    admin: sa.Engine = request.getfixturevalue("pg_admin")
    names = [f"vigil_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    request.addfinalizer(drop)
    base = sa.make_url(PG_ADMIN_URL)
    store, source = (base.set(database=n).render_as_string(hide_password=False) for n in names)
    return store, source


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The demo's six simulated weeks, run once for every test that reads them (it is the
    slowest fixture of the suite). Tests must treat its directory as read-only."""
    from monitor.demo.replay import run_demo

    return run_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def spark_engine() -> object:
    """One local Spark session for the whole run (it takes most of a minute to start); the
    Spark tests are few and share it."""
    from monitor.config.models import SourceConfig
    from monitor.ingest.registry import SOURCES

    config = SourceConfig(url="spark:local[2]")  # type: ignore[arg-type]
    return SOURCES["spark"].connect("spark:local[2]", config)
