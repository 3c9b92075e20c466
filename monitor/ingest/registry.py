"""Sources: the one protocol every kind of source implements, and the registry of kinds.

A source's URL picks its kind: `spark:<master>` a Spark session, `duckdb:` DuckDB (embedded,
over its tables or Parquet files), anything else a SQLAlchemy URL. Adding a kind is one module
and one line in `SOURCES`; `tests/test_source_contract.py` runs the same contract against
every registered kind on its real engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from monitor.config.models import ModelConfig, SourceConfig
from monitor.core.reference import ReferenceSummary
from monitor.core.watermark import Watermark
from monitor.ingest.batches import LabelBatch, PredictionBatch
from monitor.ingest.cancel import watch_statements
from monitor.ingest.pushdown_source import PushdownResult, PushdownSqlSource
from monitor.ingest.spark import SparkSource, spark_engine
from monitor.store.db import make_engine, with_statement_timeout


class Source(Protocol):
    """Where a model's logged rows come from, read incrementally by (timestamp, id)."""

    def predictions_since(
        self, watermark: Watermark | None, until: datetime
    ) -> Iterator[tuple[PredictionBatch, Watermark]]: ...

    def labels_since(
        self, watermark: Watermark | None, until: datetime
    ) -> Iterator[tuple[LabelBatch, Watermark]]: ...

    def reference_frame(self, limit: int = ...) -> pd.DataFrame: ...

    def window_frame(self, start: datetime, end: datetime, limit: int) -> pd.DataFrame: ...

    def summaries_since(
        self, watermark: Watermark | None, until: datetime, reference: ReferenceSummary
    ) -> Iterator[PushdownResult]:
        """`compute: pushdown`: this tick's prediction summaries, computed by the engine."""
        ...

    def pushdown_problems(self) -> list[str]:
        """Why push-down cannot run on this source (empty when it can)."""
        ...


@dataclass(frozen=True)
class SourceKind:
    """How to open the connection a kind's sources share, and build one model's source."""

    connect: Callable[[str, SourceConfig], Any]
    build: Callable[[Any, ModelConfig, int], Source]


def _sql_connect(url: str, config: SourceConfig) -> Any:
    return watch_statements(make_engine(with_statement_timeout(url, config.statement_timeout)))


def _spark_connect(url: str, config: SourceConfig) -> Any:
    return spark_engine(url, config.spark_conf)


SOURCES: dict[str, SourceKind] = {
    "sql": SourceKind(_sql_connect, PushdownSqlSource),
    "duckdb": SourceKind(_sql_connect, PushdownSqlSource),
    "spark": SourceKind(_spark_connect, SparkSource),
}


def kind_of(url: str) -> str:
    """The registry key a source URL selects."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    return scheme if scheme in SOURCES and scheme != "sql" else "sql"
