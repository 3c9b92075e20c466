"""The few SQL expressions whose spelling differs between engines, as SQLAlchemy constructs.

Push-down queries are written once in SQLAlchemy Core; these constructs compile to each
engine's own words for "seconds since the epoch", "is this float NaN" and "this value as text",
so the same query runs on PostgreSQL, DuckDB and Spark SQL. An engine not listed here has no
push-down (`PUSHDOWN_DIALECTS`), and `vigil config check` says so.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

PUSHDOWN_DIALECTS = ("postgresql", "duckdb", "spark")
"""Engines whose SQL the push-down query compiles to, each tested against the real engine."""


class EpochSeconds(FunctionElement[float]):
    """Seconds since 1970-01-01 UTC of a timestamp (naive timestamps are taken as UTC)."""

    type = sa.Double()
    inherit_cache = True


class IsNan(FunctionElement[bool]):
    """True for a float NaN; PostgreSQL orders NaN above every number, so `x > 1` is true."""

    type = sa.Boolean()
    inherit_cache = True


class AsText(FunctionElement[str]):
    """A value as text, for category counts: integers and text read the same everywhere."""

    type = sa.String()
    inherit_cache = True


class BinIndex(FunctionElement[int]):
    """How many of the (sorted) edges are <= the value: numpy's searchsorted, side right.

    PostgreSQL has it as one binary search, `width_bucket(v, ARRAY[...])`; elsewhere a CASE
    walks the edges (vectorised engines make that cheap)."""

    type = sa.Integer()
    inherit_cache = False

    def __init__(self, value: ColumnElement[Any], edges: list[float]):
        super().__init__(value)
        self.edges = list(edges)


@compiles(BinIndex)
def _bin_default(element: BinIndex, compiler: Any, **kw: Any) -> str:
    value = next(iter(element.clauses))
    whens: list[tuple[Any, Any]] = [(value < edge, i) for i, edge in enumerate(element.edges)]
    if not whens:
        return "0"
    return str(compiler.process(sa.case(*whens, else_=len(element.edges)), **kw))


@compiles(BinIndex, "postgresql")
def _bin_postgres(element: BinIndex, compiler: Any, **kw: Any) -> str:
    if not element.edges:
        return "0"
    value = compiler.process(element.clauses, **kw)
    edges = ", ".join(repr(float(e)) for e in element.edges)
    return f"width_bucket({value}, ARRAY[{edges}]::float8[])"


def bin_index(value: ColumnElement[Any], edges: list[float]) -> ColumnElement[int]:
    return BinIndex(value, edges)


_SPELLINGS: dict[type[FunctionElement[Any]], dict[str | None, str]] = {
    EpochSeconds: {
        None: "EXTRACT(EPOCH FROM {})",
        "spark": "unix_micros(CAST({} AS TIMESTAMP)) / 1e6",
    },
    IsNan: {None: "isnan({})", "postgresql": "({} = 'NaN'::float8)"},
    AsText: {
        None: "CAST({} AS VARCHAR)",
        "postgresql": "CAST({} AS TEXT)",
        "spark": "CAST({} AS STRING)",
    },
}
"""Each one-argument construct's SQL per engine (`None`: every engine not named), `{}` the
argument: one table rather than a compile hook a spelling."""


def _register_spelling(
    construct: type[FunctionElement[Any]], dialect: str | None, template: str
) -> None:
    def spell(element: FunctionElement[Any], compiler: Any, **kw: Any) -> str:
        return template.format(compiler.process(element.clauses, **kw))

    if dialect is None:
        compiles(construct)(spell)
    else:
        compiles(construct, dialect)(spell)


for _construct, _spellings in _SPELLINGS.items():
    for _dialect, _template in _spellings.items():
        _register_spelling(_construct, _dialect, _template)


def epoch_seconds(ts: ColumnElement[Any]) -> ColumnElement[float]:
    return EpochSeconds(ts)


def is_nan(value: ColumnElement[Any]) -> ColumnElement[bool]:
    return IsNan(value)


def as_text(value: ColumnElement[Any]) -> ColumnElement[str]:
    return AsText(value)


def not_finite(value: ColumnElement[Any]) -> ColumnElement[bool]:
    """NULL, NaN or ±infinity: what numpy's `isfinite` rejects."""
    inf: ColumnElement[Any] = sa.cast(sa.literal_column("'Infinity'"), sa.Double)
    minus_inf: ColumnElement[Any] = sa.cast(sa.literal_column("'-Infinity'"), sa.Double)
    return sa.or_(value.is_(None), is_nan(value), value == inf, value == minus_inf)
