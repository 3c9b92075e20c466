"""Root-cause hints: which slices explain a quality change, read from merged summaries.

`detectors.attribution` (accuracy: exact shift-share) and `detectors.attribution_auc`
(ROC AUC: pair decomposition) do the arithmetic on one dimension's slices. This module
reads those slices out of two merged summaries (the reference period and now) and ranks
them across dimensions:

- every segment column (`BucketSummary.segments`, `column=value`): traffic, labelled and
  correct rows from the confusion counts, and the 100-bin per-class score histograms;
- every reference feature (`BucketSummary.slices`, see `monitor.core.slices`): traffic from
  the feature's reference-bin or category counts, the rest from the per-slice counts.

Which metric is split: accuracy for the threshold metrics (accuracy, precision, recall, F1
and their estimates are all driven by the same wrong decisions), ROC AUC for the ranking
metrics (roc_auc, pr_auc, log_loss, brier, ece). The line names the metric it splits.
Label-free estimates are split from the scores of every prediction instead, through the
estimate's own calibration (`detectors.root_cause_estimated`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from detectors.attribution import OTHER, Attribution, SliceContribution, SliceCounts, attribute
from detectors.attribution_auc import SliceScores, attribute_auc
from monitor.core.reference import SCORE_COLUMN, ReferenceSummary
from monitor.core.slices import (
    CORRECT,
    HIST,
    LABEL_WIDTH,
    LABELLED,
    MISSING_SLICE,
    OLD_SLICE_SCORE_BINS,
    SLICE_SCORE_BINS,
    numeric_slice,
    numeric_slice_count,
    numeric_slice_label,
    padded,
    score_edges,
    slice_keys,
    top_categories,
)
from monitor.core.summaries import BucketSummary

RANKING_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")
THRESHOLD_METRICS = ("accuracy", "precision", "recall", "f1", "macro_f1")
MIN_SLICE_ROWS = 30
"""Slices with fewer labelled rows on either side pool into `(other)`: never ranked on noise."""
TOP = 3


@dataclass(frozen=True)
class SliceData:
    """What one slice holds in one period."""

    count: int
    labelled: int
    correct: int
    negatives: tuple[int, ...] = ()
    positives: tuple[int, ...] = ()


def split_metric(metric: str) -> str | None:
    """The metric whose change is split for an alert on `metric`, None if none applies."""
    if metric in RANKING_METRICS:
        return "roc_auc"
    if metric in THRESHOLD_METRICS:
        return "accuracy"
    return None


def segment_slices(summary: BucketSummary) -> dict[str, dict[str, SliceData]]:
    """Per segment column, its values' slices."""
    out: dict[str, dict[str, SliceData]] = {}
    for key, seg in summary.segments.items():
        column, _, value = key.partition("=")
        correct = sum(c for k, c in seg.confusion.items() if k.split("|")[0] == k.split("|")[-1])
        out.setdefault(column, {})[value] = SliceData(
            seg.n,
            sum(seg.confusion.values()),
            correct,
            tuple(seg.class_score_hist.get("0", [])),
            tuple(seg.class_score_hist.get("1", [])),
        )
    return out


def feature_slices(
    summary: BucketSummary, reference: ReferenceSummary
) -> dict[str, dict[str, SliceData]]:
    """Per reference feature with per-slice counts, its slices, keyed by a readable label.

    `slice_labels` (this layout) is read where present; a summary that has only `slices`
    (tasks without a score, or buckets written before `slice_labels`) is read from it. A
    window holding both reads the new layout alone: old quartile bins do not add to tertiles."""
    out: dict[str, dict[str, SliceData]] = {}
    for name in dict.fromkeys((*summary.slice_labels, *summary.slices)):
        if name not in reference.numeric and name not in reference.categorical:
            continue
        keys = slice_keys(reference, name)
        rows = _slice_rows(summary, name, len(keys))
        if rows is None:
            continue  # counted on another reference's slices: not comparable
        traffic, labels = slice_traffic(summary, reference, name)
        out[name] = {
            labels.get(key, key): SliceData(traffic.get(key, 0), *row)
            for key, row in zip(keys, rows, strict=True)
        }
    return out


