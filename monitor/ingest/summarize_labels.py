"""Folds labels (joined to their predictions) into the buckets of the predictions' times.

A label that arrives days late updates the bucket its prediction belongs to, so a window's
quality is always "predictions made in this window, judged by every label known so far".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import cast

import numpy as np
import pandas as pd

from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import LAG_EDGES_S, SCORE_BINS, BucketSummary
from monitor.ingest.batches import LabelBatch
from monitor.ingest.bucketing import (
    bucket_codes,
    bucket_start,
    count_bad,
    grid_counts,
    per_bucket,
    split_segments,
)
from monitor.ingest.classes import class_strings, decisions, probabilities, score_bins
from monitor.ingest.summarize_classes import PROB_EPS, fold_labelled_classes
from monitor.ingest.summarize_slices import fold_slices

__all__ = ["PROB_EPS", "fold_labelled", "summarize_labels"]


def summarize_labels(
    batch: LabelBatch,
    task: str,
    threshold: float,
    width: timedelta,
    now: datetime,
    segment_values: dict[str, list[str]] | None = None,
    reference: ReferenceSummary | None = None,
) -> dict[datetime, BucketSummary]:
    """With a `reference`, the labelled rows are also counted per feature slice (root-cause
    hints, `monitor.ingest.summarize_slices`)."""
    out: dict[datetime, BucketSummary] = {}
    now_bucket = bucket_start(now, width)

    bad = partial(count_bad, out, now_bucket)
    has_id = batch.ids.notna().to_numpy()
    bad("missing_id", int((~has_id).sum()))
    known = batch.predicted_at.notna().to_numpy()
    matched = batch.matched.to_numpy(dtype=bool) if batch.matched is not None else known
    bad("unknown_label_id", int((has_id & ~matched).sum()))
    bad("prediction_bad_timestamp", int((has_id & matched & ~known).sum()))
    known &= has_id
    dup = batch.ids.duplicated().to_numpy() & known
    bad("duplicate_label", int(dup.sum()))
    keep = known & ~dup
    labels: pd.Series
    if task == "regression":
        labels = pd.to_numeric(batch.label, errors="coerce")
    else:
        labels = class_strings(batch.label, task)
    valid = labels.notna().to_numpy()
    bad("bad_label", int((keep & ~valid).sum()))
    keep &= valid
    if not keep.any():
        return out

    ts = batch.predicted_at[keep]
    codes, starts = bucket_codes(ts, width)
    nb = len(starts)
    summaries = [out.setdefault(s, BucketSummary()) for s in starts]
    labeled_at = batch.labeled_at[keep]
    newest = labeled_at.groupby(codes).max()
    lag = (labeled_at - ts).dt.total_seconds().to_numpy(dtype=float)
    lag_ok = np.isfinite(lag)
    lag_grid = grid_counts(
        codes[lag_ok],
        np.searchsorted(LAG_EDGES_S, np.maximum(lag[lag_ok], 0), side="right"),
        nb,
        len(LAG_EDGES_S) + 1,
    )
    for i, summary in enumerate(summaries):
        latest = newest.iloc[i]
        summary.newest_label = latest.to_pydatetime() if pd.notna(latest) else None
        summary.lag_hist = [int(c) for c in lag_grid[i]]

    truth = labels[keep]
    score: np.ndarray | None = None
    if batch.score is not None:
        cleaned = batch.score[keep] if task == "regression" else probabilities(batch.score[keep])[0]
        score = cleaned.to_numpy(dtype=float)
    predicted = decisions(batch.decision, batch.score, task, threshold, batch.class_scores)
    pred = predicted[keep].fillna("?").to_numpy() if predicted is not None else None
    scores = batch.class_scores[keep] if not batch.class_scores.empty else None
    fold_labelled(summaries, codes, truth.to_numpy(), pred, score, task, scores)
    if reference is not None and not batch.features.empty:
        features = batch.features[keep] if not keep.all() else batch.features
        fold_slices(summaries, codes, features, reference, truth.to_numpy(), pred, score, task)
    if not batch.segments.empty:
        parts = split_segments(batch.segments[keep], codes, summaries, segment_values)
        for seg_codes, targets in parts:
            fold_labelled(targets, seg_codes, truth.to_numpy(), pred, score, task, scores)
    return out


def fold_labelled(
    summaries: list[BucketSummary],
    codes: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray | None,
    score: np.ndarray | None,
    task: str,
    class_scores: pd.DataFrame | None = None,
) -> None:
    """Add labelled rows to summaries[code]: confusion, score histograms, error sums; with
    a multiclass model's per-class scores, their one-vs-rest histograms and sums."""
    nb = len(summaries)
    counts = per_bucket(codes, nb)
    for i, summary in enumerate(summaries):
        summary.n_labelled += int(counts[i])
    if task == "regression":
        if score is not None:
            _fold_regression(summaries, codes, truth.astype(float), score)
        return
    if pred is not None:
        pairs = pd.Series(1, index=range(len(codes))).groupby([codes, truth, pred]).sum()
        for key, count in pairs.items():
            code, t, p = cast(tuple[int, str, str], key)
            confusion = summaries[int(code)].confusion
            confusion[f"{t}|{p}"] = confusion.get(f"{t}|{p}", 0) + int(count)
    if class_scores is not None and task == "multiclass_classification":
        fold_labelled_classes(summaries, codes, truth, class_scores)
    if score is None or task != "binary_classification":
        return
    finite = np.isfinite(score)
    for cls in ("0", "1"):
        mask = finite & (truth == cls)
        grid = grid_counts(codes[mask], score_bins(score[mask]), nb, SCORE_BINS)
        for i, summary in enumerate(summaries):
            if grid[i].any():
                summary.class_score_hist[cls] = [int(c) for c in grid[i]]
    y = (truth == "1").astype(float)
    p = np.clip(score, PROB_EPS, 1 - PROB_EPS)
    logloss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    brier = (score - y) ** 2
    sums = {
        "n": np.ones_like(y),
        "positives": y,
        "score": score,
        "logloss": logloss,
        "logloss_sq": logloss**2,
        "brier": brier,
        "brier_sq": brier**2,
    }
    for key, values in sums.items():
        totals = per_bucket(codes[finite], nb, values[finite])
        for i, summary in enumerate(summaries):
            if counts[i]:
                summary.prob_sums[key] = summary.prob_sums.get(key, 0.0) + float(totals[i])


def _fold_regression(
    summaries: list[BucketSummary], codes: np.ndarray, y: np.ndarray, pred: np.ndarray
) -> None:
    """Sums from which MAE, RMSE, MAPE, bias, R² and their intervals are exact."""
    nb = len(summaries)
    ok = np.isfinite(pred) & np.isfinite(y)
    err = pred - y
    nonzero = ok & (y != 0)
    ape = np.zeros_like(y)
    ape[nonzero] = np.abs(err[nonzero] / y[nonzero])
    ones = np.ones_like(y)
    sums = {
        "n": (ones, ok),
        "sum_err": (err, ok),
        "sum_abs_err": (np.abs(err), ok),
        "sum_sq_err": (err**2, ok),
        "sum_err4": (err**4, ok),
        "sum_y": (y, ok),
        "sum_y_sq": (y**2, ok),
        "n_ape": (ones, nonzero),
        "sum_ape": (ape, nonzero),
        "sum_ape_sq": (ape**2, nonzero),
    }
    for key, (values, mask) in sums.items():
        totals = per_bucket(codes[mask], nb, values[mask])
        for i, summary in enumerate(summaries):
            summary.regression[key] = summary.regression.get(key, 0.0) + float(totals[i])
