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
Label-free estimates have no labels to split: they get no hints (README, "Root-cause hints").
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
    LABELLED,
    MISSING_SLICE,
    SLICE_SCORE_BINS,
    numeric_slice,
    numeric_slice_count,
    numeric_slice_label,
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
    """Per reference feature with per-slice counts, its slices, keyed by a readable label."""
    out: dict[str, dict[str, SliceData]] = {}
    for name, flat in summary.slices.items():
        if name not in reference.numeric and name not in reference.categorical:
            continue
        keys = slice_keys(reference, name)
        width = len(flat) // len(keys)
        if width < HIST or width * len(keys) != len(flat):
            continue  # counted on another reference's slices: not comparable
        traffic, labels = _traffic(summary, reference, name)
        data = {}
        for index, key in enumerate(keys):
            counts = flat[index * width : (index + 1) * width]
            hist = counts[HIST:]
            data[labels.get(key, key)] = SliceData(
                traffic.get(key, 0),
                counts[LABELLED],
                counts[CORRECT],
                tuple(hist[:SLICE_SCORE_BINS]),
                tuple(hist[SLICE_SCORE_BINS:]),
            )
        out[name] = data
    return out


def _traffic(
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
            bins = max((len(s.positives) for s in (*before.values(), *now.values())), default=0)
            if bins == 0:
                return None
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
    differs across its values (a bin's scores are taken at the middle of its score-quartile
    bin: the figure is approximate, the ranking is what it is for). It reads no rows and
    needs only the window's traffic per slice; features are ranked by its size, the largest
    three named."""
    before = BucketSummary.from_json(reference.quality) if reference.quality else None
    if before is None:
        return []
    fitted = reference.numeric.get(SCORE_COLUMN)
    bounds = [0.0, *score_edges(fitted.edges if fitted else None), 1.0]
    centres = [(lo + hi) / 2 for lo, hi in pairwise(bounds)]
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
            mean = sum(c * h for c, h in zip(centres, hist, strict=False)) / sum(hist)
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
    traffic, labels = _traffic(summary, reference, name)
    return {labels.get(k, k): v for k, v in traffic.items()}