def _slice_rows(
    summary: BucketSummary, name: str, count: int
) -> list[tuple[int, int, tuple[int, ...], tuple[int, ...]]] | None:
    """Per slice (labelled, correct, negatives' bins, positives' bins), None if the stored
    list does not fit the reference's slices."""
    bins = SLICE_SCORE_BINS
    if name in summary.slice_labels:
        flat = summary.slice_labels[name]
        if len(flat) > count * LABEL_WIDTH:
            return None
        flat = padded(flat, count * LABEL_WIDTH)
        out = []
        for i in range(count):
            c = flat[i * LABEL_WIDTH : (i + 1) * LABEL_WIDTH]
            neg, pos = tuple(c[1 : 1 + bins]), tuple(c[1 + bins :])
            out.append((sum(neg) + sum(pos), c[0], neg, pos))
        return out
    flat = summary.slices[name]
    old = HIST + 2 * OLD_SLICE_SCORE_BINS
    width = old if len(flat) == old * count else HIST
    if len(flat) > width * count:
        return None
    flat = padded(flat, width * count)
    rows = []
    for i in range(count):
        c = flat[i * width : (i + 1) * width]
        hist = c[HIST:]
        rows.append(
            (
                c[LABELLED],
                c[CORRECT],
                tuple(hist[:OLD_SLICE_SCORE_BINS]),
                tuple(hist[OLD_SLICE_SCORE_BINS:]),
            )
        )
    return rows


def slice_traffic(
    summary: BucketSummary, reference: ReferenceSummary, name: str
) -> tuple[dict[str, int], dict[str, str]]:
    """Rows per slice key (from the bin or category counts) and each key's readable label."""
    traffic: dict[str, int] = {}
    missing = summary.missing.get(name, 0)
    if missing:
        traffic[MISSING_SLICE] = missing
    if name in reference.numeric:
        edges = reference.numeric[name].edges
        last = numeric_slice_count(edges) - 1
        for i, count in enumerate(summary.numeric.get(name, [])):
            key = str(min(numeric_slice(i), last))
            traffic[key] = traffic.get(key, 0) + count
        labels = {str(k): numeric_slice_label(edges, k) for k in range(last + 1)}
        return traffic, labels
    kept = (
        set(top_categories(reference.categorical[name].counts))
        if name in (reference.categorical)
        else set()
    )
    for category, count in summary.categorical.get(name, {}).items():
        key = category if category in kept else OTHER
        traffic[key] = traffic.get(key, 0) + count
    return traffic, {}


def _attribute(
    metric: str, dimension: str, before: dict[str, SliceData], now: dict[str, SliceData]
) -> Attribution | None:
    """One dimension's split, None when a side has nothing to split (no labelled rows, or
    for ROC AUC no positives or no negatives)."""
    try:
        if metric == "roc_auc":
            sizes = {len(s.positives) for s in (*before.values(), *now.values()) if s.positives}
            if len(sizes) != 1:  # no histograms, or old quartiles against new tertiles
                return None
            bins = sizes.pop()
            return attribute_auc(
                dimension, _scores(before, bins), _scores(now, bins), min_count=MIN_SLICE_ROWS
            )
        return attribute(
            dimension, _counts(before), _counts(now), metric=metric, min_count=MIN_SLICE_ROWS
        )
    except ValueError:
        return None


def _scores(data: dict[str, SliceData], bins: int) -> dict[str, SliceScores]:
    def pad(hist: tuple[int, ...]) -> tuple[int, ...]:
        return hist + (0,) * (bins - len(hist))

    return {k: SliceScores(s.count, pad(s.negatives), pad(s.positives)) for k, s in data.items()}


def _counts(data: dict[str, SliceData]) -> dict[str, SliceCounts]:
    return {k: SliceCounts(s.count, float(s.correct), float(s.labelled)) for k, s in data.items()}


def explain(
    metric: str, before: BucketSummary, now: BucketSummary, reference: ReferenceSummary
) -> list[Attribution]:
    """The split of `metric`'s change over every dimension with usable slices."""
    split = split_metric(metric)
    if split is None:
        return []
    out = []
    segments = {key.partition("=")[0] for key in (*before.segments, *now.segments)}
    for getter in (segment_slices, lambda s: feature_slices(s, reference)):
        old, new = getter(before), getter(now)
        if getter is not segment_slices:  # a feature that is also a segment: once is enough
            old, new = ({k: v for k, v in d.items() if k not in segments} for d in (old, new))
        for dimension in sorted(set(old) | set(new)):
            result = _attribute(split, dimension, old.get(dimension, {}), new.get(dimension, {}))
            if result is not None and result.change:
                out.append(result)
    return out


