"""Business metrics a model declares (approval rate, losses prevented) with their daily trend.

They are read from the model's own source, because that is where the business data lives: a
`column` of the predictions is aggregated per local day inside the database; a `query` returns
(time, value) rows that are aggregated the same way here. A failing query is reported in the
report instead of failing it: one broken metric must not cost the stakeholder the whole page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from monitor.config.models import BusinessMetric, ModelConfig
from monitor.ingest.batches import parse_times
from monitor.ingest.sources import quote_name, table_sql
from monitor.report.weeks import Week


@dataclass(frozen=True)
class Stats:
    """Sum, count, min and max of a value: every supported aggregate follows from these."""

    total: float = 0.0
    count: int = 0
    low: float | None = None
    high: float | None = None

    def value(self, aggregate: str) -> float | None:
        if aggregate == "count":
            return float(self.count)
        if not self.count:
            return None
        if aggregate == "sum":
            return self.total
        if aggregate == "mean":
            return self.total / self.count
        return self.low if aggregate == "min" else self.high


@dataclass
class BusinessLine:
    metric: BusinessMetric
    daily: list[tuple[date, float | None]] = field(default_factory=list)
    value: float | None = None
    previous: float | None = None
    error: str | None = None

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def trend(self) -> str:
        """`good`, `bad` or `` for the change against last week, where the config says which
        direction is better."""
        change, better = self.change, self.metric.higher_is_better
        if change is None or better is None or change == 0:
            return ""
        return "good" if (change > 0) == better else "bad"

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        if self.metric.format == "percent":
            return f"{value * 100:.1f}%"
        unit = self.metric.unit
        number = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}"
        return f"{unit}{number}" if unit in {"€", "$", "£"} else f"{number}{unit}"


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def _column_stats(
    engine: Engine, spec: ModelConfig, column: str, lo: datetime, hi: datetime
) -> Stats:
    col: Any = sa.literal_column(f"p.{quote_name(engine, column)}")
    ts: Any = sa.literal_column(f"p.{quote_name(engine, spec.predictions.timestamp)}")
    stmt = (
        sa.select(sa.func.sum(col), sa.func.count(col), sa.func.min(col), sa.func.max(col))
        .select_from(sa.text(table_sql(engine, spec.predictions, "p")))
        .where(ts >= _naive(lo), ts < _naive(hi))
    )
    with engine.connect() as conn:
        total, count, low, high = conn.execute(stmt).one()
    return Stats(float(total or 0), int(count or 0), _num(low), _num(high))


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _frame_stats(values: pd.Series) -> Stats:
    clean = values.dropna()
    if clean.empty:
        return Stats()
    return Stats(float(clean.sum()), len(clean), float(clean.min()), float(clean.max()))


def _query_rows(engine: Engine, query: str, lo: datetime, hi: datetime) -> pd.DataFrame:
    params = {k: _naive(v) for k, v in (("start", lo), ("end", hi)) if f":{k}" in query}
    with engine.connect() as conn:
        result = conn.execute(sa.text(query), params)
        rows = result.fetchall()
    if rows and len(rows[0]) < 2:
        raise ValueError("the query must return two columns: a time and a value")
    frame = pd.DataFrame([(r[0], r[1]) for r in rows], columns=["ts", "value"])
    frame["ts"] = parse_times(frame["ts"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame[(frame["ts"] >= lo) & (frame["ts"] < hi)]


def business_line(
    engine: Engine, spec: ModelConfig, metric: BusinessMetric, week: Week
) -> BusinessLine:
    line = BusinessLine(metric)
    previous = week.previous()
    try:
        if metric.column is not None:
            days = [_column_stats(engine, spec, metric.column, lo, hi) for _, lo, hi in week.days()]
            before = _column_stats(engine, spec, metric.column, previous.start, previous.end)
        else:
            assert metric.query is not None
            frame = _query_rows(engine, metric.query, previous.start, week.end)
            days = [
                _frame_stats(frame["value"][(frame["ts"] >= lo) & (frame["ts"] < hi)])
                for _, lo, hi in week.days()
            ]
            before = _frame_stats(frame["value"][frame["ts"] < previous.end])
    except Exception as exc:  # a broken metric is shown as broken; the report still goes out
        line.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        return line
    week_stats = Stats(
        sum(d.total for d in days),
        sum(d.count for d in days),
        min((d.low for d in days if d.low is not None), default=None),
        max((d.high for d in days if d.high is not None), default=None),
    )
    line.daily = [
        (day, s.value(metric.aggregate)) for (day, _, _), s in zip(week.days(), days, strict=True)
    ]
    line.value = week_stats.value(metric.aggregate)
    line.previous = before.value(metric.aggregate)
    if line.value is not None and math.isnan(line.value):
        line.value = None
    return line
