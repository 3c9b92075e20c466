"""Timestamps in a source as the database sees them: a real time type, or text.

A logging pipeline often writes times into a TEXT column. SQLite compares whatever it holds,
but PostgreSQL refuses `text <= timestamp`; so on a textual column every bound is written as
text in the form SQLAlchemy writes a DATETIME into SQLite, and rows compare as text on both.
The same column can hold values that are no time at all ('not a time', '', an impossible
date); `unusable_time` finds them in SQL, so a probe can count them wherever they sort.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

PG_TEXT_TYPES = frozenset({25, 1042, 1043})
"""PostgreSQL type OIDs of text, char(n) and varchar: a time column stored as text."""

TEXT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
"""How a bound is written for a textual column: as SQLAlchemy writes a DATETIME to SQLite."""

PG_TIME_PATTERN = (
    r"^\s*[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?)?"
    r"\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$"
)
"""Text PostgreSQL may hold as a time (ISO 8601, fields in range). PostgreSQL before 16 has no
safe cast to test a value with, so a pattern stands in; the reader still parses each row and
counts what does not parse (a 30th of February passes the pattern and fails there)."""


def naive_utc(ts: datetime) -> datetime:
    """Sources are compared in naive UTC: the engine's session time zone is set to UTC."""
    return ts.astimezone(UTC).replace(tzinfo=None)


def time_is_text(engine: Engine, from_sql: str, column: Any) -> bool:
    """Whether a PostgreSQL source keeps this time column as text (other dialects: False;
    SQLite compares text with text already)."""
    if engine.dialect.name != "postgresql":
        return False
    stmt = sa.select(column).select_from(sa.text(from_sql)).limit(0)
    with engine.connect() as conn:
        description = conn.execute(stmt).cursor.description
    return bool(description) and description[0][1] in PG_TEXT_TYPES  # (name, type_code, ...)


def time_bound(ts: datetime, textual: bool) -> Any:
    """A bound to compare a time column with: naive UTC, or its text on a textual column."""
    naive = naive_utc(ts)
    return naive.strftime(TEXT_TIME_FORMAT) if textual else naive


def unusable_time(engine: Engine, ts_col: Any, textual: bool) -> list[Any]:
    """Conditions, any of which means the row's time cannot be used: NULL, and where the
    column can hold it, a value that is not a time."""
    out = [ts_col.is_(None)]
    if engine.dialect.name == "sqlite":
        # SQLite keeps any value in any column; julianday() is NULL for what is no time.
        out.append(sa.func.typeof(ts_col) != "text")
        out.append(sa.func.julianday(ts_col).is_(None))
    elif textual:
        out.append(sa.not_(ts_col.regexp_match(PG_TIME_PATTERN)))
    return out