def ranked(attributions: list[Attribution]) -> list[tuple[SliceContribution, Attribution]]:
    """Slices across dimensions that move the metric the way it moved, largest share first;
    the pooled `(other)` slice is never a hint."""
    items = [
        (s, a)
        for a in attributions
        for s in a.slices
        if s.value != OTHER and s.contribution / a.change > 0
    ]
    items.sort(key=lambda item: (-item[0].contribution / item[1].change, item[0].dimension))
    return items


def table(attributions: list[Attribution]) -> list[dict[str, Any]]:
    """Every slice of every dimension, largest share of the change first: the evidence
    page's and `vigil incidents show`'s table."""
    rows = [
        {
            "dimension": s.dimension,
            "slice": s.value,
            "metric": a.metric,
            "traffic_before": s.traffic_before,
            "traffic_now": s.traffic_now,
            "metric_before": s.metric_before,
            "metric_now": s.metric_now,
            "mix": s.mix,
            "performance": s.performance,
            "share_of_change": s.contribution / a.change,
        }
        for a, s in sorted(
            ((a, s) for a in attributions for s in a.slices),
            key=lambda item: (-item[1].contribution / item[0].change, item[1].dimension),
        )
    ]
    return rows


def score_drivers(now: BucketSummary, reference: ReferenceSummary) -> list[str]:
    """For drift of `@score`: the inputs whose own shift moves the mean score most.

    Per feature, the score change its shift alone implies: sum over its slices of (share now
    - share in the reference) x the slice's mean score in the reference (its labelled rows'
    score histograms, `ReferenceSummary.quality`). That is the mix term of a shift-share of
    the mean score over the feature's slices: the feature's drift weighted by how the score
    differs across its values (a bin's scores are taken at the middle of its score-tertile
    bin: the figure is approximate, the ranking is what it is for). It reads no rows and
    needs only the window's traffic per slice; features are ranked by its size, the largest
    three named."""
    before = BucketSummary.from_json(reference.quality) if reference.quality else None
    if before is None:
        return []
    fitted = reference.numeric.get(SCORE_COLUMN)

    def centres(bins: int) -> list[float]:
        bounds = [0.0, *score_edges(fitted.edges if fitted else None, bins), 1.0]
        return [(lo + hi) / 2 for lo, hi in pairwise(bounds)]

    effects = []
    for name, old in feature_slices(before, reference).items():
        new = feature_slices_traffic(now, reference, name)
        n0, n1 = sum(s.count for s in old.values()), sum(new.values())
        if not n0 or not n1:
            continue
        effect, moved = 0.0, ("", 0.0, 0.0)
        for key, data in old.items():
            hist = [a + b for a, b in zip(data.negatives, data.positives, strict=False)]
            if sum(hist) < MIN_SLICE_ROWS:
                continue
            mean = sum(c * h for c, h in zip(centres(len(hist)), hist, strict=True)) / sum(hist)
            shift = new.get(key, 0) / n1 - data.count / n0
            effect += shift * mean
            if abs(shift) > abs(moved[2] - moved[1]):
                moved = (key, data.count / n0, new.get(key, 0) / n1)
        if moved[0]:
            effects.append((effect, name, moved))
    effects.sort(key=lambda e: -abs(e[0]))
    return [
        f"{name}: its shift alone moves the mean score by {effect:+.3f}"
        f" ({name} = {key}: {w0:.0%} → {w1:.0%} of traffic)"
        for effect, name, (key, w0, w1) in effects[:TOP]
        if abs(effect) >= 0.001
    ]


def feature_slices_traffic(
    summary: BucketSummary, reference: ReferenceSummary, name: str
) -> dict[str, int]:
    """Rows per slice of one feature, keyed by the slice's readable label."""
    traffic, labels = slice_traffic(summary, reference, name)
    return {labels.get(k, k): v for k, v in traffic.items()}
