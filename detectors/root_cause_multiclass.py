"""Root-cause hints for a multiclass model's label-free estimates, split by segment.

Multiclass CBPE (`detectors.estimated.multiclass_estimates`) reads, per class, the class's
score over the predictions decided as it (`class|1`) and over the others (`class|0`), through
the class's calibration map fitted on the labelled reference. Segments keep those histograms
per segment value (`monitor.ingest.summarize_classes.fold_segment_class_scores`), so the
estimate splits over a segment column's values with the arithmetic of the binary estimates
(`detectors.root_cause_estimated`), and the column's total is the estimate itself:

- estimated accuracy: per value, expected correct rows sum_k sum_b decided_k[b] c_k[b]
  over its scored rows; a ratio metric, split by `detectors.attribution.attribute`;
- estimated ROC AUC of one class (`feature="class=X"`): per value, expected positives
  n_b c_k[b] and negatives n_b (1 - c_k[b]) of that class's score, split by the pair
  decomposition of `detectors.attribution_auc`;
- the macro estimated ROC AUC (the classes' mean): the mean of the classes' splits, slice by
  slice, so its parts still add up to the macro change exactly.

**Feature slices are not split** for multiclass estimates: per feature slice the summaries
keep labelled and correct rows, not the per-class score histograms an estimate needs (K
classes x 2 x bins per slice, against 3 counts per slice for a binary model; the per-slice
storage is budgeted in bench/attribution_bench.py). Without a segment column, a breaching
multiclass estimate says so in one line (`NO_SPLIT`) instead of carrying no hints.

The "before" is the reference's folded rows (`monitor.ingest.fit_quality` folds the class
scores too); a reference fitted before that has none, and the window before is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from detectors.attribution import Attribution, SliceContribution, SliceCounts, attribute
from detectors.attribution_auc import SliceScores, attribute_auc
from detectors.estimated import calibrate
from detectors.ranking import ovr_hists, roc_auc_from_hists
from detectors.root_cause import MIN_SLICE_ROWS
from monitor.core.reference import ReferenceSummary
from monitor.core.summaries import BucketSummary

NO_SPLIT = (
    "no slice split: a multiclass model's estimates are split by segment only (segments keep"
    " per-class scores, feature slices do not), and this model has no segment column"
)

Classes = dict[str, tuple[np.ndarray, np.ndarray]]
"""Per class: its score's histogram over the rows decided as it, and over the others."""


def calibrations(reference: ReferenceSummary) -> dict[str, np.ndarray] | None:
    """Each class's calibration map, as the estimator fits it; None if any class has none."""
    out = {
        cls: calibrate(pos, neg) for cls, (pos, neg) in ovr_hists(reference.ovr_score_hist).items()
    }
    maps = {cls: c for cls, c in out.items() if c is not None}
    return maps if maps and len(maps) == len(out) else None


def class_of(feature: str | None) -> str | None:
    """The class of a per-class value's feature label (`class=X`, or `region=EU/class=X`)."""
    last = (feature or "").rpartition("/")[2]
    return last.partition("=")[2] if last.startswith("class=") else None


def _segments(summary: BucketSummary) -> dict[str, dict[str, tuple[int, Classes]]]:
    out: dict[str, dict[str, tuple[int, Classes]]] = {}
    for key, seg in summary.segments.items():
        if seg.scores_hist:
            column, _, value = key.partition("=")
            out.setdefault(column, {})[value] = (seg.n, ovr_hists(seg.scores_hist))
    return out


def explain_multiclass_estimated(
    split: str,
    before: BucketSummary,
    now: BucketSummary,
    reference: ReferenceSummary,
    cls: str | None = None,
) -> list[Attribution]:
    """The split of a multiclass estimate's change (`split`: "accuracy" or "roc_auc", of
    class `cls` or the macro mean) over every segment column with per-class scores on both
    sides."""
    maps = calibrations(reference)
    if maps is None:
        return []
    old, new = _segments(before), _segments(now)
    out = []
    for column in sorted(set(old) & set(new)):
        try:
            if split == "accuracy":
                result: Attribution | None = _accuracy(column, old[column], new[column], maps)
            elif cls is not None:
                result = _auc(column, old[column], new[column], maps, cls)
            else:
                result = _macro_auc(column, old[column], new[column], maps)
        except ValueError:
            result = None
        if result is not None and result.change:
            out.append(result)
    return out


