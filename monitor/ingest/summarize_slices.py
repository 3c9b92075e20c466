"""Per-slice counts for root-cause hints (`monitor.core.slices`).

Labels are folded into the buckets of their predictions' times; the prediction's feature
values come with the label (the label read joins them, as it joins score and segments), so
each labelled row lands in its feature slices. Per (bucket, feature, slice), labels part:
correct rows and, for binary classification with a score, per-class score bins on the
reference score's tertiles (`slice_labels`; without a score: labelled and correct rows in
`slices`). Predictions part, binary with a score: every prediction's score on the same bins
(`slice_scores`), what label-free hints need. All counts, so buckets merge exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.core.reference import SCORE_COLUMN, ReferenceSummary, category_strings
from monitor.core.slices import (
    NUMERIC_SLICE_WIDTH,
    SLICE_SCORE_BINS,
    score_edges,
    slice_keys,
    trimmed,
)
from monitor.core.summaries import BucketSummary


def slice_codes(
    name: str, column: pd.Series, reference: ReferenceSummary
) -> tuple[np.ndarray, list[str]]:
    """Each row's slice index within the feature, and the slices' keys."""
    if name in reference.numeric:
        edges = np.asarray(reference.numeric[name].edges, dtype=float)
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        keys = slice_keys(reference, name)
        k = len(keys) - 1
        grouped = np.searchsorted(edges, values, side="right") // NUMERIC_SLICE_WIDTH
        numeric_codes = np.where(np.isfinite(values), np.minimum(grouped, k - 1), k)
        return numeric_codes.astype(np.int64), keys
    keys = slice_keys(reference, name)
    index = {value: i for i, value in enumerate(keys[:-2])}
    other, missing = len(keys) - 2, len(keys) - 1
    # hash the raw values once and turn only the distinct ones into text, as the category
    # counts do (`summarize._fold_categorical`)
    raw_codes, uniques = pd.factorize(column.to_numpy())  # missing values get -1
    text = category_strings(pd.Series(uniques))
    lookup = np.full(len(uniques) + 1, missing, dtype=np.int64)  # the last: missing
    positions = text.index.to_numpy(dtype=np.int64)
    lookup[positions] = [index.get(value, other) for value in text.tolist()]
    return lookup[np.where(raw_codes >= 0, raw_codes, len(uniques))], keys


def slice_score_bins(score: np.ndarray, reference: ReferenceSummary) -> np.ndarray:
    """Each score's bin among the reference score's tertiles (NaN: bin 0, callers mask it)."""
    fitted = reference.numeric.get(SCORE_COLUMN)
    edges = np.asarray(score_edges(fitted.edges if fitted else None))
    return np.asarray(np.searchsorted(edges, np.nan_to_num(score), side="right"))


def _features(features: pd.DataFrame, reference: ReferenceSummary) -> list[str]:
    return [
        name
        for name in (*reference.numeric, *reference.categorical)
        if not name.startswith("@") and name in features
    ]


def _store(
    summaries: list[BucketSummary], field: str, name: str, block: np.ndarray, trim: bool = True
) -> None:
    """Add each bucket's flat per-slice counts to its summary; trailing zeros are dropped
    except in `slices`, whose readers infer the width from the full length (old buckets)."""
    for i, summary in enumerate(summaries):
        full = [int(x) for x in block[i].ravel()]
        row = trimmed(full) if trim else full
        if not any(row):
            continue
        target: dict[str, list[int]] = getattr(summary, field)
        old = target.get(name)
        if old is None:
            target[name] = row
            continue
        size = max(len(old), len(row))
        total = [a + b for a, b in zip(_pad(old, size), _pad(row, size), strict=True)]
        target[name] = trimmed(total) if trim else total


def _pad(counts: list[int], size: int) -> list[int]:
    return counts + [0] * (size - len(counts))


def fold_slices(
    summaries: list[BucketSummary],
    codes: np.ndarray,
    features: pd.DataFrame,
    reference: ReferenceSummary,
    truth: np.ndarray,
    pred: np.ndarray | None,
    score: np.ndarray | None,
    task: str,
) -> None:
    """Add the labelled rows' per-slice counts of every reference feature to their buckets."""
    if features.empty or task == "regression":
        return
    nb = len(summaries)
    correct = (truth == pred).astype(float) if pred is not None else np.zeros(truth.size)
    scored = score is not None and task == "binary_classification"
    if scored:
        assert score is not None
        finite = np.isfinite(score)
        cell = (truth == "1").astype(np.int64) * SLICE_SCORE_BINS + slice_score_bins(
            score, reference
        )
    for name in _features(features, reference):
        rows, keys = slice_codes(name, features[name], reference)
        ns = len(keys)
        combined = codes * ns + rows
        if not scored:
            right = np.bincount(combined, weights=correct, minlength=nb * ns).reshape(nb, ns)
            labelled = np.bincount(combined, minlength=nb * ns).reshape(nb, ns)
            block = np.stack([labelled, right], axis=2).astype(np.int64)
            _store(summaries, "slices", name, block, trim=False)
            continue
        # rows without a finite score are in no bin, so neither in the derived labelled count
        # nor among the correct ones: a slice's accuracy is over its scored labelled rows
        right = np.bincount(combined[finite], weights=correct[finite], minlength=nb * ns).reshape(
            nb, ns
        )
        width = 2 * SLICE_SCORE_BINS
        flat = combined[finite] * width + cell[finite]
        grid = np.bincount(flat, minlength=nb * ns * width).reshape(nb, ns, width)
        block = np.concatenate([right[..., None], grid], axis=2).astype(np.int64)
        _store(summaries, "slice_labels", name, block)


def fold_slice_scores(
    summaries: list[BucketSummary],
    codes: np.ndarray,
    features: pd.DataFrame,
    reference: ReferenceSummary,
    score: np.ndarray,
) -> None:
    """Add every prediction's score bin per feature slice (binary with a score) to its
    bucket: the per-slice score distribution label-free hints split."""
    if features.empty:
        return
    nb = len(summaries)
    finite = np.isfinite(score)
    sbin = slice_score_bins(score, reference)[finite]
    for name in _features(features, reference):
        rows, keys = slice_codes(name, features[name], reference)
        ns = len(keys)
        flat = ((codes * ns + rows) * SLICE_SCORE_BINS)[finite] + sbin
        grid = np.bincount(flat, minlength=nb * ns * SLICE_SCORE_BINS)
        _store(summaries, "slice_scores", name, grid.reshape(nb, ns, SLICE_SCORE_BINS))
