"""Reads a model's predictions and labels from any SQLAlchemy URL, incrementally and in chunks.

The watermark is (timestamp, id): rows are read in that order with keyset pagination, so rows
that share a timestamp are neither skipped nor read twice, and only rows older than the settle
delay are read, so a row committed a little late is still picked up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from monitor.batches import LabelBatch, PredictionBatch, parse_times
from monitor.config.models import LabelsSpec, ModelConfig, PredictionsSpec, ReferenceSpec

REFERENCE_ROW_LIMIT = 2_000_000


@dataclass(frozen=True)
class Watermark:
    """Read position: rows after (ts, row_id); a None row_id means "from ts on, inclusive"."""

    ts: datetime
    row_id: Any


class Source(Protocol):
    """Where a model's logged rows come from; one implementation per kind of store."""

    def predictions_since(
        self, watermark: Watermark | None, until: datetime
    ) -> Iterator[tuple[PredictionBatch, Watermark]]: ...

    def labels_since(
        self, watermark: Watermark | None, until: datetime
    ) -> Iterator[tuple[LabelBatch, Watermark]]: ...

    def reference_frame(self) -> pd.DataFrame: ...


def _naive_utc(ts: datetime) -> datetime:
    """Sources are compared in naive UTC: the engine's session time zone is set to UTC."""
    return ts.astimezone(UTC).replace(tzinfo=None)


def _after(ts_col: Any, id_col: Any, mark: Watermark | None) -> Any:
    if mark is None:
        return sa.true()
    ts = _naive_utc(mark.ts)
    if mark.row_id is None:
        return ts_col >= ts
    return sa.or_(ts_col > ts, sa.and_(ts_col == ts, id_col > mark.row_id))


class SqlSource:
    """A `Source` over tables or SQL queries reachable through one SQLAlchemy engine."""

    def __init__(self, engine: Engine, model: ModelConfig, chunk_size: int = 50_000):
        self.engine = engine
        self.model = model
        self.chunk_size = chunk_size

    def _col(self, alias: str, name: str) -> Any:
        return sa.literal_column(f"{alias}.{_quote(self.engine, name)}")

    def _prediction_columns(self, alias: str) -> dict[str, Any]:
        spec = self.model.predictions
        names = {"v_id": spec.id, "v_ts": spec.timestamp}
        if spec.score:
            names["v_score"] = spec.score
        if spec.prediction:
            names["v_decision"] = spec.prediction
        for i, feature in enumerate(spec.features):
            names[f"v_f{i}"] = feature
        return {label: self._col(alias, col).label(label) for label, col in names.items()}

    def predictions_since(
        self, watermark: Watermark | None, until: datetime
    ) -> Iterator[tuple[PredictionBatch, Watermark]]:
        spec = self.model.predictions
        cols = self._prediction_columns("p")
        ts_col, id_col = cols["v_ts"].element, cols["v_id"].element
        mark = watermark
        while True:
            stmt = (
                sa.select(*cols.values())
                .select_from(sa.text(_text_source(self.engine, spec, "p")))
                .where(_after(ts_col, id_col, mark), ts_col <= _naive_utc(until))
                .order_by(ts_col, id_col)
                .limit(self.chunk_size)
            )
            frame = self._fetch(stmt)
            if frame.empty:
                return
            last = frame.iloc[-1]
            raw_last_ts = parse_times(pd.Series([last["v_ts"]])).iloc[0]
            mark = Watermark(
                ts=raw_last_ts.to_pydatetime()
                if pd.notna(raw_last_ts)
                else (mark.ts if mark else until),
                row_id=_plain(last["v_id"]),
            )
            features = pd.DataFrame(
                {f: frame[f"v_f{i}"] for i, f in enumerate(spec.features)}, index=frame.index
            )
            yield (
                PredictionBatch(
                    ids=frame["v_id"],
                    ts=parse_times(frame["v_ts"]),
                    score=pd.to_numeric(frame["v_score"], errors="coerce") if spec.score else None,
                    decision=frame["v_decision"] if spec.prediction else None,
                    features=features,
                ),
                mark,
            )
            if len(frame) < self.chunk_size:
                return

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
        ]
        if preds.score:
            cols.append(self._col("p", preds.score).label("v_score"))
        if preds.prediction:
            cols.append(self._col("p", preds.prediction).label("v_decision"))
        joined = sa.text(
            f"{_text_source(self.engine, labels, 'l')} LEFT JOIN "
            f"{_text_source(self.engine, preds, 'p')} "
            f"ON l.{_quote(self.engine, labels.id)} = p.{_quote(self.engine, preds.id)}"
        )
        mark = watermark
        while True:
            base = sa.select(*cols).select_from(joined)
            stmt = (
                base.where(_after(l_ts, l_id, mark), l_ts <= _naive_utc(until))
                .order_by(l_ts, l_id)
                .limit(self.chunk_size)
            )
            frame = self._fetch(stmt)
            if frame.empty:
                return
            last = frame.iloc[-1]
            last_ts = parse_times(pd.Series([last["v_labeled_at"]])).iloc[0]
            mark = Watermark(
                ts=last_ts.to_pydatetime() if pd.notna(last_ts) else (mark.ts if mark else until),
                row_id=_plain(last["v_id"]),
            )
            yield (
                LabelBatch(
                    ids=frame["v_id"],
                    labeled_at=parse_times(frame["v_labeled_at"]),
                    label=frame["v_label"],
                    predicted_at=parse_times(frame["v_predicted_at"]),
                    score=pd.to_numeric(frame["v_score"], errors="coerce") if preds.score else None,
                    decision=frame["v_decision"] if preds.prediction else None,
                ),
                mark,
            )
            if len(frame) < self.chunk_size:
                return

    def reference_frame(self) -> pd.DataFrame:
        """The reference rows' features, by date range over the predictions or a table/query."""
        ref = self.model.reference
        preds = self.model.predictions
        if ref.between:
            spec: PredictionsSpec | ReferenceSpec = preds
            alias = "p"
        else:
            spec, alias = ref, "r"
        cols = [self._col(alias, f).label(f) for f in preds.features]
        source = sa.text(_text_source(self.engine, spec, alias))
        stmt = sa.select(*cols).select_from(source).limit(REFERENCE_ROW_LIMIT)
        if ref.between:
            ts = self._col("p", preds.timestamp)
            start, end = ref.between
            stmt = stmt.where(ts >= _day(start), ts < _day(end) + timedelta(days=1))
        return self._fetch(stmt)

    def _fetch(self, stmt: Any) -> pd.DataFrame:
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _day(d: date) -> datetime:
    return datetime.combine(d, time())


def _text_source(
    engine: Engine, spec: LabelsSpec | PredictionsSpec | ReferenceSpec, alias: str
) -> str:
    """A FROM item for a configured table (schema-qualified allowed) or SQL query."""
    if spec.table:
        table = ".".join(_quote(engine, part) for part in spec.table.split("."))
        return f"{table} AS {alias}"
    return f"({spec.query}) AS {alias}"


def _quote(engine: Engine, name: str) -> str:
    return str(engine.dialect.identifier_preparer.quote(name))


def _plain(value: Any) -> Any:
    """Ids go into the store as JSON: numpy scalars become Python ones."""
    return value.item() if hasattr(value, "item") else value
