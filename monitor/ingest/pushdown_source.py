"""Push-down over a SQL source: the watermark step, the column probe and the one query.

A tick first asks the source for the last (timestamp, id) at or before the settle time, which
fixes the upper end of this tick's rows; the aggregate query then covers exactly the rows
after the stored watermark and up to that key, and the key becomes the new watermark. That is
the same keyset the pull path pages with, so a model can switch between `pull` and `pushdown`
without reading a row twice or skipping one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from monitor.config.models import ModelConfig
from monitor.core.reference import PREDICTION_COLUMN, SCORE_COLUMN, ReferenceSummary
from monitor.core.summaries import BucketSummary
from monitor.core.watermark import Watermark
from monitor.ingest.batches import parse_times
from monitor.ingest.pushdown import PushdownColumns, fold, summary_query
from monitor.ingest.pushdown_label_source import (
    LabelPushdownResult,
    label_summaries_since,
    up_to,
)
from monitor.ingest.pushdown_probe import column_kinds
from monitor.ingest.pushdown_sql import PUSHDOWN_DIALECTS
from monitor.ingest.source_times import naive_utc
from monitor.ingest.sources import NULL_ID, SqlSource, _after, table_sql

NOT_PUSHED = (
    "duplicate ids within a read are not detected (each row is counted)",
    "rows whose timestamp is NULL or unparsable are not read, so not counted as bad",
)
"""What the local fold counts that one GROUP BY cannot; `vigil config check` prints it."""


@dataclass(frozen=True)
class PushdownResult:
    buckets: dict[datetime, BucketSummary]
    mark: Watermark
    rows: int
    result_rows: int
    result_bytes: int
    """Rows and an estimate of the bytes the engine returned (what crossed the wire)."""


def problems(model: ModelConfig, dialect: str, kinds: dict[str, str]) -> list[str]:
    """Why this model's summaries cannot be pushed down to this engine (empty: they can)."""
    out: list[str] = []
    if dialect not in PUSHDOWN_DIALECTS:
        out.append(
            f"engine {dialect!r} has no push-down (supported: {', '.join(PUSHDOWN_DIALECTS)})"
        )
        return out
    preds = model.predictions
    categorical = set(preds.categorical)
    for name in preds.features:
        kind = kinds.get(name, "unknown")
        if name in categorical and kind not in ("text", "integer", "unknown"):
            out.append(
                f"categorical feature {name!r} is {kind}: its categories' text differs "
                "between engines; store it as text or integer, or use compute: pull"
            )
        if name not in categorical and kind == "bool":
            out.append(f"feature {name!r} is boolean: store it as an integer or text")
    if preds.score and kinds.get(preds.score, "unknown") not in ("integer", "float", "unknown"):
        out.append(f"score column {preds.score!r} is {kinds[preds.score]}, not a number")
    if preds.prediction and kinds.get(preds.prediction) in ("bool", "float"):
        kind = kinds[preds.prediction]
        out.append(f"prediction column {preds.prediction!r} is {kind}: use text or integer")
    for name in preds.segments:
        if kinds.get(name, "unknown") not in ("text", "integer", "unknown"):
            out.append(f"segment column {name!r} is {kinds[name]}: use text or integer")
    estimated = sorted({slo.metric for slo in model.slos if slo.metric.startswith("estimated.")})
    if preds.scores and estimated:
        out.append(
            f"{', '.join(estimated)} of a multiclass model read each class's score over every "
            "prediction, which push-down does not summarise (labelled metrics are unaffected: "
            "this model's labels are read row by row); use compute: pull"
        )
    return out


