"""Folds parsed prediction rows into per-bucket summaries, vectorised with numpy.

Bad values are counted instead of raised: which rows are summarised at all is decided by
`monitor.ingest.triage` (an unusable timestamp, a missing or duplicate id go to `bad`, in the
bucket of the tick's time, since the row's own time is unknown or untrusted); a NaN score,
a null feature, a value of the wrong type or a column that vanished from the source are
counted per feature. None of them stops a tick.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

import numpy as np
import pandas as pd

from monitor.core.reference import (
    PREDICTION_COLUMN,
    SCORE_COLUMN,
    NumericReference,
    ReferenceSummary,
    category_strings,
)
from monitor.core.summaries import SCORE_BINS, BucketSummary
from monitor.ingest.batches import PredictionBatch
from monitor.ingest.bucketing import (
    bucket_codes,
    bucket_start,
    count_bad,
    count_due,
    grid_counts,
    per_bucket,
    split_segments,
)
from monitor.ingest.classes import decisions, probabilities, score_bins
from monitor.ingest.summarize_classes import fold_class_scores, fold_segment_class_scores
from monitor.ingest.summarize_labels import summarize_labels
from monitor.ingest.summarize_slices import fold_slice_scores
from monitor.ingest.triage import FUTURE_TOLERANCE, Triage, triage_predictions

__all__ = ["FUTURE_TOLERANCE", "bucket_start", "summarize_labels", "summarize_predictions"]


def summarize_predictions(
    batch: PredictionBatch,
    reference: ReferenceSummary,
    task: str,
    threshold: float,
    width: timedelta,
    now: datetime,
    triage: Triage | None = None,
) -> dict[datetime, BucketSummary]:
    """Fold the rows `triage` keeps (by default: judged within this batch alone) into their
    buckets; the rows it rejects are counted in the bucket of the tick's time, by reason."""
    out: dict[datetime, BucketSummary] = {}
    now_bucket = bucket_start(now, width)

    if triage is None:
        triage = triage_predictions(batch, now, None)
    bad = partial(count_bad, out, now_bucket)
    for reason, count in (*triage.bad.items(), *triage.flags.items()):
        bad(reason, count)
    if triage.future is not None:
        count_due(out, now_bucket, batch.ts[triage.future], width)
    keep = triage.keep
    if not keep.any():
        return out

    ts = batch.ts
    ts = ts[keep]
    codes, starts = bucket_codes(ts, width)
    nb = len(starts)
    summaries = [out.setdefault(s, BucketSummary()) for s in starts]
    counts = per_bucket(codes, nb)
    newest = ts.groupby(codes).max()
    for i, summary in enumerate(summaries):
        summary.n += int(counts[i])
        summary.newest_prediction = newest.iloc[i].to_pydatetime()

    score = batch.score[keep] if batch.score is not None else None
    values: np.ndarray | None = None
    if score is not None and task != "regression":
        score, outside = probabilities(score)
        values = score.to_numpy(dtype=float)
        finite = np.isfinite(values)
        out_per_bucket = per_bucket(codes[outside], nb)
        nan_per_bucket = per_bucket(codes[~finite & ~outside], nb)
        grid = grid_counts(codes[finite], score_bins(values[finite]), nb, SCORE_BINS)
        for i, summary in enumerate(summaries):
            for reason, counts in (
                ("nan_score", nan_per_bucket),
                ("score_out_of_range", out_per_bucket),
            ):
                if counts[i]:
                    summary.bad[reason] = summary.bad.get(reason, 0) + int(counts[i])
            summary.score_hist = [int(c) for c in grid[i]]

    features = batch.features if keep.all() else batch.features[keep]
    decision = decisions(batch.decision, batch.score, task, threshold, batch.class_scores)
    if not batch.class_scores.empty and task != "regression":
        decided = decision[keep] if decision is not None else None
        fold_class_scores(summaries, codes, batch.class_scores[keep], decided)
    columns: dict[str, pd.Series | None] = {
        name: (features[name] if name in features and name not in batch.absent else None)
        for name in (*reference.numeric, *reference.categorical)
    }
    if SCORE_COLUMN in columns:
        columns[SCORE_COLUMN] = score
    if PREDICTION_COLUMN in columns:
        columns[PREDICTION_COLUMN] = decision[keep] if decision is not None else None
    for name, column in columns.items():
        if column is None:
            absent = per_bucket(codes, nb)
            for i, summary in enumerate(summaries):
                summary.absent[name] = int(absent[i])
        elif name in reference.numeric:
            _fold_numeric(name, column, reference.numeric[name], codes, summaries)
        else:
            _fold_categorical(name, column, codes, summaries)
    scored = values is not None and task == "binary_classification"
    if scored and values is not None:  # label-free root-cause hints (monitor.core.slices)
        fold_slice_scores(summaries, codes, features, reference, values)
    if not batch.segments.empty:
        parts = split_segments(batch.segments[keep], codes, summaries, reference.segment_values)
        for seg_codes, targets in parts:
            seg_counts = per_bucket(seg_codes, len(targets))
            for j, target in enumerate(targets):
                target.n += int(seg_counts[j])
            if scored and values is not None:
                _fold_segment_scores(seg_codes, targets, values)
            elif not batch.class_scores.empty and task != "regression":
                decided = decision[keep] if decision is not None else None
                fold_segment_class_scores(targets, seg_codes, batch.class_scores[keep], decided)
    return out


