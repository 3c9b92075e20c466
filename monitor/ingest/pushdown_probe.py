"""The column probe push-down uses: a few rows tell each column's kind (number or text).

Push-down must know, before it writes a query, whether a column holds text or numbers (a
binary decision or label as 'yes'/'no' or as 1/0, a category as text or an integer)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from monitor.ingest.sources import SqlSource, table_sql

PROBE_ROWS = 100
"""Rows read to learn each column's kind (number or text) when nothing else tells it."""


def column_kinds(source: SqlSource, names: list[str]) -> dict[str, str]:
    """'number', 'text' or the Python type name of each column's first non-null value."""
    spec = source.model.predictions
    if not names:
        return {}
    cols = [source._col("p", n).label(f"c{i}") for i, n in enumerate(names)]
    stmt = sa.select(*cols).select_from(sa.text(table_sql(source.engine, spec, "p")))
    with source.engine.connect() as conn:
        rows = conn.execute(stmt.limit(PROBE_ROWS)).fetchall()
    kinds: dict[str, str] = {}
    for i, name in enumerate(names):
        value = next((r[i] for r in rows if r[i] is not None), None)
        kinds[name] = _kind(value)
    return kinds


def _kind(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float) or type(value).__name__ == "Decimal":
        return "float"
    if isinstance(value, str):
        return "text"
    return type(value).__name__
