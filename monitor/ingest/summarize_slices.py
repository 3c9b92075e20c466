"""Per-slice counts of labelled rows for root-cause hints (`monitor.core.slices`).

Labels are folded into the buckets of their predictions' times; the prediction's feature
values come with the label (the label read joins them, as it joins score and segments), so
each labelled row lands in its feature slices. Per (bucket, feature, slice): labelled rows,
correct rows and, for binary classification with a score, per-class score histograms on
the reference score's quartiles. All counts, so buckets merge exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.core.reference import SCORE_COLUMN, ReferenceSummary, category_strings
from monitor.core.slices import NUMERIC_SLICE_WIDTH, SLICE_SCORE_BINS, score_edges, slice_keys
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
    kept = keys[:-2]
    text = category_strings(column).reindex(column.index)
    index = {value: i for i, value in enumerate(kept)}
    other, missing = len(kept), len(kept) + 1
    present = text.notna().to_numpy()
    codes = np.full(len(text), missing, dtype=np.int64)
    codes[present] = text[present].map(index).fillna(other).to_numpy(dtype=np.int64)
    return codes, keys


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
        fitted = reference.numeric.get(SCORE_COLUMN)
        edges = np.asarray(score_edges(fitted.edges if fitted else None))
        sbin = np.searchsorted(edges, np.nan_to_num(score), side="right")
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
        parts = [labelled[..., None], right[..., None], *([grid] if grid is not None else [])]
        block = np.concatenate(parts, axis=2).astype(np.int64)  # (buckets, slices, counts)
        for i, summary in enumerate(summaries):
            if not labelled[i].any():
                continue
            row = [int(x) for x in block[i].ravel()]
            old = summary.slices.get(name)
            summary.slices[name] = (
                row if old is None else [a + b for a, b in zip(old, row, strict=True)]
            )