def summaries_since(
    source: SqlSource, mark: Watermark | None, until: datetime, reference: ReferenceSummary
) -> Iterator[PushdownResult]:
    """This tick's rows as bucket summaries, computed by the source's engine."""
    model = source.model
    spec = model.predictions
    available = source.available_columns(spec)
    ts, row_id = source._col("p", spec.timestamp), source._col("p", spec.id)
    frm = sa.text(table_sql(source.engine, spec, "p"))
    window = sa.and_(_after(ts, row_id, mark, False), ts <= naive_utc(until))
    last_stmt = (
        sa.select(ts.label("ts"), row_id.label("id"))
        .select_from(frm)
        .where(window)
        .order_by(ts.desc(), row_id.desc().nulls_last())
        .limit(1)
    )
    with source.engine.connect() as conn:
        last = conn.execute(last_stmt).first()
    if last is None:
        return
    last_ts, last_id = last
    bound = up_to(ts, row_id, last_ts, last_id)
    decision = spec.prediction if spec.prediction in available else None
    kinds = column_kinds(source, [decision]) if decision else {}
    cols = PushdownColumns(
        ts=ts,
        score=source._col("p", spec.score) if spec.score in available else None,
        decision=source._col("p", decision) if decision else None,
        decision_is_text=kinds.get(decision or "") == "text",
        features={f: source._col("p", f) for f in spec.features if f in available},
        segments={s: source._col("p", s) for s in spec.segments if s in available},
    )
    stmt, parts = summary_query(
        cols, frm, sa.and_(window, bound), reference, model.task, model.threshold, model.bucket
    )
    with source.engine.connect() as conn:
        result = conn.execute(stmt)
        keys = list(result.keys())
        rows = [dict(zip(keys, row, strict=True)) for row in result.fetchall()]
    absent = {
        name
        for name in (*reference.numeric, *reference.categorical)
        if name not in (SCORE_COLUMN, PREDICTION_COLUMN) and name not in available
    }
    if SCORE_COLUMN in reference.numeric and cols.score is None:
        absent.add(SCORE_COLUMN)
    has_decision = cols.decision is not None or (
        cols.score is not None and model.task == "binary_classification"
    )
    if PREDICTION_COLUMN in reference.categorical and not has_decision:
        absent.add(PREDICTION_COLUMN)
    buckets = fold(rows, reference, parts, absent, list(cols.segments), model.bucket, model.task)
    parsed = parse_times(pd.Series([last_ts])).iloc[0]
    new_mark = Watermark(
        ts=parsed.to_pydatetime() if pd.notna(parsed) else until,
        row_id=NULL_ID
        if last_id is None
        else last_id.item()
        if hasattr(last_id, "item")
        else last_id,
    )
    yield PushdownResult(
        buckets=buckets,
        mark=new_mark,
        rows=sum(b.n for b in buckets.values()),
        result_rows=len(rows),
        result_bytes=sum(len(str(v)) for r in rows for v in r.values() if v is not None),
    )


def check_pushdown(model: ModelConfig, engine: Any) -> list[str]:
    """Problems that would stop this model's push-down, found before the first tick: the
    engine's dialect, then (by reading a few rows) the kinds of the configured columns."""
    dialect = engine.dialect.name
    found = problems(model, dialect, {})
    if found:
        return found
    source = SqlSource(engine, model)  # any engine-like object: its dialect, connect()
    preds = model.predictions
    available = source.available_columns(preds)
    wanted = [preds.score, preds.prediction, *preds.features, *preds.segments]
    names = [n for n in dict.fromkeys(w for w in wanted if w) if n in available]
    return problems(model, dialect, column_kinds(source, names))


class PushdownSqlSource(SqlSource):
    """The SQL source with push-down: what the registry builds for every SQL engine."""

    def summaries_since(
        self, watermark: Watermark | None, until: datetime, reference: ReferenceSummary
    ) -> Iterator[PushdownResult]:
        return summaries_since(self, watermark, until, reference)

    def label_summaries_since(
        self,
        watermark: Watermark | None,
        until: datetime,
        reference: ReferenceSummary,
        now: datetime,
    ) -> LabelPushdownResult | None:
        return label_summaries_since(self, watermark, until, reference, now)

    def pushdown_problems(self) -> list[str]:
        return check_pushdown(self.model, self.engine)
