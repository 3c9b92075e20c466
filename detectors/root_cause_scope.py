"""Which split a breaching value gets, and hints for one segment of a `segment_by` SLO.

`detectors.root_cause` splits a whole-model change over every dimension's slices. Two cases
need a decision on top of it:

**Multiclass ranking metrics** (`roc_auc` per class or averaged, `macro_roc_auc`,
`weighted_roc_auc`, `log_loss`, `brier`, `ece` with `scores:`). The ROC AUC split needs, per
slice, binary per-class score histograms; a multiclass model keeps its one-vs-rest score
histograms for the whole bucket (and each segment) but not per feature slice, so there is no
per-slice AUC to split. What every slice does carry is its labelled and correctly decided
rows (segments: the confusion counts; features: `monitor.core.slices`), so such an alert gets
the *accuracy* split, and each of its lines says so (`STAND_IN`): the slices where the model
decides worse are where a one-vs-rest AUC drop usually shows too, but the numbers on the line
are accuracy, not AUC. The same stand-in applies to any ranking metric whose summaries have
no binary score histograms on either side (a reference fitted without scores).

**`segment_by` SLOs.** Each segment value is judged alone, so a breach is one segment's.
Segments carry full nested `BucketSummary`s, but only of what the prediction and label folds
count per segment: rows, the confusion counts, score histograms and per-row sums. The
per-feature slice counts (`BucketSummary.slices`) and feature histograms are folded for the
whole bucket only, and segments carry no nested segments of other columns, so a segment's
change *cannot* be split over slices inside it without multiplying the per-slice storage by
the number of segment values (not cheap: that storage is what bench/attribution_bench.py
budgets). What is honest and costs nothing more is to place the segment in the whole-model
split of its own column, which `explain` computes anyway:

1. the segment's line of that split: its share of traffic and its metric in the reference
   and now, the share of the model-wide change it explains and whether that share is mostly
   mix or performance;
2. the rest of the column pooled, reference and now: whether the other values held (the
   problem is this segment's) or moved as much (the segment only shows a model-wide change);

and, as the table, the column's full split (every value of the column). The lines say they
are not split inside the segment, so nobody reads them as a within-segment attribution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from detectors.attribution import OTHER, Attribution, format_line
from detectors.ranking import roc_auc_from_hists
from detectors.root_cause import SliceData, segment_slices, split_metric, table
from monitor.core.summaries import BucketSummary

MULTICLASS_RANKING = ("macro_roc_auc", "weighted_roc_auc")
STAND_IN = " [accuracy split: {metric} has no per-slice scores to split]"
NOT_INSIDE = "not split inside the segment: segments keep no per-feature counts"


def hintable(metric: str) -> bool:
    """Whether a breach of `metric` can get hints at all (labelled quality metrics)."""
    return split_metric(metric) is not None or metric in MULTICLASS_RANKING


def split_for(metric: str, before: BucketSummary, now: BucketSummary) -> str | None:
    """The metric whose change is split: `split_metric`'s, except that a ranking metric
    without binary score histograms on both sides (multiclass) falls back to accuracy."""
    split = split_metric(metric) or ("roc_auc" if metric in MULTICLASS_RANKING else None)
    if split == "roc_auc" and not (before.class_score_hist and now.class_score_hist):
        return "accuracy"
    return split


def stand_in(metric: str, split: str | None) -> str:
    """The label a line carries when its numbers are a stand-in for the alert's metric."""
    if split == "accuracy" and split_metric(metric) != "accuracy":
        return STAND_IN.format(metric=metric)
    return ""


def segment_key(label: str, column: str, keys: list[str]) -> str | None:
    """The segment (`column=value`) a `segment_by` value belongs to: its feature label is the
    key, or the key and `/` and a per-class feature (`country=NL/class=2`)."""
    found = [
        k for k in keys if k.startswith(f"{column}=") and (label == k or label.startswith(k + "/"))
    ]
    return max(found, key=len) if found else None


def _rest(
    split: str, data: dict[str, SliceData], value: str
) -> float | None:  # fmt: skip
    """The metric of every other value of the column pooled."""
    others = [s for v, s in data.items() if v != value]
    if split == "accuracy":
        labelled = sum(s.labelled for s in others)
        return sum(s.correct for s in others) / labelled if labelled else None
    bins = max((len(s.positives) for s in others), default=0)
    if bins == 0:
        return None
    pos, neg = np.zeros(bins), np.zeros(bins)
    for s in others:
        pos[: len(s.positives)] += s.positives
        neg[: len(s.negatives)] += s.negatives
    return roc_auc_from_hists(pos, neg)


RestMetric = Callable[[BucketSummary, str, str], float | None]
"""The metric of a segment column's other values pooled: (summary, column, value)."""


def segment_hints(
    attributions: list[Attribution],
    split: str,
    key: str,
    before: BucketSummary,
    now: BucketSummary,
    rest_metric: RestMetric | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Lines and table for the segment `key` (`column=value`) of a `segment_by` SLO. The
    rest of the column is pooled from the labelled counts, or by `rest_metric` (estimates:
    `detectors.root_cause_estimated.estimated_rest`)."""
    column, _, value = key.partition("=")
    mine = [a for a in attributions if a.slices and a.slices[0].dimension == column]
    if not mine:  # nothing to compare with (as a whole-model value with no split: no lines)
        return [], []
    whole = mine[0]
    rows = table(mine)
    item = next((s for s in whole.slices if s.value == value), None)
    if item is None or value == OTHER:
        line = (
            f"{column} = {value}: too few labelled rows on one side to rank it alone"
            f" (pooled as {OTHER} in the {column} split)"
        )
        return [line], rows

    def fmt(metric: float | None) -> str:
        return "–" if metric is None else f"{metric:.2f}"

    if rest_metric is None:
        old, new = segment_slices(before).get(column, {}), segment_slices(now).get(column, {})
        rest_before, rest_now = _rest(split, old, value), _rest(split, new, value)
    else:
        rest_before, rest_now = rest_metric(before, column, value), rest_metric(now, column, value)
    rest = (
        f"other {column} values together: {whole.metric} {fmt(rest_before)} →"
        f" {fmt(rest_now)}; the model as a whole {fmt(whole.before)} →"
        f" {fmt(whole.now)} ({NOT_INSIDE})"
    )
    return [format_line(item, whole), rest], rows
