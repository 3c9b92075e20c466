"""Rows as read from a source, already mapped to Vigil's names and parsed.

Canonical columns live in their own fields, not in the feature frame, so a feature called
`id` or `score` can never collide with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd


@dataclass
class PredictionBatch:
    ids: pd.Series
    ts: pd.Series
    score: pd.Series | None
    decision: pd.Series | None
    features: pd.DataFrame
    segments: pd.DataFrame = field(default_factory=pd.DataFrame)
    absent: frozenset[str] = frozenset()
    """Feature columns the source no longer has (dropped or renamed upstream)."""
    raw_ts: pd.Series | None = None
    """The timestamps as the source gave them: a row whose time cannot be parsed is known
    again by its raw value."""
    class_scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Multiclass `scores:`, one column per class (named by the class); empty otherwise."""

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class LabelBatch:
    ids: pd.Series
    labeled_at: pd.Series
    label: pd.Series
    predicted_at: pd.Series
    score: pd.Series | None
    decision: pd.Series | None
    segments: pd.DataFrame = field(default_factory=pd.DataFrame)
    matched: pd.Series | None = None
    features: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The prediction's feature values, for per-slice counts (root-cause hints)."""
    """True where the label's id was found among the predictions (its time may still be
    unusable); None: found exactly where `predicted_at` is known."""
    class_scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The prediction's per-class scores (multiclass `scores:`), columns named by class."""
    raw_labeled_at: pd.Series | None = None
    """`labeled_at` as the source gave it: a label whose time cannot be parsed is known again
    by its raw value (by the incremental read and by the bad-row probe alike)."""

    def __len__(self) -> int:
        return len(self.ids)


def parse_times(values: pd.Series) -> pd.Series:
    """UTC timestamps; anything unparsable becomes NaT and is counted by the caller."""
    parsed: pd.Series
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_any_dtype(values):
        parsed = values.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        # a number is not a time: read as nanoseconds since 1970 it would pass for one
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    else:
        usable = np.fromiter((_time_like(v) for v in values.to_numpy()), bool, len(values))
        texts = values.where(usable)
        parsed = pd.to_datetime(texts, errors="coerce", utc=True, format="mixed")
    return parsed


def _time_like(value: object) -> bool:
    return isinstance(value, str | datetime | date) and not isinstance(value, bool)
