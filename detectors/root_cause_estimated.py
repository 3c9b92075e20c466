"""Root-cause hints for label-free estimates: which slices explain an estimated drop.

An estimated metric (CBPE, `detectors.estimated`) is a function of the window's score
histogram through a calibration map fitted on the labelled reference: each score bin b
holds n_b predictions, of which c_b are expected positive. Per slice, the same holds on the
slice's own score histogram, over *all* its predictions (labelled or not), so the estimate
splits over slices with the arithmetic of the realised metrics:

- estimated accuracy (also for estimated precision, recall and F1, driven by the same
  expected wrong decisions): per slice, expected correct rows sum_b n_b q_b with q_b = c_b
  where the bin is decided positive, 1 - c_b where not; a ratio metric, split by
  `detectors.attribution.attribute` (exact shift-share);
- estimated ROC AUC: per slice, expected positives n_b c_b and negatives n_b (1 - c_b) per
  bin, split by the pair decomposition of `detectors.attribution_auc`.

Mix and performance sum to the total change exactly, as for realised metrics. Segments keep
the window's 100-bin score histogram per value (`BucketSummary.segments`, predictions part),
so their split uses the estimator's very calibration and their total is the estimate itself.
Features keep three score bins per slice (`BucketSummary.slice_scores`); a coarse bin's
calibration is the reference-weighted mean of the fine bins' within it, i.e. scores inside
a tertile are taken as spread as in the reference: an approximation, named "estimated" in
the line as the metric is. Multiclass estimates are split by segment only
(`detectors.root_cause_multiclass`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from detectors.attribution import Attribution, SliceCounts, attribute
from detectors.attribution_auc import SliceScores, attribute_auc
from detectors.estimated import calibration_map
from detectors.ranking import roc_auc_from_hists
from detectors.root_cause import MIN_SLICE_ROWS, slice_traffic
from detectors.root_cause_multiclass import explain_multiclass_estimated, multiclass_rest
from monitor.core.reference import SCORE_COLUMN, ReferenceSummary
from monitor.core.slices import SLICE_SCORE_BINS, padded, score_edges, slice_keys
from monitor.core.summaries import SCORE_BINS, BucketSummary

ESTIMATED_SPLITS = {
    "estimated.roc_auc": "roc_auc",
    "estimated.accuracy": "accuracy",
    "estimated.precision": "accuracy",
    "estimated.recall": "accuracy",
    "estimated.f1": "accuracy",
}

Histograms = dict[str, dict[str, tuple[int, np.ndarray]]]
"""Per dimension, per slice: (rows seen, score bin counts of the scored predictions)."""


def estimated_split(metric: str) -> str | None:
    """The estimated metric whose change is split for an alert on `metric`, None if none."""
    return ESTIMATED_SPLITS.get(metric)


def has_score_slices(summary: BucketSummary) -> bool:
    """Whether a summary holds per-slice scores of its predictions (a reference folded
    before they existed does not: the hints then compare with the window before)."""
    return bool(summary.slice_scores) or any(
        s.score_hist or s.scores_hist for s in summary.segments.values()
    )


def _bins(summary: BucketSummary, reference: ReferenceSummary) -> Histograms:
    """Segment values on SCORE_BINS bins, feature slices on SLICE_SCORE_BINS bins."""
    out: Histograms = {}
    for key, seg in summary.segments.items():
        if not seg.score_hist:
            continue
        column, _, value = key.partition("=")
        out.setdefault(column, {})[value] = (
            seg.n,
            np.asarray(padded(seg.score_hist, SCORE_BINS), dtype=float),
        )
    segments = set(out)
    for name, flat in summary.slice_scores.items():
        if name in segments or (
            name not in reference.numeric and name not in reference.categorical
        ):
            continue
        keys = slice_keys(reference, name)
        if len(flat) > len(keys) * SLICE_SCORE_BINS:
            continue  # another reference's slices
        grid = np.asarray(padded(flat, len(keys) * SLICE_SCORE_BINS), dtype=float)
        traffic, labels = slice_traffic(summary, reference, name)
        out[name] = {
            labels.get(key, key): (traffic.get(key, 0), grid.reshape(len(keys), -1)[i])
            for i, key in enumerate(keys)
        }
    return out


def _calibrations(
    reference: ReferenceSummary, threshold: float
) -> dict[int, tuple[np.ndarray, np.ndarray]] | None:
    """Per bin count (100 for segments, 3 for feature slices): P(positive) and P(correct
    decision) per bin. The coarse bins average the fine ones, weighted by the reference's
    labelled scores within them."""
    c = calibration_map(reference)
    if c is None:
        return None
    decided = np.arange(SCORE_BINS) / SCORE_BINS >= threshold - 1e-12
    q = np.where(decided, c, 1 - c)
    weights = np.add(
        reference.class_score_hist.get("0", [0] * SCORE_BINS),
        reference.class_score_hist.get("1", [0] * SCORE_BINS),
    ).astype(float)
    fitted = reference.numeric.get(SCORE_COLUMN)
    edges = np.asarray(score_edges(fitted.edges if fitted else None))
    coarse = np.searchsorted(edges, (np.arange(SCORE_BINS) + 0.5) / SCORE_BINS, side="right")
    cc, cq = np.zeros(SLICE_SCORE_BINS), np.zeros(SLICE_SCORE_BINS)
    for b in range(SLICE_SCORE_BINS):
        inside = coarse == b
        w = weights[inside] if weights[inside].sum() > 0 else np.ones(int(inside.sum()))
        if w.size:
            cc[b], cq[b] = np.average(c[inside], weights=w), np.average(q[inside], weights=w)
    return {SCORE_BINS: (c, q), SLICE_SCORE_BINS: (cc, cq)}


def explain_estimated(
    metric: str,
    before: BucketSummary,
    now: BucketSummary,
    reference: ReferenceSummary,
    threshold: float,
    cls: str | None = None,
) -> list[Attribution]:
    """The split of an estimated metric's change over every dimension with per-slice scores
    on both sides (see the module docstring); a multiclass model's (per class `cls` or macro)
    over its segment columns only."""
    split = estimated_split(metric)
    if split is not None and reference.ovr_score_hist:
        return explain_multiclass_estimated(split, before, now, reference, cls)
    calibrations = None
    if split is not None and not reference.ovr_score_hist:
        calibrations = _calibrations(reference, threshold)
    if split is None or calibrations is None:
        return []
    old, new = _bins(before, reference), _bins(now, reference)
    out = []
    for dimension in sorted(set(old) & set(new)):
        a, b = old[dimension], new[dimension]
        sizes = {h.size for _, h in (*a.values(), *b.values())}
        if len(sizes) != 1:
            continue
        calibration = calibrations[sizes.pop()]
        result = _split(split, dimension, a, b, calibration)
        if result is not None and result.change:
            out.append(result)
    return out


def estimated_rest(
    metric: str, reference: ReferenceSummary, threshold: float, cls: str | None = None
) -> Callable[[BucketSummary, str, str], float | None]:
    """For a `segment_by` estimate: the estimated metric of a segment column's other values
    pooled (their 100-bin score histograms summed, through the estimator's calibration), the
    comparison line of `detectors.root_cause_scope.segment_hints`."""
    split = estimated_split(metric)
    if split is not None and reference.ovr_score_hist:
        return multiclass_rest(split, reference, cls)
    calibrations = None if reference.ovr_score_hist else _calibrations(reference, threshold)

    def rest(summary: BucketSummary, column: str, value: str) -> float | None:
        if split is None or calibrations is None:
            return None
        c, q = calibrations[SCORE_BINS]
        h = np.zeros(SCORE_BINS)
        for key, seg in summary.segments.items():
            col, _, other = key.partition("=")
            if col == column and other != value and seg.score_hist:
                h += np.asarray(padded(seg.score_hist, SCORE_BINS), dtype=float)
        if h.sum() == 0:
            return None
        if split == "roc_auc":
            return roc_auc_from_hists(h * c, h * (1 - c))
        return float(h @ q / h.sum())

    return rest


def _split(
    split: str,
    dimension: str,
    before: dict[str, tuple[int, np.ndarray]],
    now: dict[str, tuple[int, np.ndarray]],
    calibration: tuple[np.ndarray, np.ndarray],
) -> Attribution | None:
    c, q = calibration
    try:
        if split == "roc_auc":

            def scores(side: dict[str, tuple[int, np.ndarray]]) -> dict[str, SliceScores]:
                return {
                    k: SliceScores(n, tuple((h * (1 - c)).tolist()), tuple((h * c).tolist()))
                    for k, (n, h) in side.items()
                }

            result = attribute_auc(dimension, scores(before), scores(now), min_count=MIN_SLICE_ROWS)
            return replace(result, metric="estimated roc_auc")

        def counts(side: dict[str, tuple[int, np.ndarray]]) -> dict[str, SliceCounts]:
            return {
                k: SliceCounts(n, min(float(h @ q), float(h.sum())), float(h.sum()))
                for k, (n, h) in side.items()
            }

        return attribute(
            dimension,
            counts(before),
            counts(now),
            metric="estimated accuracy",
            min_count=MIN_SLICE_ROWS,
        )
    except ValueError:
        return None
