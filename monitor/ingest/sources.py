"""Reads a model's predictions and labels from any SQLAlchemy URL, incrementally and in chunks.

The watermark is (timestamp, id): rows are read in that order with keyset pagination, so rows
that share a timestamp are neither skipped nor read twice, and only rows older than the settle
delay are read, so a row committed a little late is still picked up.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from monitor.config.models import LabelsSpec, ModelConfig, PredictionsSpec, ReferenceSpec
from monitor.core.reference import (
    CLASS_SCORE_PREFIX,
    LABEL_COLUMN,
    PREDICTION_COLUMN,
    SCORE_COLUMN,
)
from monitor.core.watermark import Watermark
from monitor.ingest.batches import LabelBatch, PredictionBatch, parse_times
from monitor.ingest.columnar import fetch_frame, reads_ahead
from monitor.ingest.prefetch import ReadAhead
from monitor.ingest.source_times import naive_utc, time_bound, time_is_text, unusable_time

REFERENCE_ROW_LIMIT = 2_000_000
PROBE_ROW_LIMIT = 100_000
"""Unreadable or future-dated rows looked at per tick; more are counted by later ticks."""
ID_LOOKUP_CHUNK = 1_000


NULL_ID = {"null_id": True}
"""The watermark's row id after a row that had none (rows with no id sort first at a time)."""


def _after(ts_col: Any, id_col: Any, mark: Watermark | None, textual: bool) -> Any:
    if mark is None:
        return sa.true()
    ts: Any = mark.raw_ts if mark.raw_ts is not None else time_bound(mark.ts, textual)
    if mark.row_id is None:
        return ts_col >= ts
    if mark.row_id == NULL_ID:
        return sa.or_(ts_col > ts, sa.and_(ts_col == ts, id_col.is_not(None)))
    return sa.or_(ts_col > ts, sa.and_(ts_col == ts, id_col > mark.row_id))


