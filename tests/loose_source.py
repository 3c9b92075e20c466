"""A source that accepts bad rows: no primary key, every column nullable, and (on SQLite)
a timestamp column that keeps whatever is written into it, as a logging pipeline's does.

Rows are written with plain SQL parameters, so a string such as 'not a time' or an integer
reaches the table as it is, not converted by SQLAlchemy's DateTime type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from monitor.engine.runtime import Runtime, open_runtime
from tests.builders import build_config, config_dict, reference

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
COLUMNS = ("request_id", "predicted_at", "amount", "country", "score", "decision")


def create_loose_source(url: str, table: str = "predictions") -> sa.Engine:
    """predictions/labels tables that take any row, plus the builders' reference table."""
    engine = sa.create_engine(url)
    exists = sa.inspect(engine).has_table("labels")
    ts_type = "TIMESTAMP" if engine.dialect.name == "postgresql" else "DATETIME"
    id_type = "TEXT" if engine.dialect.name == "sqlite" else "BIGINT"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE {table} (request_id {id_type}, predicted_at {ts_type}, "
                "amount DOUBLE PRECISION, country VARCHAR(20), score DOUBLE PRECISION, "
                "decision INTEGER)"
                if engine.dialect.name == "postgresql"
                else f"CREATE TABLE {table} (request_id, predicted_at DATETIME, amount FLOAT, "
                "country VARCHAR(20), score FLOAT, decision INTEGER)"
            )
        )
        if exists:
            return engine
        conn.execute(
            sa.text(
                f"CREATE TABLE labels (request_id {id_type}, labeled_at {ts_type}, "
                "is_fraud INTEGER)"
                if engine.dialect.name == "postgresql"
                else "CREATE TABLE labels (request_id, labeled_at DATETIME, is_fraud)"
            )
        )
    reference.metadata.create_all(engine, tables=[reference])
    with engine.begin() as conn:
        conn.execute(
            reference.insert(),
            [
                {"amount": float(1 + i % 50), "country": ("DE", "FR", "NL")[i % 3]}
                for i in range(300)
            ],
        )
    return engine


def stamp(ts: datetime, text: bool = True) -> Any:
    """A time as SQLAlchemy writes a DATETIME into SQLite (naive UTC text), or as a naive
    UTC datetime for a typed PostgreSQL column (`text=False`)."""
    naive = ts.astimezone(UTC).replace(tzinfo=None)
    return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if text else naive


def good_row(i: int, ts: datetime, text: bool = True) -> dict[str, Any]:
    return {
        "request_id": i,
        "predicted_at": stamp(ts, text),
        "amount": float(1 + i % 40),
        "country": ("DE", "FR", "NL")[i % 3],
        "score": 0.9 if i % 2 else 0.2,
        "decision": 1 if i % 2 else 0,
    }


def insert(engine: sa.Engine, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = list(rows[0])
    columns = ", ".join(names)
    values = ", ".join(f":{n}" for n in names)
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), rows)


def loose_runtime(
    store_url: str,
    source_url: str,
    directory: Path,
    model: str = "m",
    table: str = "predictions",
    **overrides: Any,
) -> Runtime:
    data = config_dict(store_url, source_url, **overrides)
    data["models"] = {model: data["models"]["m"]}
    data["models"][model]["predictions"]["table"] = table
    data["models"][model]["slos"] = [
        {"metric": "dq.future_rate", "window": "24h", "objective": "< 0.5", "severity": "ticket"}
    ]
    return open_runtime(build_config(data), directory)