def _accuracy(
    column: str,
    before: dict[str, tuple[int, Classes]],
    now: dict[str, tuple[int, Classes]],
    maps: dict[str, np.ndarray],
) -> Attribution | None:
    def counts(side: dict[str, tuple[int, Classes]]) -> dict[str, SliceCounts] | None:
        out = {}
        for value, (n, classes) in side.items():
            if set(classes) != set(maps):
                return None
            rows = max(float((d + r).sum()) for d, r in classes.values())
            correct = sum(float(d @ maps[c]) for c, (d, _) in classes.items())
            out[value] = SliceCounts(n, min(correct, rows), rows)
        return out

    a, b = counts(before), counts(now)
    if a is None or b is None:
        return None
    return attribute(column, a, b, metric="estimated accuracy", min_count=MIN_SLICE_ROWS)


def _auc(
    column: str,
    before: dict[str, tuple[int, Classes]],
    now: dict[str, tuple[int, Classes]],
    maps: dict[str, np.ndarray],
    cls: str,
) -> Attribution | None:
    c = maps.get(cls)
    if c is None:
        return None

    def scores(side: dict[str, tuple[int, Classes]]) -> dict[str, SliceScores]:
        out = {}
        for value, (n, classes) in side.items():
            d, r = classes.get(cls, (np.zeros_like(c), np.zeros_like(c)))
            h = d + r
            out[value] = SliceScores(n, tuple((h * (1 - c)).tolist()), tuple((h * c).tolist()))
        return out

    result = attribute_auc(column, scores(before), scores(now), min_count=MIN_SLICE_ROWS)
    return replace(result, metric=f"estimated roc_auc (class {cls})")


def _macro_auc(
    column: str,
    before: dict[str, tuple[int, Classes]],
    now: dict[str, tuple[int, Classes]],
    maps: dict[str, np.ndarray],
) -> Attribution | None:
    """The classes' splits averaged slice by slice (every class must split the same
    slices, which it does: pooling goes by rows, the same for every class)."""
    parts = [_auc(column, before, now, maps, cls) for cls in sorted(maps)]
    usable = [p for p in parts if p is not None]
    if not usable or len(usable) < len(parts):
        return None
    names = [sorted(s.value for s in p.slices) for p in usable]
    if any(n != names[0] for n in names):
        return None
    slices = []
    for value in names[0]:
        mine = [next(s for s in p.slices if s.value == value) for p in usable]
        slices.append(
            SliceContribution(
                mine[0].dimension,
                value,
                mine[0].traffic_before,
                mine[0].traffic_now,
                _mean([s.metric_before for s in mine]),
                _mean([s.metric_now for s in mine]),
                float(np.mean([s.mix for s in mine])),
                float(np.mean([s.performance for s in mine])),
            )
        )
    slices.sort(key=lambda s: (-abs(s.contribution), s.value))
    before_auc = float(np.mean([p.before for p in usable]))
    now_auc = float(np.mean([p.now for p in usable]))
    return Attribution("estimated macro roc_auc", before_auc, now_auc, tuple(slices))


def _mean(values: list[float | None]) -> float | None:
    """The classes' mean metric in a slice, None unless every class has one."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known and len(known) == len(values) else None


def multiclass_rest(
    split: str, reference: ReferenceSummary, cls: str | None
) -> Callable[[BucketSummary, str, str], float | None]:
    """For a `segment_by` multiclass estimate: the estimate of the column's other values
    pooled (their per-class histograms summed), the comparison line of
    `detectors.root_cause_scope.segment_hints`."""
    maps = calibrations(reference)

    def rest(summary: BucketSummary, column: str, value: str) -> float | None:
        pooled = BucketSummary()
        for key, seg in summary.segments.items():
            col, _, other = key.partition("=")
            if col == column and other != value:
                pooled.merge_into(seg)
        if maps is None or not pooled.scores_hist:
            return None
        classes = ovr_hists(pooled.scores_hist)
        if split == "accuracy":
            rows = max(float((d + r).sum()) for d, r in classes.values())
            correct = sum(float(d @ maps[c]) for c, (d, _) in classes.items() if c in maps)
            return correct / rows if rows else None
        aucs = []
        for c, (d, r) in classes.items():
            if (cls is None or c == cls) and c in maps:
                h = d + r
                aucs.append(roc_auc_from_hists(h * maps[c], h * (1 - maps[c])))
        known = [a for a in aucs if a is not None]
        return float(np.mean(known)) if known and len(known) == len(aucs) else None

    return rest
