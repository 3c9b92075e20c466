"""Folds a multiclass model's per-class scores (`scores: {class: column}`) into summaries.

Every prediction adds each class's score to that class's histogram (`scores_hist`, split by
whether the row was decided as that class: what the label-free estimates read); every
labelled row adds each class's score to the one-vs-rest histogram of its truth
(`ovr_score_hist`, `class|1` for rows of the class, `class|0` for the others), and its log
loss and Brier score to `prob_sums`. All are counts or sums on the fixed SCORE_BINS bins, so
buckets merge exactly, like the binary score histograms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.core.slices import padded, trimmed
from monitor.core.summaries import SCORE_BINS, BucketSummary, ovr_key
from monitor.ingest.bucketing import grid_counts, per_bucket
from monitor.ingest.classes import most_likely, probabilities, score_bins

PROB_EPS = 1e-15
"""Scores are clipped to [eps, 1 - eps] for log loss, as scikit-learn does."""


def class_score_matrix(scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows x classes scores with unusable ones as NaN, rows with a missing score, rows with
    a score outside [0, 1]): a probability of 1e154 must not become a Brier score of 1e308."""
    columns = [probabilities(scores[c]) for c in scores.columns]
    matrix = np.column_stack([c.to_numpy(dtype=float) for c, _ in columns])
    outside = np.asarray(np.column_stack([o for _, o in columns]).any(axis=1))
    missing = np.asarray(~np.isfinite(matrix).all(axis=1) & ~outside)
    return matrix, missing, outside


def fold_class_scores(
    summaries: list[BucketSummary],
    codes: np.ndarray,
    scores: pd.DataFrame,
    decision: pd.Series | None,
) -> None:
    """Per class, its score over the predictions decided as that class (`class|1`) and over
    the others (`class|0`), as `decisions` decides (logged, else the most likely class). A row
    with a missing or out-of-range class score is counted once, as `nan_class_score` or
    `class_score_out_of_range`."""
    nb = len(summaries)
    matrix, missing, outside = class_score_matrix(scores)
    for reason, rows in (("nan_class_score", missing), ("class_score_out_of_range", outside)):
        counts = per_bucket(codes[rows], nb)
        for i, summary in enumerate(summaries):
            if counts[i]:
                summary.bad[reason] = summary.bad.get(reason, 0) + int(counts[i])
    _fold_decided(summaries, codes, matrix, scores, decision, trim=False)


def fold_segment_class_scores(
    targets: list[BucketSummary],
    codes: np.ndarray,
    scores: pd.DataFrame,
    decision: pd.Series | None,
) -> None:
    """Each segment value's `scores_hist` (as `fold_class_scores` folds the bucket's), so a
    multiclass `segment_by` estimate has a value per segment and an estimate's change splits
    by segment (`detectors.root_cause_multiclass`). Trailing empty bins are not kept
    (`_add_lists` pads on merge); rows with an unusable score are counted at bucket level."""
    matrix, _, _ = class_score_matrix(scores)
    _fold_decided(targets, codes, matrix, scores, decision, trim=True)


def _fold_decided(
    summaries: list[BucketSummary],
    codes: np.ndarray,
    matrix: np.ndarray,
    scores: pd.DataFrame,
    decision: pd.Series | None,
    *,
    trim: bool,
) -> None:
    nb = len(summaries)
    classes = [str(c) for c in scores.columns]
    decided = decision if decision is not None else most_likely(scores)
    predicted = decided.fillna("").to_numpy(dtype=object)
    for j, cls in enumerate(classes):
        ok = np.isfinite(matrix[:, j])
        for positive in (True, False):
            mask = ok & ((predicted == cls) == positive)
            grid = grid_counts(codes[mask], score_bins(matrix[mask, j]), nb, SCORE_BINS)
            key = ovr_key(cls, positive)
            for i, summary in enumerate(summaries):
                row = [int(c) for c in grid[i]]
                if trim:
                    old = summary.scores_hist.get(key, [])
                    row = trimmed(
                        [a + b for a, b in zip(padded(old, SCORE_BINS), row, strict=True)]
                    )
                    if not row:
                        continue
                summary.scores_hist[key] = row


def fold_labelled_classes(
    summaries: list[BucketSummary], codes: np.ndarray, truth: np.ndarray, scores: pd.DataFrame
) -> None:
    """One-vs-rest histograms per class, and log loss and Brier sums over the rows whose
    every class score is usable and whose truth is one of the scored classes (a label of a
    class the model gives no score is a negative for every class, but has no log loss)."""
    nb = len(summaries)
    matrix, _, _ = class_score_matrix(scores)
    classes = [str(c) for c in scores.columns]
    for j, cls in enumerate(classes):
        ok = np.isfinite(matrix[:, j])
        for positive in (True, False):
            mask = ok & ((truth == cls) == positive)
            grid = grid_counts(codes[mask], score_bins(matrix[mask, j]), nb, SCORE_BINS)
            key = ovr_key(cls, positive)
            for i, summary in enumerate(summaries):
                if grid[i].any():
                    summary.ovr_score_hist[key] = [int(c) for c in grid[i]]
    onehot = np.column_stack([truth == cls for cls in classes]).astype(float)
    usable = np.isfinite(matrix).all(axis=1) & onehot.any(axis=1)
    p, y = matrix[usable], onehot[usable]
    logloss = -np.log(np.clip((p * y).sum(axis=1), PROB_EPS, 1 - PROB_EPS))
    brier = ((p - y) ** 2).sum(axis=1)
    sums = {
        "n": np.ones(len(p)),
        "logloss": logloss,
        "logloss_sq": logloss**2,
        "brier": brier,
        "brier_sq": brier**2,
    }
    rows = codes[usable]
    scored = per_bucket(rows, nb)
    for key, values in sums.items():
        totals = per_bucket(rows, nb, values)
        for i, summary in enumerate(summaries):
            if scored[i]:
                summary.prob_sums[key] = summary.prob_sums.get(key, 0.0) + float(totals[i])
