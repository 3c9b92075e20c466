"""Rows as read from a source, already mapped to Vigil's names and parsed.

Canonical columns live in their own fields, not in the feature frame, so a feature called
`id` or `score` can never collide with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def __len__(self) -> int:
        return len(self.ids)


def parse_times(values: pd.Series) -> pd.Series:
    """UTC timestamps; anything unparsable becomes NaT and is counted by the caller."""
    parsed: pd.Series
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_any_dtype(values):
        parsed = values.dt.tz_localize("UTC")
    else:
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return parsed
