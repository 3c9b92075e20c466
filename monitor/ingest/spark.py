"""A Spark SQL source: tables a SparkSession can read (Parquet, Delta, Iceberg, Hive).

`url: spark:local[2]` starts (or joins) a local session; `spark:` followed by any master URL
works the same way, and `spark_conf` in the source passes catalog settings (Delta's or
Iceberg's extensions). Tables are the session's tables; a `query:` may read files directly
(``SELECT * FROM parquet.`/data/preds` ``).

Spark is reached through a small engine adapter so that every statement the SQL source builds
(keyset pages, labels, the reference, the push-down query) is the same SQLAlchemy Core
statement, compiled by a Spark SQL dialect with its values rendered inline and run by
`spark.sql`; results come back as Arrow-backed pandas frames.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, cast

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import default
from sqlalchemy.sql import compiler

from monitor.config.models import ModelConfig
from monitor.ingest.pushdown_source import PushdownSqlSource

_SESSION_LOCK = threading.Lock()


class SparkTypeCompiler(compiler.GenericTypeCompiler):
    """Spark's type names: STRING for text, TIMESTAMP for times."""

    def visit_string(self, type_: Any, **kw: Any) -> str:
        return "STRING"

    def visit_VARCHAR(self, type_: Any, **kw: Any) -> str:
        return "STRING"

    def visit_datetime(self, type_: Any, **kw: Any) -> str:
        return "TIMESTAMP"

    def visit_DATETIME(self, type_: Any, **kw: Any) -> str:
        return "TIMESTAMP"


class SparkCompiler(compiler.SQLCompiler):
    """Values rendered as Spark SQL literals: exact doubles, timestamps, escaped text."""

    def render_literal_value(self, value: Any, type_: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if math.isnan(value):
                return "CAST('NaN' AS DOUBLE)"
            if math.isinf(value):
                return f"CAST('{'' if value > 0 else '-'}Infinity' AS DOUBLE)"
            return f"{value!r}D"
        if isinstance(value, datetime):
            return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
        if isinstance(value, date):
            return f"DATE '{value.isoformat()}'"
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{text}'"


class SparkIdentifierPreparer(compiler.IdentifierPreparer):
    def __init__(self, dialect: Any) -> None:
        super().__init__(dialect, initial_quote="`", final_quote="`")


class SparkDialect(default.DefaultDialect):
    """Enough of a dialect to compile Vigil's statements to Spark SQL (never executes)."""

    name = "spark"
    statement_compiler = SparkCompiler
    type_compiler_cls = SparkTypeCompiler
    preparer = SparkIdentifierPreparer  # type: ignore[assignment]
    supports_native_boolean = True
    paramstyle = "named"


class SparkResult:
    """The part of SQLAlchemy's result the SQL source uses, over a pandas frame."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def keys(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def fetchall(self) -> list[tuple[Any, ...]]:
        clean = self.frame.astype(object).where(self.frame.notna(), None)
        return list(clean.itertuples(index=False, name=None))

    def first(self) -> tuple[Any, ...] | None:
        rows = self.fetchall()
        return rows[0] if rows else None


class SparkConnection:
    def __init__(self, engine: SparkEngine):
        self.engine = engine

    def execute(self, stmt: Any) -> SparkResult:
        return SparkResult(self.engine.frame(stmt))


class SparkEngine:
    """A SparkSession seen as the engine of a SQL source: a dialect and frames."""

    def __init__(self, session: Any):
        self.session = session
        self.dialect = SparkDialect()
        self.url = sa.URL.create("spark")

    def sql(self, stmt: Any) -> str:
        if isinstance(stmt, str):
            return stmt
        return str(stmt.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True}))

    def frame(self, stmt: Any) -> pd.DataFrame:
        """The statement's result as columns (Spark hands pandas Arrow batches)."""
        frame: pd.DataFrame = self.session.sql(self.sql(stmt)).toPandas()
        return frame

    @contextmanager
    def connect(self) -> Iterator[SparkConnection]:
        yield SparkConnection(self)

    def dispose(self) -> None:
        """The session is shared by every Spark source of the process; it is not stopped."""


def spark_engine(url: str, conf: dict[str, str] | None = None) -> SparkEngine:
    """Start or join the process's SparkSession for `spark:<master>`, in UTC."""
    from pyspark.sql import SparkSession

    master = url.split(":", 1)[1] or "local[*]"
    with _SESSION_LOCK:
        builder = (
            SparkSession.builder.master(master)
            .appName("vigil")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
        )
        for key, value in (conf or {}).items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return SparkEngine(session)


class SparkSource(PushdownSqlSource):
    """The SQL source's statements, compiled to Spark SQL and run by the session."""

    def __init__(self, engine: SparkEngine, model: ModelConfig, chunk_size: int = 50_000):
        super().__init__(cast(Engine, engine), model, chunk_size)
        self.spark = engine

    def _fetch(self, stmt: Any) -> pd.DataFrame:
        return self.spark.frame(stmt)
