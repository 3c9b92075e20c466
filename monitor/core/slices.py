"""Slices for root-cause hints: which rows of a feature belong together, and the per-slice
counts kept in every labelled bucket.

Issue 15 ranks the slices that explain a quality drop: every configured segment value and
every feature's reference bin or category. Segments already carry full nested summaries
(`BucketSummary.segments`). For features, a bucket keeps per slice only what attribution
needs, and on coarse slices so the storage stays within budget (bench/attribution_bench.py
measures it):

- numeric features: the reference's ventiles grouped four by four (quintiles), so a slice
  is a range of the reference's own quantile edges; missing values are their own slice;
- categorical features: the reference's five most common categories, the rest `(other)`;
- per slice, a list: labelled rows, correctly decided rows, then (binary classification
  with a score) the labelled rows' scores on `SLICE_SCORE_BINS` equal bins of [0, 1], the
  negatives' bins first, then the positives'. That is enough for the per-slice ROC AUC and
  the pair decomposition in `detectors.attribution`.

Traffic per slice needs nothing new: it is the feature's reference-bin or category counts.
"""

from __future__ import annotations

import math

SLICE_SCORE_BINS = 10
"""Score bins per class in a feature slice (segments keep the full 100-bin histograms)."""
NUMERIC_SLICE_WIDTH = 4
"""Reference bins per numeric slice: 20 ventiles -> 5 quintile slices."""
TOP_CATEGORIES = 5
"""Categories kept as their own slice; the rest pool as `(other)`."""
LABELLED, CORRECT, HIST = 0, 1, 2
"""Positions in a slice's count list: labelled rows, correct rows, start of the histograms."""
MISSING_SLICE, OTHER_SLICE = "(missing)", "(other)"


def numeric_slice(bin_index: int) -> int:
    """The slice of a reference bin (bins are counted on `NumericReference.edges`)."""
    return bin_index // NUMERIC_SLICE_WIDTH


def numeric_slice_count(edges: list[float]) -> int:
    return numeric_slice(len(edges)) + 1


def numeric_slice_label(edges: list[float], index: int) -> str:
    """The slice's range in the feature's own units, e.g. `< 3.2`, `3.2–7.5`, `≥ 7.5`."""
    lo_edge = index * NUMERIC_SLICE_WIDTH - 1
    hi_edge = (index + 1) * NUMERIC_SLICE_WIDTH - 1
    low = edges[lo_edge] if 0 <= lo_edge < len(edges) else -math.inf
    high = edges[hi_edge] if 0 <= hi_edge < len(edges) else math.inf
    if low == -math.inf and high == math.inf:
        return "all"
    if low == -math.inf:
        return f"< {high:.4g}"
    if high == math.inf:
        return f"≥ {low:.4g}"
    return f"{low:.4g}–{high:.4g}"


def top_categories(counts: dict[str, int]) -> list[str]:
    """The reference's most common categories (ties by name, so every batch agrees)."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [name for name, _ in ranked[:TOP_CATEGORIES]]
