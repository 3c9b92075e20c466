"""A source's `statement_timeout`: PostgreSQL itself cancels a statement that runs longer, on
both read paths (SQLAlchemy rows and the ADBC Arrow fetch), with the session's other options
(UTC) kept; without it nothing is set. The server enforces it, so it holds even with no tick
deadline running on Vigil's side (`vigil check`, backtests, a daemon that died mid-query)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from monitor.config.models import SourceConfig
from monitor.ingest.columnar import arrow_driver, arrow_session
from monitor.ingest.registry import SOURCES
from monitor.store.db import url_options, with_statement_timeout


def _source(pg_url: str, timeout: str | None) -> sa.Engine:
    settings: dict[str, object] = {"url": pg_url}
    if timeout is not None:
        settings["statement_timeout"] = timeout
    engine: sa.Engine = SOURCES["sql"].connect(pg_url, SourceConfig.model_validate(settings))
    return engine


def test_the_server_cancels_a_long_statement_on_both_read_paths(pg_url: str) -> None:
    """With `statement_timeout: 1s`, `pg_sleep(30)` fails with PostgreSQL's own cancel message
    through SQLAlchemy and through ADBC; both sessions show 1s and stay in UTC."""
    engine = _source(pg_url, "1s")
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "1s"
            assert conn.execute(sa.text("SHOW timezone")).scalar_one() == "UTC"
        with (
            pytest.raises(sa.exc.OperationalError, match="statement timeout"),
            engine.connect() as conn,
        ):
            conn.execute(sa.text("SELECT pg_sleep(30)"))
        assert arrow_driver(engine) is not None  # the Arrow path is still taken
        with arrow_session(engine) as fetch:
            shown = fetch(sa.select(sa.text("current_setting('statement_timeout') AS t")))
            zone = fetch(sa.select(sa.text("current_setting('timezone') AS z")))
            assert shown["t"].tolist() == ["1s"] and zone["z"].tolist() == ["UTC"]
            with pytest.raises(Exception, match="statement timeout"):
                fetch(sa.select(sa.text("pg_sleep(30) AS s")))
    finally:
        engine.dispose()


def test_without_it_the_server_default_applies(pg_url: str) -> None:
    """No `statement_timeout`: the session keeps the server's default (0, no limit)."""
    engine = _source(pg_url, None)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        engine.dispose()


def test_the_option_joins_options_already_in_the_url() -> None:
    """A URL that carries libpq options keeps them beside the timeout, in milliseconds."""
    url = "postgresql+psycopg://u:pw@h/db?options=-c%20search_path%3Dshop"
    joined = with_statement_timeout(url, timedelta(seconds=2.5))
    assert url_options(sa.make_url(joined)) == ["-c search_path=shop -c statement_timeout=2500"]
    assert with_statement_timeout(url, None) == url