class SqlSource:
    """A `Source` over tables or SQL queries reachable through one SQLAlchemy engine."""

    def __init__(self, engine: Engine, model: ModelConfig, chunk_size: int = 50_000):
        self.engine = engine
        self.model = model
        self.chunk_size = chunk_size

    def _col(self, alias: str, name: str) -> Any:
        return sa.literal_column(f"{alias}.{quote_name(self.engine, name)}")

    def available_columns(self, spec: PredictionsSpec | LabelsSpec | ReferenceSpec) -> set[str]:
        """The columns a table or query has now, so a vanished feature is counted, not fatal."""
        stmt = sa.select(sa.text("*")).select_from(sa.text(table_sql(self.engine, spec, "x")))
        with self.engine.connect() as conn:
            return set(conn.execute(stmt.limit(0)).keys())

    def _prediction_columns(self, alias: str, available: set[str]) -> dict[str, Any]:
        spec = self.model.predictions
        names = {"v_id": spec.id, "v_ts": spec.timestamp}
        if spec.score:
            names["v_score"] = spec.score
        if spec.prediction:
            names["v_decision"] = spec.prediction
        names.update(_class_score_names(spec, available))
        for i, feature in enumerate(spec.features):
            if feature in available:
                names[f"v_f{i}"] = feature
        for i, segment in enumerate(spec.segments):
            if segment in available:
                names[f"v_s{i}"] = segment
        return {label: self._col(alias, col).label(label) for label, col in names.items()}

    def predictions_since(
        self, watermark: Watermark | None, until: datetime
    ) -> Iterator[tuple[PredictionBatch, Watermark]]:
        spec = self.model.predictions
        available = self.available_columns(spec)
        cols = self._prediction_columns("p", available)
        source = table_sql(self.engine, spec, "p")
        base = sa.select(*cols.values()).select_from(sa.text(source))
        ts_col, id_col = cols["v_ts"].element, cols["v_id"].element
        textual = time_is_text(self.engine, source, ts_col)
        keyset = self._keyset(base, ts_col, id_col, "v_ts", watermark, until, textual)
        for frame, mark in keyset:
            yield (
                PredictionBatch(
                    ids=frame["v_id"],
                    ts=parse_times(frame["v_ts"]),
                    score=pd.to_numeric(frame["v_score"], errors="coerce") if spec.score else None,
                    decision=frame["v_decision"] if spec.prediction else None,
                    features=_named(frame, "v_f", spec.features),
                    segments=_named(frame, "v_s", spec.segments),
                    absent=frozenset(f for f in spec.features if f not in available),
                    raw_ts=frame["v_ts"],
                    class_scores=class_scores(frame, spec),
                ),
                mark,
            )

    def labels_since(
        self, watermark: Watermark | None, until: datetime
    ) -> Iterator[tuple[LabelBatch, Watermark]]:
        labels = self.model.labels
        if labels is None:
            return
        preds = self.model.predictions
        l_id, l_ts = self._col("l", labels.id), self._col("l", labels.timestamp)
        cols = [
            l_id.label("v_id"),
            l_ts.label("v_labeled_at"),
            self._col("l", labels.label).label("v_label"),
            self._col("p", preds.timestamp).label("v_predicted_at"),
            self._col("p", preds.id).label("v_pid"),
        ]
        cols += self._label_context(preds)
        joined = sa.text(
            f"{table_sql(self.engine, labels, 'l')} LEFT JOIN "
            f"{table_sql(self.engine, preds, 'p')} "
            f"ON l.{quote_name(self.engine, labels.id)} = p.{quote_name(self.engine, preds.id)}"
        )
        base = sa.select(*cols).select_from(joined)
        textual = time_is_text(self.engine, table_sql(self.engine, labels, "l"), l_ts)
        keyset = self._keyset(base, l_ts, l_id, "v_labeled_at", watermark, until, textual)
        for frame, mark in keyset:
            yield (
                LabelBatch(
                    ids=frame["v_id"],
                    labeled_at=parse_times(frame["v_labeled_at"]),
                    raw_labeled_at=frame["v_labeled_at"],
                    label=frame["v_label"],
                    predicted_at=parse_times(frame["v_predicted_at"]),
                    score=pd.to_numeric(frame["v_score"], errors="coerce") if preds.score else None,
                    decision=frame["v_decision"] if preds.prediction else None,
                    segments=_named(frame, "v_s", preds.segments),
                    matched=frame["v_pid"].notna(),
                    features=_named(frame, "v_f", preds.features),
                    class_scores=class_scores(frame, preds),
                ),
                mark,
            )

    def _keyset(
        self,
        base: sa.Select[Any],
        ts_col: Any,
        id_col: Any,
        ts_label: str,
        watermark: Watermark | None,
        until: datetime,
        textual: bool,
    ) -> Iterator[tuple[pd.DataFrame, Watermark]]:
        """The rows after `watermark` up to `until`, in (time, id) order, one chunk at a time,
        each with the watermark after its last row: keyset paging, so a chunk costs the same
        however far into the table it is, and a crash resumes after the last committed chunk.
        `textual`: the time column holds text, compared with text bounds."""

        def chunk(after: Watermark | None) -> Any:
            return (
                base.where(
                    _after(ts_col, id_col, after, textual), ts_col <= time_bound(until, textual)
                )
                .order_by(ts_col, id_col.nulls_first())  # rows with no id first at a time
                .limit(self.chunk_size)
            )

        mark = watermark
        # only this class's own fetch reads ahead (a Spark session's is its own business)
        own = type(self)._fetch is SqlSource._fetch
        ahead = ReadAhead(self._fetch, enabled=own and reads_ahead(self.engine))
        try:
            ahead.start(chunk(mark))
            while True:
                frame = ahead.take()
                if frame.empty:
                    return
                mark = _next_mark(frame.iloc[-1], ts_label, mark, until)
                full = len(frame) >= self.chunk_size
                if full:  # fetched while the caller folds and commits this chunk
                    ahead.start(chunk(mark))
                yield frame, mark
                if not full:
                    return
        finally:
            ahead.close()

    def unread_predictions(self, after: datetime, limit: int = PROBE_ROW_LIMIT) -> pd.DataFrame:
        """Rows the incremental read can never reach or has not reached: no timestamp, one
        that is not a time, or one after `after` (future-dated). Columns `v_id` and `v_ts`
        (raw). The caller remembers which it counted already."""
        spec = self.model.predictions
        ts_col, id_col = self._col("p", spec.timestamp), self._col("p", spec.id)
        source = table_sql(self.engine, spec, "p")
        textual = time_is_text(self.engine, source, ts_col)
        unusable = unusable_time(self.engine, ts_col, textual)
        unusable.append(ts_col > time_bound(after, textual))
        stmt = (
            sa.select(id_col.label("v_id"), ts_col.label("v_ts"))
            .select_from(sa.text(source))
            .where(sa.or_(*unusable))
            .limit(limit)
        )
        return self._fetch(stmt)

    def unread_labels(self, limit: int = PROBE_ROW_LIMIT) -> pd.DataFrame:
        """Labels the incremental read can never reach: no `labeled_at`, or one that is not a
        time. Columns `v_id` and `v_labeled_at` (raw); the caller counts each once."""
        labels = self.model.labels
        if labels is None:
            return pd.DataFrame(columns=["v_id", "v_labeled_at"])
        ts_col, id_col = self._col("l", labels.timestamp), self._col("l", labels.id)
        source = table_sql(self.engine, labels, "l")
        unusable = unusable_time(self.engine, ts_col, time_is_text(self.engine, source, ts_col))
        stmt = (
            sa.select(id_col.label("v_id"), ts_col.label("v_labeled_at"))
            .select_from(sa.text(source))
            .where(sa.or_(*unusable))
            .limit(limit)
        )
        return self._fetch(stmt)

    def _label_context(self, preds: PredictionsSpec) -> list[Any]:
        """The prediction columns a label is summarised with: score, decision, and the
        segments, features and class scores the table has (`v_score`, `v_decision`, `v_s<i>`,
        `v_f<i>`, `v_c<i>`; the features place the label in its root-cause slices)."""
        cols: list[Any] = []
        if preds.score:
            cols.append(self._col("p", preds.score).label("v_score"))
        if preds.prediction:
            cols.append(self._col("p", preds.prediction).label("v_decision"))
        wanted = preds.segments or preds.features or preds.scores
        available = self.available_columns(preds) if wanted else set()
        for i, segment in enumerate(preds.segments):
            if segment in available:
                cols.append(self._col("p", segment).label(f"v_s{i}"))
        for i, feature in enumerate(preds.features):
            if feature in available:
                cols.append(self._col("p", feature).label(f"v_f{i}"))
        for label, column in _class_score_names(preds, available).items():
            cols.append(self._col("p", column).label(label))
        return cols

    def predictions_for_ids(self, ids: list[Any]) -> pd.DataFrame:
        """The predictions with these ids, with the columns a label is summarised with:
        `v_id`, `v_predicted_at` (parsed), `v_score`, `v_decision`, `v_s<i>` (segments)."""
        preds = self.model.predictions
        cols = [
            self._col("p", preds.id).label("v_id"),
            self._col("p", preds.timestamp).label("v_predicted_at"),
        ]
        cols += self._label_context(preds)
        id_col = self._col("p", preds.id)
        frames = []
        for start in range(0, len(ids), ID_LOOKUP_CHUNK):
            stmt = (
                sa.select(*cols)
                .select_from(sa.text(table_sql(self.engine, preds, "p")))
                .where(id_col.in_(ids[start : start + ID_LOOKUP_CHUNK]))
            )
            frames.append(self._fetch(stmt))
        if not frames:
            return pd.DataFrame(columns=[c.name for c in cols])
        return pd.concat(frames, ignore_index=True)

    def reference_frame(self, limit: int = REFERENCE_ROW_LIMIT) -> pd.DataFrame:
        """The reference rows: features, and the score, decision and label where available.

        `between` takes the model's own predictions (and their labels) in a date range; a
        table or query is read with the same column names as the predictions.
        """
        ref = self.model.reference
        preds = self.model.predictions
        wanted = {f: f for f in preds.features}
        if preds.score:
            wanted[SCORE_COLUMN] = preds.score
        if preds.prediction:
            wanted[PREDICTION_COLUMN] = preds.prediction
        for cls, column in preds.scores.items():
            wanted[f"{CLASS_SCORE_PREFIX}{cls}"] = column
        for segment in preds.segments:
            wanted.setdefault(segment, segment)
        if ref.between:
            available = self.available_columns(preds)
            cols = [self._col("p", c).label(k) for k, c in wanted.items() if c in available]
            source = table_sql(self.engine, preds, "p")
            labels = self.model.labels
            if labels is not None:
                cols.append(self._col("l", labels.label).label(LABEL_COLUMN))
                label_id, pred_id = (quote_name(self.engine, c) for c in (labels.id, preds.id))
                source += (
                    f" LEFT JOIN {table_sql(self.engine, labels, 'l')} ON "
                    f"l.{label_id} = p.{pred_id}"
                )
            ts = self._col("p", preds.timestamp)
            start, end = ref.between
            stmt = (
                sa.select(*cols)
                .select_from(sa.text(source))
                .where(ts >= _day(start), ts < _day(end) + timedelta(days=1))
            )
        else:
            available = self.available_columns(ref)
            if self.model.labels is not None:
                wanted[LABEL_COLUMN] = self.model.labels.label
            cols = [self._col("r", c).label(k) for k, c in wanted.items() if c in available]
            stmt = sa.select(*cols).select_from(sa.text(table_sql(self.engine, ref, "r")))
        return self._fetch(stmt.limit(limit))

    def window_frame(self, start: datetime, end: datetime, limit: int) -> pd.DataFrame:
        """The newest `limit` predictions in [start, end), with the reference's column names
        (features, score, decision): a bounded sample for evidence such as a drift report."""
        spec = self.model.predictions
        available = self.available_columns(spec)
        wanted = {f: f for f in spec.features}
        if spec.score:
            wanted[SCORE_COLUMN] = spec.score
        if spec.prediction:
            wanted[PREDICTION_COLUMN] = spec.prediction
        cols = [self._col("p", c).label(k) for k, c in wanted.items() if c in available]
        ts = self._col("p", spec.timestamp)
        stmt = (
            sa.select(*cols)
            .select_from(sa.text(table_sql(self.engine, spec, "p")))
            .where(ts >= naive_utc(start), ts < naive_utc(end))
            .order_by(ts.desc())
            .limit(limit)
        )
        return self._fetch(stmt)

    def _fetch(self, stmt: Any) -> pd.DataFrame:
        """Columns through Arrow where the dialect has a driver, rows through SQLAlchemy else."""
        return fetch_frame(self.engine, stmt)


