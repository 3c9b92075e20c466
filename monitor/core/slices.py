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
- per slice, a run of counts: labelled rows, correctly decided rows, then (binary
  classification with a score) the labelled rows' scores on `SLICE_SCORE_BINS` bins, the
  negatives' bins first, then the positives'. A feature's slices are stored one after the
  other in one flat list, in the order of `slice_keys` (no key per slice: the keys are what
  cost most in the stored JSON), so a bucket merge is a plain list sum. The bins are the
  reference's score quartiles (equal mass, so four bins keep what equal-width bins would
  waste on empty score ranges); that is enough for the per-slice ROC AUC and the pair
  decomposition in `detectors.attribution_auc`, at a storage cost measured in
  bench/README.md ("Root-cause hints").

Traffic per slice needs nothing new: it is the feature's reference-bin or category counts.
"""

from __future__ import annotations

import math

from monitor.core.reference import ReferenceSummary

SLICE_SCORE_BINS = 4
"""Score bins per class in a feature slice: the reference's score quartiles (segments keep
their full 100-bin histograms)."""
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


def score_edges(reference_score_edges: list[float] | None) -> list[float]:
    """The inner edges of the slice score bins: the reference score's quartiles, read off its
    ventile edges; equal-width quarters of [0, 1] without a fitted score."""
    edges = reference_score_edges or []
    if len(edges) < SLICE_SCORE_BINS - 1:
        return [k / SLICE_SCORE_BINS for k in range(1, SLICE_SCORE_BINS)]
    step = (len(edges) + 1) / SLICE_SCORE_BINS
    return [edges[round(k * step) - 1] for k in range(1, SLICE_SCORE_BINS)]


def top_categories(counts: dict[str, int]) -> list[str]:
    """The reference's most common categories (ties by name, so every batch agrees)."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [name for name, _ in ranked[:TOP_CATEGORIES]]


def slice_keys(reference: ReferenceSummary, name: str) -> list[str]:
    """A feature's slices in their stored order: numeric ranges by index, or the top
    categories and `(other)`; missing values last."""
    if name in reference.numeric:
        count = numeric_slice_count(reference.numeric[name].edges)
        return [*(str(i) for i in range(count)), MISSING_SLICE]
    kept = top_categories(reference.categorical[name].counts)
    return [*kept, OTHER_SLICE, MISSING_SLICE]
