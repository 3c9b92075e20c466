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
- labels part, binary classification with a score (`BucketSummary.slice_labels`): per slice
  the correctly decided rows, then the labelled rows' scores on `SLICE_SCORE_BINS` bins, the
  negatives' bins first, then the positives'. The labelled count is their sum, not stored;
- predictions part, binary classification with a score (`BucketSummary.slice_scores`): per
  slice the scores of *all* predictions (labelled or not) on the same bins: what the
  label-free (estimated) hints read;
- other tasks, or no score: per slice labelled and correct rows (`BucketSummary.slices`,
  the layout of before, kept as it was).

A feature's slices are stored one after the other in one flat list, in the order of
`slice_keys` (no key per slice: the keys are what cost most in the stored JSON), so a bucket
merge is a plain list sum. A list's trailing zeros are dropped (an all-zero `(missing)` or
`(other)` slice costs nothing): a slice's position is fixed by the reference's slice keys and
the fixed width per slice, so a shorter list merges with a longer one by padding zeros
(`summaries._add_lists`). In the stored JSON these two fields are comma-joined text, not JSON
lists (1 byte per count of separator instead of 2); in memory they are lists.

The bins are the reference's score tertiles (equal mass, so three bins keep what
equal-width bins would waste on empty score ranges); that is enough for a per-slice ROC AUC
and the pair decomposition in `detectors.attribution_auc`, at a storage cost measured in
bench/README.md ("Root-cause hints"). Buckets written before this layout (quartile bins and
a labelled count per slice in `slices`) still load and merge; `detectors.root_cause` reads
them only where no bucket of the new layout is in the window.

Traffic per slice needs nothing new: it is the feature's reference-bin or category counts.
"""

from __future__ import annotations

import math

from monitor.core.reference import ReferenceSummary

SLICE_SCORE_BINS = 3
"""Score bins per class in a feature slice: the reference's score tertiles (segments keep
their full 100-bin histograms)."""
OLD_SLICE_SCORE_BINS = 4
"""Quartile bins of the buckets written before `slice_labels` (the `slices` field)."""
NUMERIC_SLICE_WIDTH = 4
"""Reference bins per numeric slice: 20 ventiles -> 5 quintile slices."""
TOP_CATEGORIES = 5
"""Categories kept as their own slice; the rest pool as `(other)`."""
LABELLED, CORRECT, HIST = 0, 1, 2
"""Positions in a `slices` count list: labelled rows, correct rows, start of the histograms
(old buckets only)."""
LABEL_WIDTH = 1 + 2 * SLICE_SCORE_BINS
"""Counts per slice in `slice_labels`: correct rows, then negatives' and positives' bins."""
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


def score_edges(
    reference_score_edges: list[float] | None, bins: int = SLICE_SCORE_BINS
) -> list[float]:
    """The inner edges of the slice score bins: the reference score's tertiles (quartiles for
    old buckets' `bins=4`), read off its ventile edges; equal-width bins of [0, 1] without a
    fitted score."""
    edges = reference_score_edges or []
    if len(edges) < bins - 1:
        return [k / bins for k in range(1, bins)]
    step = (len(edges) + 1) / bins
    return [edges[round(k * step) - 1] for k in range(1, bins)]


def trimmed(counts: list[int]) -> list[int]:
    """The list without its trailing zeros (positions are fixed, so zeros at the end say
    nothing a shorter list does not)."""
    end = len(counts)
    while end and not counts[end - 1]:
        end -= 1
    return counts if end == len(counts) else counts[:end]


def padded(counts: list[int], size: int) -> list[int]:
    """A trimmed list back to its full length."""
    return counts + [0] * (size - len(counts)) if len(counts) < size else counts[:size]


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