def _fold_segment_scores(
    codes: np.ndarray, targets: list[BucketSummary], values: np.ndarray
) -> None:
    """Binary with a score: each segment value's score histogram over all its predictions
    (what the estimated metrics read), so label-free hints can split an estimate by segment.
    Trailing empty bins are not kept (`_add_lists` pads on merge)."""
    finite = np.isfinite(values)
    grid = grid_counts(codes[finite], score_bins(values[finite]), len(targets), SCORE_BINS)
    for j, target in enumerate(targets):
        row = [int(c) for c in grid[j]]
        while row and not row[-1]:
            row.pop()
        target.score_hist = [
            a + b for a, b in zip(*_same_length(target.score_hist, row), strict=True)
        ]


def _same_length(a: list[int], b: list[int]) -> tuple[list[int], list[int]]:
    size = max(len(a), len(b))
    return a + [0] * (size - len(a)), b + [0] * (size - len(b))


def _fold_numeric(
    name: str,
    column: pd.Series,
    ref: NumericReference,
    codes: np.ndarray,
    summaries: list[BucketSummary],
) -> None:
    nb = len(summaries)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=float)  # already numbers: nothing can be invalid
        present = np.isfinite(values)
        invalid = np.zeros(nb, dtype=np.int64)
        missing = per_bucket(codes[~present], nb)
    else:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        present = np.isfinite(values)
        given = column.notna().to_numpy()
        invalid = per_bucket(codes[given & ~present], nb)
        missing = per_bucket(codes[~given], nb)
    edges = np.asarray(ref.edges, dtype=float)
    v, c = (values, codes) if present.all() else (values[present], codes[present])
    bins = np.searchsorted(edges, v, side="right")
    grid = grid_counts(c, bins, nb, edges.size + 1)
    sums = grid_counts(c, bins, nb, edges.size + 1, weights=v)
    count, total = grid.sum(axis=1), sums.sum(axis=1)
    # einsum, not `v @ v`: a BLAS dot product would spin up threads for a single sum.
    squares = np.array([float(np.einsum("i,i->", v, v))]) if nb == 1 else per_bucket(c, nb, v * v)
    outside = np.zeros(nb, dtype=np.int64)
    if ref.minimum is not None and ref.maximum is not None:
        beyond = (v < ref.minimum) | (v > ref.maximum)
        outside = np.array([np.count_nonzero(beyond)]) if nb == 1 else per_bucket(c[beyond], nb)
    lows, highs = _extremes(v, c, count)
    for i, summary in enumerate(summaries):
        summary.numeric[name] = [int(x) for x in grid[i]]
        summary.numeric_sums[name] = [float(x) for x in sums[i]]
        summary.missing[name] = summary.missing.get(name, 0) + int(missing[i])
        if invalid[i]:
            summary.invalid[name] = summary.invalid.get(name, 0) + int(invalid[i])
        if outside[i]:
            summary.out_of_range[name] = summary.out_of_range.get(name, 0) + int(outside[i])
        if count[i]:
            summary.numeric_stats[name] = [
                float(count[i]),
                float(total[i]),
                float(squares[i]),
                float(lows[i]),
                float(highs[i]),
            ]


def _extremes(v: np.ndarray, c: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bucket minimum and maximum; rows come in time order, so buckets are contiguous
    and `reduceat` does it in one pass (a sort first when they are not)."""
    if v.size == 0:
        return np.zeros(count.size), np.zeros(count.size)
    if c.size > 1 and np.any(c[1:] < c[:-1]):
        order = np.argsort(c, kind="stable")
        v, c = v[order], c[order]
    used = count > 0
    starts = np.searchsorted(c, np.flatnonzero(used))
    lows, highs = np.zeros(count.size), np.zeros(count.size)
    lows[used] = np.minimum.reduceat(v, starts)
    highs[used] = np.maximum.reduceat(v, starts)
    return lows, highs


def _fold_categorical(
    name: str, column: pd.Series, codes: np.ndarray, summaries: list[BucketSummary]
) -> None:
    """Counts per (bucket, category): hashing the raw values once, turning only the distinct
    ones into text (so 1, '1' and 1.0 still become one category)."""
    nb = len(summaries)
    raw_codes, raw_uniques = pd.factorize(column.to_numpy())  # missing values get -1
    present = raw_codes >= 0
    missing = per_bucket(codes[~present], nb)
    names = category_strings(pd.Series(raw_uniques)).to_numpy()
    name_codes, categories = pd.factorize(names)
    ncat = max(len(categories), 1)
    counts = grid_counts(codes[present], name_codes[raw_codes[present]], nb, ncat)
    for i, summary in enumerate(summaries):
        summary.missing[name] = summary.missing.get(name, 0) + int(missing[i])
        row = counts[i]
        summary.categorical[name] = {str(categories[j]): int(row[j]) for j in np.flatnonzero(row)}
