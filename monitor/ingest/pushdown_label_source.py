"""Label push-down over a SQL source: the label watermark step, the held rows and the query.

As for predictions, a tick first asks the labels table for the last (labeled_at, id) at or
before the settle time; the aggregate query covers exactly the labels after the stored label
watermark and up to that key (the keyset the pull path pages with, so a model can switch
between `pull` and `pushdown`). A label whose prediction is not in the source yet comes back
as a row (id, label, time) and is held like the local path holds it; the held labels are
retried row by row as today (they are few: labels that outran their predictions).

A model whose labels cannot be pushed down (`label_problems`) reads them row by row; `vigil
config check` says which and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from monitor.config.models import ModelConfig
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import BucketSummary
from monitor.core.watermark import Watermark
from monitor.ingest.batches import parse_times
from monitor.ingest.bucketing import bucket_start
from monitor.ingest.pushdown import PushdownColumns
from monitor.ingest.pushdown_labels import UNMATCHED, LabelColumns, fold_labels, label_query
from monitor.ingest.pushdown_probe import PROBE_ROWS, _kind, column_kinds
from monitor.ingest.source_times import naive_utc, time_is_text
from monitor.ingest.sources import NULL_ID, SqlSource, _after, quote_name, table_sql

LABELS_NOT_PUSHED = (
    "a label repeated within a read, or whose id two predictions share, is counted each time "
    "(the local fold counts the copies as duplicate_label)",
)
"""What the local label fold does that the aggregate query does not."""


@dataclass(frozen=True)
class LabelPushdownResult:
    buckets: dict[datetime, BucketSummary]
    """Labelled parts by prediction bucket; bad labels by reason in the tick's bucket."""
    held: pd.DataFrame
    """Labels whose prediction is not in the source yet: `v_id`, `v_labeled_at`, `v_label`."""
    mark: Watermark | None
    """None: no new label, the watermark stays."""
    read: int
    result_rows: int
    result_bytes: int


def label_problems(model: ModelConfig, kinds: dict[str, str], textual: bool) -> list[str]:
    """Why this model's labels are read row by row under `compute: pushdown` (empty: they are
    pushed down). `kinds` has the label column's kind under `label`."""
    if model.labels is None:
        return []
    out: list[str] = []
    kind = kinds.get("label", "unknown")
    if model.predictions.scores and model.task == "multiclass_classification":
        out.append("a multiclass model's per-class scores (scores:) are not summarised there")
    if model.task == "regression" and kind not in ("integer", "float", "unknown"):
        out.append(f"label column {model.labels.label!r} is {kind}, not a number")
    if model.task == "multiclass_classification" and kind not in ("text", "integer", "unknown"):
        out.append(f"label column {model.labels.label!r} is {kind}: use text or integer")
    if model.task == "binary_classification" and kind not in (
        "text",
        "integer",
        "float",
        "bool",
        "unknown",
    ):
        out.append(f"label column {model.labels.label!r} is {kind}")
    if textual:
        out.append("a time column holds text, not a timestamp")
    return out


def _label_kind(source: SqlSource) -> str:
    labels = source.model.labels
    assert labels is not None
    col = source._col("l", labels.label)
    stmt = sa.select(col).select_from(sa.text(table_sql(source.engine, labels, "l")))
    stmt = stmt.where(col.is_not(None)).limit(PROBE_ROWS)
    with source.engine.connect() as conn:
        rows = conn.execute(stmt).fetchall()
    return _kind(rows[0][0] if rows else None)


def _textual(source: SqlSource) -> bool:
    labels, preds = source.model.labels, source.model.predictions
    assert labels is not None
    l_sql, p_sql = table_sql(source.engine, labels, "l"), table_sql(source.engine, preds, "p")
    return time_is_text(source.engine, l_sql, source._col("l", labels.timestamp)) or time_is_text(
        source.engine, p_sql, source._col("p", preds.timestamp)
    )


def check_labels(model: ModelConfig, engine: Any) -> list[str]:
    """`label_problems` for this model's source, by reading a few label rows."""
    if model.labels is None:
        return []
    source = SqlSource(engine, model)  # any engine-like object: its dialect, connect()
    return label_problems(model, {"label": _label_kind(source)}, _textual(source))