def _next_mark(
    last: pd.Series, ts_label: str, previous: Watermark | None, until: datetime
) -> Watermark:
    """The watermark after a chunk's last row; an unparsable time keeps the previous time
    for display but the raw text for the keyset, so the row is never read again."""
    raw = last[ts_label]
    parsed = parse_times(pd.Series([raw])).iloc[0]
    ts = parsed.to_pydatetime() if pd.notna(parsed) else previous.ts if previous else until
    ts = min(ts, until)  # a row written with an offset may parse later than it sorts
    return Watermark(
        ts=ts,
        row_id=NULL_ID if pd.isna(last["v_id"]) else _plain(last["v_id"]),
        raw_ts=raw if isinstance(raw, str) else None,
    )


def _class_score_names(spec: PredictionsSpec, available: set[str]) -> dict[str, str]:
    """`v_c<i>` for each class score column the table has (a vanished one is left out: its
    class then has no histogram, and its labelled rows no log loss)."""
    return {f"v_c{i}": col for i, col in enumerate(spec.scores.values()) if col in available}


def class_scores(frame: pd.DataFrame, spec: PredictionsSpec) -> pd.DataFrame:
    """The per-class scores read as `v_c<i>`, as numbers, one column per class name."""
    return pd.DataFrame(
        {
            cls: pd.to_numeric(frame[f"v_c{i}"], errors="coerce")
            for i, cls in enumerate(spec.scores)
            if f"v_c{i}" in frame
        },
        index=frame.index,
    )


