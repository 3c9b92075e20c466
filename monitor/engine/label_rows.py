"""Label rows as the label reader keeps them: a batch's subset, and the labels held until
their prediction appears (from a pulled batch, or from the rows push-down returns for them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from monitor.ingest.batches import LabelBatch, parse_times
from monitor.ingest.rowkeys import id_keys
from monitor.store.seen import Held


def take(batch: LabelBatch, mask: np.ndarray) -> LabelBatch:
    """The rows of a label batch where `mask` is True."""
    scores = batch.class_scores
    return LabelBatch(
        ids=batch.ids[mask],
        labeled_at=batch.labeled_at[mask],
        label=batch.label[mask],
        predicted_at=batch.predicted_at[mask],
        score=batch.score[mask] if batch.score is not None else None,
        decision=batch.decision[mask] if batch.decision is not None else None,
        segments=batch.segments[mask] if not batch.segments.empty else batch.segments,
        matched=batch.matched[mask] if batch.matched is not None else None,
        features=batch.features[mask] if not batch.features.empty else batch.features,
        class_scores=scores[mask] if not scores.empty else scores,
        raw_labeled_at=batch.raw_labeled_at[mask] if batch.raw_labeled_at is not None else None,
    )


def held_rows(frame: pd.DataFrame, now: datetime) -> list[Held]:
    """Held labels from the rows push-down returns for them (`v_id`, `v_label`, `v_labeled_at`)."""
    if frame.empty:
        return []
    at = parse_times(frame["v_labeled_at"])
    return [
        Held(
            key=int(key),
            row_id=plain(row_id),
            label=plain(label),
            labeled_at=None if pd.isna(ts) else ts.to_pydatetime(),
            held_at=now,
        )
        for key, row_id, label, ts in zip(
            id_keys(frame["v_id"]), frame["v_id"], frame["v_label"], at, strict=True
        )
    ]


def plain(value: Any) -> Any:
    """A value JSON can keep: numpy scalars become Python ones, NaN becomes null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return value


def to_hold(batch: LabelBatch, now: datetime) -> list[Held]:
    keys = id_keys(batch.ids)
    return [
        Held(
            key=int(key),
            row_id=plain(row_id),
            label=plain(label),
            labeled_at=None if pd.isna(at) else at.to_pydatetime(),
            held_at=now,
        )
        for key, row_id, label, at in zip(
            keys, batch.ids, batch.label, batch.labeled_at, strict=True
        )
    ]
