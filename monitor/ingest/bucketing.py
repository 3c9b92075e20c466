"""Shared vectorised helpers: rows to buckets, 2-D counts, and segments within buckets."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from monitor.core.reference import category_strings
from monitor.core.summaries import BucketSummary

MAX_SEGMENT_VALUES = 50
"""Segments per column per batch; rarer values are pooled as `(other)` to bound label sets."""
OTHER = "(other)"


def bucket_start(ts: datetime, width: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=ts.tzinfo)
    return ts - (ts - epoch) % width


def count_bad(
    out: dict[datetime, BucketSummary], bucket: datetime, reason: str, count: int
) -> None:
    """Add `count` rows rejected for `reason` to `bucket`'s summary (created if need be)."""
    if count:
        summary = out.setdefault(bucket, BucketSummary())
        summary.bad[reason] = summary.bad.get(reason, 0) + count


def count_due(
    out: dict[datetime, BucketSummary], bucket: datetime, ts: pd.Series, width: timedelta
) -> None:
    """Note in `bucket` (where rows are counted `future_timestamp`) the buckets those rows,
    timed `ts`, are summarised in: `future_due`, by bucket start."""
    if ts.empty:
        return
    due = out.setdefault(bucket, BucketSummary()).future_due
    for start, count in ts.dt.floor(pd.Timedelta(width)).value_counts().items():
        key = start.to_pydatetime().isoformat()
        due[key] = due.get(key, 0) + int(count)


def bucket_codes(ts: pd.Series, width: timedelta) -> tuple[np.ndarray, list[datetime]]:
    """Each row's bucket index and the buckets' start times (sorted)."""
    starts = ts.dt.floor(pd.Timedelta(width))
    codes, uniques = pd.factorize(starts, sort=True)
    return codes, [u.to_pydatetime() for u in uniques]


def grid_counts(
    codes: np.ndarray,
    bins: np.ndarray,
    n_buckets: int,
    n_bins: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Counts (or sums of `weights`) per (bucket, bin), as an n_buckets x n_bins array."""
    if n_buckets == 1:  # the usual tick: skip building combined codes
        return np.bincount(bins, weights=weights, minlength=n_bins).reshape(1, n_bins)
    flat = np.bincount(codes * n_bins + bins, weights=weights, minlength=n_buckets * n_bins)
    return flat.reshape(n_buckets, n_bins)


def per_bucket(codes: np.ndarray, n_buckets: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Rows (or sums of `weights`) per bucket."""
    if n_buckets == 1:
        total = codes.size if weights is None else float(np.sum(weights))
        return np.array([total])
    return np.bincount(codes, weights=weights, minlength=n_buckets)


def segment_values(values: pd.Series, kept: list[str] | None) -> pd.Series:
    """Segment values as text; with a `kept` list (fixed by the reference, so the same in
    every batch and merge order) the other values pool as `(other)`."""
    text = category_strings(values).reindex(values.index).fillna("(missing)")
    if kept is None:
        return text
    return text.where(text.isin(kept), OTHER)


def split_segments(
    frame: pd.DataFrame,
    codes: np.ndarray,
    summaries: list[BucketSummary],
    kept: dict[str, list[str]] | None = None,
) -> list[tuple[np.ndarray, list[BucketSummary]]]:
    """For each segment column: row codes into per-(bucket, value) segment summaries."""
    out = []
    for column in frame.columns:
        values = segment_values(frame[column], (kept or {}).get(column))
        value_codes, names = pd.factorize(values.to_numpy())
        combined, uniques = pd.factorize(codes * max(len(names), 1) + value_codes)
        targets = [
            summaries[int(u) // max(len(names), 1)].segments.setdefault(
                f"{column}={names[int(u) % max(len(names), 1)]}", BucketSummary()
            )
            for u in uniques
        ]
        out.append((combined, targets))
    return out