def _named(frame: pd.DataFrame, prefix: str, names: list[str]) -> pd.DataFrame:
    """Columns selected as prefix+index, renamed back to their configured names; side by
    side without a copy (a DataFrame built from a dict merges them into one block, which
    copied every value of 200 features)."""
    columns = [
        frame[f"{prefix}{i}"].rename(n) for i, n in enumerate(names) if f"{prefix}{i}" in frame
    ]
    if not columns:
        return pd.DataFrame(index=frame.index)
    # `copy=False` keeps a block per column (the stubs do not know the argument)
    joined: pd.DataFrame = pd.concat(columns, axis=1, copy=False)  # type: ignore[call-overload]
    return joined


def _day(d: date) -> datetime:
    return datetime.combine(d, time())


def table_sql(
    engine: Engine, spec: LabelsSpec | PredictionsSpec | ReferenceSpec, alias: str
) -> str:
    """A FROM item for a configured table (schema-qualified allowed) or SQL query."""
    if spec.table:
        table = ".".join(quote_name(engine, part) for part in spec.table.split("."))
        return f"{table} AS {alias}"
    return f"({spec.query}) AS {alias}"


def quote_name(engine: Engine, name: str) -> str:
    return str(engine.dialect.identifier_preparer.quote(name))


def _plain(value: Any) -> Any:
    """Ids go into the store as JSON: numpy scalars become Python ones."""
    return value.item() if hasattr(value, "item") else value
