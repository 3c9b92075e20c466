"""Per-slice counts of labelled rows for root-cause hints (`monitor.core.slices`).

Labels are folded into the buckets of their predictions' times; the prediction's feature
values come with the label (the label read joins them, as it joins score and segments), so
each labelled row lands in its feature slices. Per (bucket, feature, slice): labelled rows,
correct rows and, for binary classification with a score, coarse per-class score
histograms. All counts, so buckets merge exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.core.reference import ReferenceSummary, category_strings
from monitor.core.slices import (
    MISSING_SLICE,
    NUMERIC_SLICE_WIDTH,
    OTHER_SLICE,
    SLICE_SCORE_BINS,
    numeric_slice_count,
    top_categories,
)
from monitor.core.summaries import BucketSummary


def slice_codes(
    name: str, column: pd.Series, reference: ReferenceSummary
) -> tuple[np.ndarray, list[str]]:
    """Each row's slice index within the feature, and the slices' keys."""
    if name in reference.numeric:
        edges = np.asarray(reference.numeric[name].edges, dtype=float)
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        k = numeric_slice_count(reference.numeric[name].edges)
        grouped = np.searchsorted(edges, values, side="right") // NUMERIC_SLICE_WIDTH
        numeric_codes = np.where(np.isfinite(values), np.minimum(grouped, k - 1), k)
        return numeric_codes.astype(np.int64), [*(str(i) for i in range(k)), MISSING_SLICE]
    kept = top_categories(reference.categorical[name].counts)
    text = category_strings(column).reindex(column.index)
    index = {value: i for i, value in enumerate(kept)}
    other, missing = len(kept), len(kept) + 1
    present = text.notna().to_numpy()
    codes = np.full(len(text), missing, dtype=np.int64)
    codes[present] = text[present].map(index).fillna(other).to_numpy(dtype=np.int64)
    return codes, [*kept, OTHER_SLICE, MISSING_SLICE]


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
    hist: tuple[np.ndarray, np.ndarray] | None = None
    if score is not None and task == "binary_classification":
        finite = np.isfinite(score)
        sbin = np.clip(
            (np.nan_to_num(score) * SLICE_SCORE_BINS).astype(np.int64), 0, SLICE_SCORE_BINS - 1
        )
        hist = (finite, (truth == "1").astype(np.int64) * SLICE_SCORE_BINS + sbin)
    for name in (*reference.numeric, *reference.categorical):
        if name.startswith("@") or name not in features:
            continue
        rows, keys = slice_codes(name, features[name], reference)
        ns = len(keys)
        combined = codes * ns + rows
        labelled = np.bincount(combined, minlength=nb * ns).reshape(nb, ns)
        right = np.bincount(combined, weights=correct, minlength=nb * ns).reshape(nb, ns)
        grid = None
        if hist is not None:
            finite, cell = hist
            width = 2 * SLICE_SCORE_BINS
            flat = combined[finite] * width + cell[finite]
            grid = np.bincount(flat, minlength=nb * ns * width).reshape(nb, ns, width)
        for i, summary in enumerate(summaries):
            used = np.flatnonzero(labelled[i])
            if used.size == 0:
                continue
            target = summary.slices.setdefault(name, {})
            for j in used:
                counts = [int(labelled[i, j]), int(right[i, j])]
                if grid is not None:
                    counts += [int(c) for c in grid[i, j]]
                old = target.get(keys[j])
                target[keys[j]] = (
                    counts if old is None else [a + b for a, b in zip(old, counts, strict=True)]
                )
