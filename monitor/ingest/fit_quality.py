"""The labelled reference as one bucket: the "before" that root-cause hints compare with.

The reference rows are folded by the very code that folds live rows (prediction side for
traffic, label side for confusion, score histograms and per-slice counts), as one bucket,
so a window and the reference are compared count for count.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from monitor.core.reference import (
    CLASS_SCORE_PREFIX,
    LABEL_COLUMN,
    PREDICTION_COLUMN,
    SCORE_COLUMN,
    ReferenceSummary,
)
from monitor.core.summaries import merge_all
from monitor.ingest.batches import LabelBatch, PredictionBatch
from monitor.ingest.summarize import summarize_predictions
from monitor.ingest.summarize_labels import summarize_labels

_AT = datetime(2000, 1, 1, tzinfo=UTC)
"""A fixed time for the reference rows: they form one bucket, whatever their own times."""
_WIDTH = timedelta(days=1)


def quality_summary(
    frame: pd.DataFrame,
    reference: ReferenceSummary,
    features: list[str],
    segments: tuple[str, ...],
    task: str,
    threshold: float,
) -> dict[str, Any]:
    """The reference's labelled rows as one `BucketSummary` (JSON); empty without labels."""
    if LABEL_COLUMN not in frame or task == "regression" or frame[LABEL_COLUMN].isna().all():
        return {}
    frame = frame.reset_index(drop=True)
    ids = pd.Series(range(len(frame)), dtype="int64")
    at = pd.Series(pd.Timestamp(_AT), index=frame.index)
    score = pd.to_numeric(frame[SCORE_COLUMN], errors="coerce") if SCORE_COLUMN in frame else None
    decision = frame.get(PREDICTION_COLUMN)
    present = [f for f in features if f in frame]
    segs = frame[[s for s in segments if s in frame]]
    now = _AT + timedelta(hours=1)
    columns = [c for c in frame.columns if str(c).startswith(CLASS_SCORE_PREFIX)]
    class_scores = frame[columns].rename(columns=lambda c: str(c)[len(CLASS_SCORE_PREFIX) :])
    predictions = PredictionBatch(  # class scores: what multiclass estimate hints compare with
        ids, at, score, decision, frame[present], segs, class_scores=class_scores
    )
    labels = LabelBatch(
        ids=ids,
        labeled_at=at,
        label=frame[LABEL_COLUMN],
        predicted_at=at,
        score=score,
        decision=decision,
        segments=segs,
        features=frame[present],
    )
    parts = [
        *summarize_predictions(predictions, reference, task, threshold, _WIDTH, now).values(),
        *summarize_labels(
            labels, task, threshold, _WIDTH, now, reference.segment_values, reference
        ).values(),
    ]
    merged = merge_all(parts)
    merged.bad = {}  # rows without a label are not bad rows of the reference
    merged.newest_prediction = merged.newest_label = None
    return merged.to_json()