def up_to(ts: Any, row_id: Any, last_ts: Any, last_id: Any) -> Any:
    """Rows up to and with the key (last_ts, last_id) in the pull path's keyset order: time,
    then id with rows of no id first (so all of them are in when the last row has an id)."""
    if last_id is None:  # every row at the last time has no id
        return ts <= last_ts
    at_last = sa.and_(ts == last_ts, sa.or_(row_id.is_(None), row_id <= last_id))
    return sa.or_(ts < last_ts, at_last)


def label_summaries_since(
    source: SqlSource,
    mark: Watermark | None,
    until: datetime,
    reference: ReferenceSummary,
    now: datetime,
) -> LabelPushdownResult | None:
    """This tick's labels as bucket summaries computed by the engine; None when this model's
    labels cannot be pushed down (the caller reads them row by row)."""
    model, labels = source.model, source.model.labels
    if labels is None:
        return None
    label_kind = _label_kind(source)
    if label_problems(model, {"label": label_kind}, _textual(source)):
        return None
    preds = model.predictions
    l_ts, l_id = source._col("l", labels.timestamp), source._col("l", labels.id)
    window = sa.and_(_after(l_ts, l_id, mark, False), l_ts <= naive_utc(until))
    last_stmt = (
        sa.select(l_ts.label("ts"), l_id.label("id"))
        .select_from(sa.text(table_sql(source.engine, labels, "l")))
        .where(window)
        .order_by(l_ts.desc(), l_id.desc().nulls_last())
        .limit(1)
    )
    with source.engine.connect() as conn:
        last = conn.execute(last_stmt).first()
    if last is None:
        return LabelPushdownResult({}, pd.DataFrame(), None, 0, 0, 0)
    last_ts, last_id = last
    bound = up_to(l_ts, l_id, last_ts, last_id)
    available = source.available_columns(preds)
    decision = preds.prediction if preds.prediction in available else None
    kinds = column_kinds(source, [decision]) if decision else {}
    cols = LabelColumns(
        preds=PushdownColumns(
            ts=source._col("p", preds.timestamp),
            score=source._col("p", preds.score) if preds.score in available else None,
            decision=source._col("p", decision) if decision else None,
            decision_is_text=kinds.get(decision or "") == "text",
            features={f: source._col("p", f) for f in preds.features if f in available},
            segments={s: source._col("p", s) for s in preds.segments if s in available},
        ),
        pred_id=source._col("p", preds.id),
        label_id=l_id,
        label_ts=l_ts,
        label=source._col("l", labels.label),
        label_kind=label_kind,
    )
    joined = sa.text(
        f"{table_sql(source.engine, labels, 'l')} LEFT JOIN "
        f"{table_sql(source.engine, preds, 'p')} "
        f"ON l.{quote_name(source.engine, labels.id)} = p.{quote_name(source.engine, preds.id)}"
    )
    where = sa.and_(window, bound)
    stmt, plan = label_query(
        cols, joined, where, reference, model.task, model.threshold, model.bucket
    )
    with source.engine.connect() as conn:
        result = conn.execute(stmt)
        keys = list(result.keys())
        rows = [dict(zip(keys, row, strict=True)) for row in result.fetchall()]
    buckets, reasons = fold_labels(
        rows, plan, reference, model.bucket, bucket_start(now, model.bucket)
    )
    held = pd.DataFrame({"v_id": [], "v_labeled_at": [], "v_label": []})
    if reasons.get(UNMATCHED):
        held_stmt = (
            sa.select(l_id.label("v_id"), l_ts.label("v_labeled_at"), cols.label.label("v_label"))
            .select_from(joined)
            .where(where, l_id.is_not(None), cols.pred_id.is_(None))
        )
        with source.engine.connect() as conn:
            found = conn.execute(held_stmt)
            held = pd.DataFrame(found.fetchall(), columns=list(found.keys()))
    parsed = parse_times(pd.Series([last_ts])).iloc[0]
    plain_id = last_id.item() if hasattr(last_id, "item") else last_id
    new_mark = Watermark(
        ts=parsed.to_pydatetime() if pd.notna(parsed) else until,
        row_id=NULL_ID if last_id is None else plain_id,
    )
    return LabelPushdownResult(
        buckets=buckets,
        held=held,
        mark=new_mark,
        read=sum(reasons.values()),
        result_rows=len(rows) + len(held),
        result_bytes=sum(len(str(v)) for r in rows for v in r.values() if v is not None),
    )
